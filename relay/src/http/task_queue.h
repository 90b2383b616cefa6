// The relay's connection workers. cpp-httplib 0.11 gives each accepted connection one task for its whole keep-alive
// life (the task reads a request, answers it, waits for the next one), so a fixed pool of N workers is starved by N
// slow or idle clients. ElasticQueue keeps a few core workers, starts another whenever a connection arrives and no
// worker is idle (up to a cap), lets the extra workers exit after they have been idle for a while, and past the cap
// holds new connections in a bounded queue; when that is full the accepting thread waits (the kernel's listen backlog
// then absorbs the burst), so memory stays bounded whatever clients do.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace keyrelay::relay {

struct ElasticQueueOptions {
    size_t core = 32;                                   // workers kept even when idle
    size_t max = 1024;                                  // workers at most (connections served at once)
    size_t max_queued = 1024;                           // connections waiting for a worker beyond max
    std::chrono::milliseconds idle_exit{10000};         // an extra worker idle this long exits
};

class ElasticQueue final : public httplib::TaskQueue {
public:
    explicit ElasticQueue(ElasticQueueOptions options);
    ~ElasticQueue() override;
    ElasticQueue(const ElasticQueue&) = delete;
    ElasticQueue& operator=(const ElasticQueue&) = delete;

    void enqueue(std::function<void()> fn) override;
    void shutdown() override;

private:
    using Workers = std::list<std::thread>;
    void start_worker();                     // with mutex_ held
    void work(Workers::iterator self);
    void reap();                             // joins workers that exited (without mutex_ held)

    ElasticQueueOptions options_;
    std::mutex mutex_;
    std::condition_variable work_cv_;        // a job arrived, or shutdown
    std::condition_variable space_cv_;       // a queued job was taken
    std::deque<std::function<void()>> jobs_;
    Workers workers_;
    Workers exited_;                         // finished threads, joined by reap()
    size_t idle_ = 0;
    bool shutdown_ = false;
};

}  // namespace keyrelay::relay
