#include "runtime/memory_planner.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"

namespace ember {

size_t align_up(size_t n, size_t alignment) { return (n + alignment - 1) / alignment * alignment; }

namespace {
bool lifetimes_intersect(const BufferRequest& a, const BufferRequest& b) {
  return a.first_use <= b.last_use && b.first_use <= a.last_use;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment) {
  const size_t n = requests.size();
  MemoryPlan plan;
  plan.offsets.assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].size > requests[b].size;
  });
  std::vector<size_t> placed;  // indices, in placement order
  placed.reserve(n);
  std::vector<std::pair<size_t, size_t>> busy;  // (offset, end) of intersecting placed requests
  for (size_t index : order) {
    const BufferRequest& r = requests[index];
    size_t size = align_up(r.size, alignment);
    if (size == 0) continue;  // empty tensors need no memory
    busy.clear();
    for (size_t p : placed)
      if (lifetimes_intersect(r, requests[p]))
        busy.emplace_back(plan.offsets[p], plan.offsets[p] + align_up(requests[p].size, alignment));
    std::sort(busy.begin(), busy.end());
    size_t cursor = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
    for (const auto& [start, end] : busy) {
      if (start > cursor) {
        size_t gap = start - cursor;
        if (gap >= size && gap < best_gap) {
          best = cursor;
          best_gap = gap;
        }
      }
      cursor = std::max(cursor, end);
    }
    plan.offsets[index] = best != SIZE_MAX ? best : cursor;
    plan.arena_size = std::max(plan.arena_size, plan.offsets[index] + size);
    placed.push_back(index);
  }
  return plan;
}

MemoryPlan plan_memory_naive(const std::vector<BufferRequest>& requests, size_t alignment) {
  MemoryPlan plan;
  for (const auto& r : requests) {
    plan.offsets.push_back(plan.arena_size);
    plan.arena_size += align_up(r.size, alignment);
  }
  return plan;
}

size_t lower_bound_bytes(const std::vector<BufferRequest>& requests, size_t alignment) {
  // Sweep over steps: +size at first_use, -size after last_use.
  std::map<int64_t, int64_t> delta;
  for (const auto& r : requests) {
    int64_t s = static_cast<int64_t>(align_up(r.size, alignment));
    delta[r.first_use] += s;
    delta[r.last_use + 1] -= s;
  }
  int64_t live = 0, best = 0;
  for (const auto& [step, d] : delta) {
    live += d;
    best = std::max(best, live);
  }
  return static_cast<size_t>(best);
}

void validate_plan(const std::vector<BufferRequest>& requests, const MemoryPlan& plan,
                   size_t alignment) {
  if (plan.offsets.size() != requests.size())
    fail<Error>("memory plan: ", plan.offsets.size(), " offsets for ", requests.size(), " buffers");
  for (size_t i = 0; i < requests.size(); ++i) {
    size_t size_i = align_up(requests[i].size, alignment);
    if (size_i == 0) continue;
    if (plan.offsets[i] % alignment != 0)
      fail<Error>("memory plan: buffer ", i, " at offset ", plan.offsets[i], " is not ", alignment,
                  "-byte aligned");
    if (plan.offsets[i] + size_i > plan.arena_size)
      fail<Error>("memory plan: buffer ", i, " ends at ", plan.offsets[i] + size_i,
                  ", past the arena of ", plan.arena_size, " bytes");
    for (size_t j = i + 1; j < requests.size(); ++j) {
      size_t size_j = align_up(requests[j].size, alignment);
      if (size_j == 0 || !lifetimes_intersect(requests[i], requests[j])) continue;
      bool disjoint = plan.offsets[i] + size_i <= plan.offsets[j] ||
                      plan.offsets[j] + size_j <= plan.offsets[i];
      if (!disjoint)
        fail<Error>("memory plan: buffers ", i, " [", plan.offsets[i], ", ", plan.offsets[i] + size_i,
                    ") and ", j, " [", plan.offsets[j], ", ", plan.offsets[j] + size_j,
                    ") overlap while both are live (steps ", requests[i].first_use, "..",
                    requests[i].last_use, " and ", requests[j].first_use, "..",
                    requests[j].last_use, ")");
    }
  }
}

}  // namespace ember
