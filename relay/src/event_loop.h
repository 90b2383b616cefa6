// One epoll event loop per thread: the relay's front end (event_server.h) and its non-blocking upstream client
// (async_upstream.h) run on it. Level-triggered; every callback runs on the loop's own thread; only post() and stop()
// may be called from other threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace keyrelay::relay {

class EventLoop {
public:
    using Clock = std::chrono::steady_clock;
    using TimerId = uint64_t;

    // Something with a file descriptor in the loop. A handler that is done hands itself to retire(): it is deleted
    // after the current batch of events, and gets no events after retire().
    class Handler {
    public:
        virtual ~Handler() = default;
        virtual void on_io(uint32_t events) = 0;   // EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP

    private:
        friend class EventLoop;
        bool retired_ = false;
    };

    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    bool ok() const { return epoll_fd_ >= 0 && wake_fd_ >= 0; }

    bool add(int fd, uint32_t events, Handler* handler);
    bool modify(int fd, uint32_t events, Handler* handler);
    void remove(int fd);
    void retire(std::unique_ptr<Handler> handler);

    // One-shot timers. cancel() of a timer that has run (or of 0) does nothing.
    TimerId add_timer(Clock::time_point at, std::function<void()> fn);
    TimerId add_timer(std::chrono::milliseconds after, std::function<void()> fn) {
        return add_timer(now() + after, std::move(fn));
    }
    void cancel_timer(TimerId id);

    // Thread-safe: runs fn on the loop's thread soon.
    void post(std::function<void()> fn);

    // Runs before every wait (after each batch of events and timers): the relay flushes its batched log lines here.
    void set_before_wait(std::function<void()> fn) { before_wait_ = std::move(fn); }

    // Runs until stop(). The time is read once per wake-up (now()).
    void run();
    void stop();   // thread-safe
    bool stopping() const { return stopping_; }   // loop thread: run() is about to return
    Clock::time_point now() const { return now_; }

private:
    void drain_posted();
    void run_timers();

    int epoll_fd_ = -1;
    int wake_fd_ = -1;
    Clock::time_point now_;
    bool stopping_ = false;

    std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
    std::unordered_map<TimerId, Clock::time_point> timer_at_;
    TimerId next_timer_ = 1;

    std::vector<std::unique_ptr<Handler>> graveyard_;
    std::function<void()> before_wait_;

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    bool stop_requested_ = false;   // under posted_mutex_
};

}  // namespace keyrelay::relay
