#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define EMBER_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define EMBER_PAUSE() __asm__ volatile("yield")
#else
#define EMBER_PAUSE() ((void)0)
#endif

namespace ember {

namespace {
thread_local bool t_in_parallel_region = false;
// Spin this many rounds before sleeping: back-to-back ops wake workers without a syscall.
constexpr int kSpinRounds = 20000;

int default_num_threads() {
  if (const char* env = std::getenv("EMBER_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

std::unique_ptr<ThreadPool>& global_pool() {
  static std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(default_num_threads());
  return pool;
}
std::mutex g_global_mutex;
}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads) {
  EMBER_CHECK(num_threads >= 1, InvalidArgument, "number of threads must be >= 1, got ",
              num_threads);
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  bool was = t_in_parallel_region;
  t_in_parallel_region = true;
  for (;;) {
    int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= num_chunks_) break;
    int64_t begin = c * chunk_, end = std::min(n_, begin + chunk_);
    try {
      (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
  t_in_parallel_region = was;
}

void ThreadPool::worker_loop(int) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinRounds; ++spin) {
      EMBER_PAUSE();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_cv_.wait(lock, [&] { return generation_.load() != seen; });
      gen = generation_.load();
    }
    seen = gen;
    if (stop_) return;
    run_chunks();
    if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(done_mutex_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (num_threads_ == 1 || n <= grain || t_in_parallel_region) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> submit(submit_mutex_, std::try_to_lock);
  if (!submit.owns_lock()) {  // another thread is using the pool: run inline
    fn(0, n);
    return;
  }
  int64_t max_chunks = (n + grain - 1) / grain;
  int64_t chunks = std::min<int64_t>(num_threads_, max_chunks);
  fn_ = &fn;
  n_ = n;
  chunk_ = (n + chunks - 1) / chunks;
  num_chunks_ = (n + chunk_ - 1) / chunk_;
  error_ = nullptr;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  run_chunks();
  for (int spin = 0; pending_workers_.load(std::memory_order_acquire) != 0 && spin < kSpinRounds;
       ++spin)
    EMBER_PAUSE();
  if (pending_workers_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(done_mutex_);
    done_cv_.wait(lock, [&] { return pending_workers_.load() == 0; });
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& ThreadPool::global() {
  std::lock_guard<std::mutex> lock(g_global_mutex);
  return *global_pool();
}

void ThreadPool::set_global_num_threads(int n) {
  EMBER_CHECK(n >= 1, InvalidArgument, "set_num_threads: expected a positive number, got ", n);
  std::lock_guard<std::mutex> lock(g_global_mutex);
  if (global_pool()->num_threads() != n) global_pool() = std::make_unique<ThreadPool>(n);
}

}  // namespace ember
