// Runs work on a libuv worker thread (Napi::AsyncWorker) and settles a Promise with the result.
//
// `work` runs off the JS thread and must not touch Napi values; `done` runs on the JS thread and turns
// what work produced into a JS value. Any exception thrown by work rejects the Promise with an Error
// whose message is the exception's text (libtorch's backtraces are left out).
#pragma once

#include "errors.h"

#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace spurmem {

/// Intra-op thread count asked for by setNumThreads (0: libtorch's default). libtorch applies a thread
/// count to an OS thread once, when that thread first runs parallel work, so a worker thread that ran
/// before setNumThreads would keep the old count; every worker re-applies the requested one instead.
inline std::atomic<int>& requestedThreads() {
  static std::atomic<int> n{0};
  return n;
}

/// Makes the calling thread use the requested intra-op thread count (no-op when none was requested).
inline void applyRequestedThreads() {
  const int n = requestedThreads().load();
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
      applyRequestedThreads();
      work_();
    } catch (const std::exception& e) {
      SetError(errorText(e));
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
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, errorText(e)).Value());
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
