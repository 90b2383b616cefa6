#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace keyrelay::relay {

EventLoop::EventLoop() : now_(Clock::now()) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ >= 0 && wake_fd_ >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;   // the wake-up fd
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    }
}

EventLoop::~EventLoop() {
    graveyard_.clear();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool EventLoop::add(int fd, uint32_t events, Handler* handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, uint32_t events, Handler* handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::retire(std::unique_ptr<Handler> handler) {
    if (!handler) return;
    handler->retired_ = true;
    graveyard_.push_back(std::move(handler));
}

EventLoop::TimerId EventLoop::add_timer(Clock::time_point at, std::function<void()> fn) {
    TimerId id = next_timer_++;
    timers_.emplace(std::make_pair(at, id), std::move(fn));
    timer_at_.emplace(id, at);
    return id;
}

void EventLoop::cancel_timer(TimerId id) {
    auto it = timer_at_.find(id);
    if (it == timer_at_.end()) return;
    timers_.erase(std::make_pair(it->second, id));
    timer_at_.erase(it);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof one);
    (void)n;   // EAGAIN: the counter is already non-zero, the loop wakes anyway
}

void EventLoop::stop() {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        stop_requested_ = true;
    }
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof one);
    (void)n;
}

void EventLoop::drain_posted() {
    uint64_t count = 0;
    ssize_t n = ::read(wake_fd_, &count, sizeof count);
    (void)n;
    std::vector<std::function<void()>> jobs;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        jobs.swap(posted_);
        if (stop_requested_) stopping_ = true;
    }
    for (auto& job : jobs) job();
}

void EventLoop::run_timers() {
    while (!timers_.empty() && timers_.begin()->first.first <= now_) {
        auto it = timers_.begin();
        std::function<void()> fn = std::move(it->second);
        timer_at_.erase(it->first.second);
        timers_.erase(it);
        fn();
    }
}

void EventLoop::run() {
    constexpr int kBatch = 128;
    epoll_event events[kBatch];
    now_ = Clock::now();
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        if (stop_requested_) stopping_ = true;
    }
    while (!stopping_) {
        if (before_wait_) before_wait_();
        int timeout = -1;
        if (!timers_.empty()) {
            auto wait = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first.first - Clock::now());
            timeout = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(wait.count(), 60000)));
        }
        int n = ::epoll_wait(epoll_fd_, events, kBatch, timeout);
        now_ = Clock::now();
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; ++i) {
            auto* h = static_cast<Handler*>(events[i].data.ptr);
            if (h == nullptr) {
                drain_posted();
            } else if (!h->retired_) {
                h->on_io(events[i].events);
            }
        }
        run_timers();
        graveyard_.clear();
    }
    graveyard_.clear();
    if (before_wait_) before_wait_();
}

}  // namespace keyrelay::relay
