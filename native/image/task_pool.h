// A process-wide pool for image decoding that fills the cores the model leaves idle (no Node-API, no
// libtorch).
//
// Its threads are of two kinds:
// - background threads run at the OS's idle scheduling priority (Linux SCHED_IDLE): the kernel gives them a
//   core only when no normal thread wants it, and takes it back as soon as one does. While libtorch's
//   threads run a forward pass they leave short gaps on every core (barriers, single-threaded operators,
//   memory stalls); background threads decode in those gaps, so the model is not slowed down as it is when
//   decoding threads of normal priority compete with it for the cores.
// - foreground threads run at normal priority, and take tasks only while the foreground is open
//   (setForeground(true)): the process opens it whenever no model call is running on the CPU, so decoding
//   the model waits for never depends on idle time alone (another process may take every core).
//
// Tasks are taken first come, first served across batches: an earlier batch's tasks all start before a
// later batch's. Foreground threads take only tasks of the oldest unfinished batch, the one the caller
// waits for first. When every task of that batch has started, a foreground thread runs again a task that a
// background thread still holds (each at most once more): on a busy machine a background thread may wait
// long for a core, and the caller waits for that batch. The first run of a task to finish claims it
// (`claim()` in run); the other's result is dropped. `workers(n)` sets how many threads of each kind take
// tasks (the decode threads of the process's CPU budget); threads are started when first needed and never
// stopped (they sleep when idle). Closing the foreground (a model call starts) never waits for a lock a
// background thread may hold while the model keeps it off the cores.
#pragma once

#include <cstddef>
#include <functional>

namespace spurmem::image {

class TaskPool {
 public:
  /// run(i, claim) runs task i of a batch (0 <= i < count) on a pool thread, and must not throw. A task may
  /// run twice at once (see above): run computes its result privately, then calls claim(), which returns
  /// true for the first run of task i that calls it; only that run may publish its result. done(cpuSeconds)
  /// runs once, on the pool thread that claimed the batch's last task, after every claimed run returned,
  /// with the CPU time (user + system of the threads, seconds) its runs took.
  using Claim = std::function<bool()>;
  using Run = std::function<void(size_t, const Claim&)>;
  using Done = std::function<void(double)>;

  /// The process's pool.
  static TaskPool& instance();

  /// Queues a batch of `count` tasks. Throws std::system_error when no pool thread could be started.
  virtual void submit(size_t count, Run run, Done done) = 0;
  /// How many threads of each kind take tasks (>= 1; more are started when needed).
  virtual void workers(int n) = 0;
  /// Opens (true) or closes (false) the foreground: whether normal-priority threads take tasks.
  virtual void setForeground(bool open) = 0;
  /// Whether this OS lets a thread run at idle priority (checked once, on a thread of its own). Without
  /// it the pool has no background threads, and tasks run only while the foreground is open.
  static bool idlePriorityAvailable();

 protected:
  virtual ~TaskPool() = default;
};

}  // namespace spurmem::image
