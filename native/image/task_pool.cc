// See task_pool.h.
#include "image/task_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
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

/// A task's state: not started, running once, running twice (a foreground thread runs it again), claimed.
enum : uint8_t { kWaiting = 0, kRunning = 1, kTwice = 2, kClaimed = 3 };

struct Batch {
  size_t count = 0;
  size_t next = 0;  ///< the next task not yet started (under the pool's lock)
  std::unique_ptr<std::atomic<uint8_t>[]> state;
  std::atomic<size_t> left{0};  ///< tasks not claimed yet
  std::atomic<size_t> refs{0};  ///< tasks not claimed + runs in progress: done() when it reaches 0
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
    b->state.reset(new std::atomic<uint8_t>[count]);
    for (size_t i = 0; i < count; i++) b->state[i] = kWaiting;
    b->left = count;
    b->refs = count;
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

  // Closing takes no lock: the pool's lock may be held by a background thread that waits for a core while
  // the model runs. Opening takes it for a moment (so that no foreground thread misses the notification)
  // when a model call has just ended, and the cores it leaves let such a thread finish.
  void setForeground(bool open) override {
    if (foreground_.exchange(open) == open || !open) return;
    { std::lock_guard<std::mutex> lk(m_); }
    cv_.notify_all();
  }

 private:

  // starts threads up to the limit of each kind (under the lock); they live as long as the process.
  // Throws std::system_error when not even one thread runs.
  void start() {
    const bool idle = idlePriorityAvailable();
    while (started_ < limit_) {
      const int k = started_;
      try {
        std::thread([this, k] { loop(k, false); }).detach();
      } catch (const std::system_error&) {
        if (started_ == 0) throw;
        limit_ = started_;  // as many as could be started
        return;
      }
      started_++;
      if (idle) {
        try {
          std::thread([this, k] { loop(k, true); }).detach();
        } catch (const std::system_error&) {
          // the foreground thread of the same number does its work
        }
      }
    }
  }

  // The task thread k may run next (under the lock), or none: background threads take the first task not
  // started, of any batch; foreground threads, while the foreground is open, only tasks of the oldest
  // batch, and when all of them have started, one a background thread still runs alone.
  bool pick(int k, bool background, std::shared_ptr<Batch>& b, size_t& i) {
    if (k >= limit_ || queue_.empty()) return false;
    // starts the next task of q not yet started, if there is one
    auto startNext = [&](const std::shared_ptr<Batch>& q) {
      if (q->next >= q->count) return false;
      i = q->next++;
      q->state[i] = kRunning;
      q->refs++;
      b = q;
      return true;
    };
    if (background) {
      for (auto& q : queue_)
        if (startNext(q)) return true;
      return false;
    }
    if (!foreground_) return false;
    auto& q = queue_.front();
    if (startNext(q)) return true;
    for (size_t j = 0; j < q->count; j++) {
      uint8_t s = kRunning;
      if (q->state[j].compare_exchange_strong(s, kTwice)) {
        i = j;
        q->refs++;
        b = q;
        return true;
      }
    }
    return false;
  }

  void loop(int k, bool background) {
    if (background && !enterIdlePriority()) return;  // checked before: does not happen in practice
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      std::shared_ptr<Batch> b;
      size_t i = 0;
      while (!pick(k, background, b, i)) cv_.wait(lk);
      lk.unlock();
      const int64_t t0 = threadCpuNanos();
      bool claimed = false;
      b->run(i, [&] { return claimed = b->state[i].exchange(kClaimed) != kClaimed; });
      b->cpuNanos += threadCpuNanos() - t0;
      if (claimed && --b->left == 0) {
        // every task claimed: the batch leaves the queue (a second run of a task may still be finishing)
        lk.lock();
        for (auto it = queue_.begin(); it != queue_.end(); ++it)
          if (*it == b) {
            queue_.erase(it);
            break;
          }
        lk.unlock();
        cv_.notify_all();
      }
      // done() once every task is claimed and no run of the batch is left: run may use what done frees
      const size_t n = claimed ? 2 : 1;
      if (b->refs.fetch_sub(n) == n) b->done(static_cast<double>(b->cpuNanos.load()) / 1e9);
      b.reset();
      lk.lock();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;  ///< unfinished batches, oldest first
  std::atomic<bool> foreground_{true};
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
    try {
      std::thread t([&r] { r = enterIdlePriority(); });
      t.join();
    } catch (const std::system_error&) {
      r = false;
    }
    return r;
  }();
  return ok;
}

}  // namespace spurmem::image
