#include "http/task_queue.h"

#include <malloc.h>

#include <algorithm>

namespace keyrelay::relay {

ElasticQueue::ElasticQueue(ElasticQueueOptions options) : options_(options) {
    options_.max = std::max<size_t>(options_.max, 1);
    options_.core = std::min(options_.core, options_.max);
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < options_.core; ++i) start_worker();
}

ElasticQueue::~ElasticQueue() { shutdown(); }

void ElasticQueue::start_worker() {
    workers_.emplace_back();
    auto self = std::prev(workers_.end());
    // The new thread locks mutex_ before it reads `self`, and the caller holds mutex_: the iterator is set by then.
    *self = std::thread([this, self] { work(self); });
}

void ElasticQueue::enqueue(std::function<void()> fn) {
    reap();
    std::unique_lock<std::mutex> lock(mutex_);
    // Past the cap and with the queue full: the acceptor waits for a worker to take a job.
    space_cv_.wait(lock, [this] {
        return shutdown_ || workers_.size() < options_.max || jobs_.size() < options_.max_queued;
    });
    if (shutdown_) {
        // The task closes its socket when it runs; running it here, after the workers are gone, does that.
        lock.unlock();
        fn();
        return;
    }
    jobs_.push_back(std::move(fn));
    // Every idle worker takes one pending job; a job beyond them needs a new worker.
    if (jobs_.size() > idle_ && workers_.size() < options_.max) start_worker();
    work_cv_.notify_one();
}

void ElasticQueue::work(Workers::iterator self) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        ++idle_;
        bool timed_out = !work_cv_.wait_for(lock, options_.idle_exit, [this] { return shutdown_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) {
            if (shutdown_) break;
            if (timed_out && workers_.size() > options_.core) break;
            continue;
        }
        auto fn = std::move(jobs_.front());
        jobs_.pop_front();
        space_cv_.notify_one();
        lock.unlock();
        fn();
        fn = nullptr;   // the task's captures go before the worker waits again
        lock.lock();
    }
    if (shutdown_) return;
    exited_.splice(exited_.end(), workers_, self);
    // The last extra worker of a burst gives the freed heap back to the system, so that the RSS settles again.
    bool last_extra = workers_.size() == options_.core;
    lock.unlock();
    if (last_extra) ::malloc_trim(0);
}

void ElasticQueue::reap() {
    Workers done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done.splice(done.end(), exited_);
    }
    for (auto& t : done) {
        if (t.joinable()) t.join();
    }
}

void ElasticQueue::shutdown() {
    Workers all;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        shutdown_ = true;
        all.splice(all.end(), workers_);
        all.splice(all.end(), exited_);
    }
    work_cv_.notify_all();
    space_cv_.notify_all();
    for (auto& t : all) {
        if (t.joinable()) t.join();
    }
}

}  // namespace keyrelay::relay
