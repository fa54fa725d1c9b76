// Runs work on a libuv worker thread (Napi::AsyncWorker) and settles a Promise with the result.
//
// `work` runs off the JS thread and must not touch Napi values; `done` runs on the JS thread and turns
// what work produced into a JS value. Any exception thrown by work rejects the Promise with an Error
// whose message is the exception's text (libtorch's backtraces are left out).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spurmem {

/// Text of an exception without libtorch's C++ backtrace.
std::string errorText(const std::exception& e);

/// libtorch's intra-op thread count as set by setNumThreads (0: never set). at::set_num_threads only
/// reaches the OpenMP threads started from the calling thread, so every worker applies it before its work.
inline std::atomic<int> gNumThreads{0};

/// Makes the calling thread's parallel regions (ATen, oneDNN) use gNumThreads threads.
inline void applyNumThreads() {
  int n = gNumThreads.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Work work, Done done, std::vector<Napi::Value> keepAlive)
      : Napi::AsyncWorker(env, "spurmem"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {
    for (auto& v : keepAlive) refs_.push_back(Napi::Persistent(v));
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      applyNumThreads();
      work_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const c10::Error& e) {
      deferred_.Reject(Napi::Error::New(env, e.what_without_backtrace()).Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::vector<Napi::Reference<Napi::Value>> refs_;
};

/// Queues work and returns its Promise. keepAlive values are referenced until the work has finished.
inline Napi::Promise runAsync(Napi::Env env, PromiseWorker::Work work, PromiseWorker::Done done,
                              std::vector<Napi::Value> keepAlive = {}) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(done), std::move(keepAlive));
  auto p = w->promise();
  w->Queue();
  return p;
}

}  // namespace spurmem
