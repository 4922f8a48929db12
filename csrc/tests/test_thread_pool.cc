#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/thread_pool.h"
#include "tests/harness.h"

using ember::ThreadPool;

TEST_CASE(parallel_for_covers_range_exactly_once) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          EXPECT(b < e);
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (auto& h : hits) EXPECT(h.load() == 1);
      }
    }
  }
}

TEST_CASE(one_thread_means_one_thread) {
  ThreadPool pool(1);
  std::set<std::thread::id> ids;
  std::mutex m;
  pool.parallel_for(1000, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT(ids.size() == 1);
  EXPECT(*ids.begin() == std::this_thread::get_id());
}

TEST_CASE(uses_at_most_num_threads) {
  ThreadPool pool(2);
  for (int rep = 0; rep < 50; ++rep) {
    std::set<std::thread::id> ids;
    std::mutex m;
    pool.parallel_for(64, 1, [&](int64_t, int64_t) {
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    });
    EXPECT(ids.size() <= 2);
  }
}

TEST_CASE(exceptions_propagate_to_caller) {
  ThreadPool pool(2);
  EXPECT_THROWS(pool.parallel_for(100, 1,
                                  [&](int64_t b, int64_t) {
                                    if (b == 0) throw ember::InvalidArgument("boom");
                                  }),
                ember::InvalidArgument);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, 1, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT(sum.load() == 100);
}

TEST_CASE(nested_parallel_for_runs_inline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(10, 1, [&](int64_t bb, int64_t ee) { total += ee - bb; });
  });
  EXPECT(total.load() == 40);
}

TEST_CASE(concurrent_callers_share_one_pool) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep)
        pool.parallel_for(50, 1, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& c : callers) c.join();
  EXPECT(total.load() == 4 * 200 * 50);
}

TEST_CASE(rejects_zero_threads) { EXPECT_THROWS(ThreadPool(0), ember::InvalidArgument); }
