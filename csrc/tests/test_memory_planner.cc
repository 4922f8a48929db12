// The memory planner as a pure function: known answers and random lifetimes checked by an
// independent overlap test (the validator is tested separately on a bad plan).
#include <random>

#include "core/error.h"
#include "runtime/memory_planner.h"
#include "tests/harness.h"

namespace {
using ember::BufferRequest;

bool overlaps(const std::vector<BufferRequest>& r, const ember::MemoryPlan& p) {
  for (size_t i = 0; i < r.size(); ++i)
    for (size_t j = i + 1; j < r.size(); ++j) {
      bool live = r[i].first_use <= r[j].last_use && r[j].first_use <= r[i].last_use;
      size_t si = ember::align_up(r[i].size, 64), sj = ember::align_up(r[j].size, 64);
      bool apart = p.offsets[i] + si <= p.offsets[j] || p.offsets[j] + sj <= p.offsets[i];
      if (live && si && sj && !apart) return true;
    }
  return false;
}
}  // namespace

TEST_CASE(memory_planner_reuses_dead_buffers) {
  std::vector<BufferRequest> r = {{100, 0, 1}, {100, 1, 2}, {100, 2, 3}};
  ember::MemoryPlan p = ember::plan_memory(r);
  // Sizes round up to 128; two buffers are live at each step, and the first and last share.
  EXPECT(p.arena_size == 256);
  EXPECT(p.offsets[0] == p.offsets[2]);
  EXPECT(ember::lower_bound_bytes(r) == 256);
  EXPECT(ember::plan_memory_naive(r).arena_size == 384);
}

TEST_CASE(memory_planner_random_lifetimes_never_overlap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> r;
    int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) {
      int64_t first = rng() % 20;
      r.push_back({rng() % 5000, first, first + static_cast<int64_t>(rng() % 8)});
    }
    ember::MemoryPlan p = ember::plan_memory(r);
    EXPECT(!overlaps(r, p));
    ember::validate_plan(r, p);
    EXPECT(p.arena_size >= ember::lower_bound_bytes(r));
    EXPECT(p.arena_size <= ember::plan_memory_naive(r).arena_size);
  }
}

TEST_CASE(memory_planner_validator_rejects_overlap) {
  std::vector<BufferRequest> r = {{128, 0, 2}, {128, 1, 3}};
  ember::MemoryPlan bad{{0, 64}, 256};
  EXPECT_THROWS((ember::validate_plan(r, bad)), ember::Error);
}
