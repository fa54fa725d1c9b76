// See task_pool.h.
#include "image/task_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace spurmem::image {
namespace {

/// Puts the calling thread at idle priority; false where the OS has no such policy or refuses it.
bool enterIdlePriority() {
#if defined(__linux__) && defined(SCHED_IDLE)
  sched_param p{};
  p.sched_priority = 0;
  return pthread_setschedparam(pthread_self(), SCHED_IDLE, &p) == 0;
#else
  return false;
#endif
}

/// CPU time of the calling thread, nanoseconds.
int64_t threadCpuNanos() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
#else
  return 0;
#endif
}

struct Batch {
  size_t count = 0;
  size_t next = 0;  ///< the next task to hand out (under the pool's lock); the batch leaves the queue when done
  std::atomic<size_t> left{0};
  std::atomic<int64_t> cpuNanos{0};
  TaskPool::Run run;
  TaskPool::Done done;
};

class Pool final : public TaskPool {
 public:
  void submit(size_t count, Run run, Done done) override {
    if (count == 0) {
      done(0.0);
      return;
    }
    auto b = std::make_shared<Batch>();
    b->count = count;
    b->left = count;
    b->run = std::move(run);
    b->done = std::move(done);
    {
      std::lock_guard<std::mutex> lk(m_);
      start();
      queue_.push_back(std::move(b));
    }
    cv_.notify_all();
  }

  void workers(int n) override {
    {
      std::lock_guard<std::mutex> lk(m_);
      limit_ = n < 1 ? 1 : n;
    }
    cv_.notify_all();
  }

  void setForeground(bool open) override {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (foreground_ == open) return;
      foreground_ = open;
    }
    if (open) cv_.notify_all();
  }

 private:
  // starts threads up to the limit of each kind (under the lock); they live as long as the process
  void start() {
    const bool idle = idlePriorityAvailable();
    while (started_ < limit_) {
      const int k = started_++;
      std::thread([this, k] { loop(k, false); }).detach();
      if (idle) std::thread([this, k] { loop(k, true); }).detach();
    }
  }

  // Background threads take the first task not yet taken, of any batch; foreground threads only tasks of the
  // oldest unfinished batch (the one the caller waits for first). When a background thread holds that
  // batch's last tasks, the foreground threads leave the cores to it instead of starting later batches: the
  // kernel would give a normal thread's core to it only after they ran out of work.
  void loop(int k, bool background) {
    if (background && !enterIdlePriority()) return;  // checked before: does not happen in practice
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      std::shared_ptr<Batch> b;
      cv_.wait(lk, [&] {
        if (k >= limit_ || (!background && !foreground_)) return false;
        for (auto& q : queue_) {
          if (q->next < q->count) {
            b = q;
            return true;
          }
          if (!background) return false;
        }
        return false;
      });
      const size_t i = b->next++;
      lk.unlock();
      const int64_t t0 = threadCpuNanos();
      b->run(i);
      b->cpuNanos += threadCpuNanos() - t0;
      if (--b->left == 0) {
        lk.lock();
        for (auto it = queue_.begin(); it != queue_.end(); ++it)
          if (*it == b) {
            queue_.erase(it);
            break;
          }
        lk.unlock();
        cv_.notify_all();
        b->done(static_cast<double>(b->cpuNanos.load()) / 1e9);
      }
      b.reset();
      lk.lock();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;  ///< unfinished batches, oldest first
  bool foreground_ = true;
  int limit_ = 1;
  int started_ = 0;
};

}  // namespace

TaskPool& TaskPool::instance() {
  // never destroyed: its detached threads may still be waiting when the process exits
  static Pool* pool = new Pool();
  return *pool;
}

bool TaskPool::idlePriorityAvailable() {
  static const bool ok = [] {
    bool r = false;
    std::thread t([&r] { r = enterIdlePriority(); });
    t.join();
    return r;
  }();
  return ok;
}

}  // namespace spurmem::image
