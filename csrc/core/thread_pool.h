// A fixed-size thread pool for intra-op parallelism (no OpenMP, so the same code runs on
// mobile). A pool of N threads uses the calling thread plus N-1 workers: one thread means
// exactly one thread. Nested or concurrent parallel_for calls run inline on the caller.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ember {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks hold at least `grain`
  // items (except the last). Runs inline when n <= grain or the pool has one thread.
  // An exception thrown by fn is rethrown on the caller after all chunks finish.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by eager execution; its size defaults to the number of
  // hardware threads (or EMBER_NUM_THREADS).
  static ThreadPool& global();
  static void set_global_num_threads(int n);

 private:
  struct Job;
  void worker_loop();
  static void run_chunks(Job& job);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one job at a time

  // The current job, published with a new generation. Chunks are claimed dynamically, so a
  // caller whose workers are slow to wake (an oversubscribed machine) runs every chunk itself and
  // never waits for a worker that did nothing; a worker that wakes late finds no chunk left.
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_generation_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  bool stop_ = false;
};

}  // namespace ember
