// The memory planner: a pure function from buffer lifetimes to offsets in one arena.
//
// Each intermediate tensor of a net (after in-place reuse merged some of them) is a
// BufferRequest: a size in bytes and the inclusive range of op steps [first_use, last_use] during
// which it must hold its value. `plan_memory` assigns every request an offset so that two
// requests whose lifetimes intersect never share a byte; the arena is as large as the highest
// end offset.
//
// Algorithm (greedy by size, best fit): requests are placed largest first. For a request, the
// already-placed requests whose lifetimes intersect it are sorted by offset; the gaps between
// them (and before the first) are candidates, and the smallest gap that fits wins. When no gap
// fits, the request goes right after the highest of them. Large tensors therefore claim the
// bottom of the arena first and small, short-lived tensors fill the holes between them.
// Offsets and sizes are rounded up to `alignment` (64 bytes: a cache line, and what SIMD
// kernels want).
//
// `plan_memory_naive` gives every request its own range (the baseline, and the "naive sum");
// `lower_bound_bytes` is the largest total size of requests alive at one step: no plan can use
// less. `validate_plan` proves a plan sound (no two live requests overlap); the runtime runs it
// on every plan it makes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember {

struct BufferRequest {
  size_t size = 0;
  int64_t first_use = 0;  // index of the step that writes the buffer
  int64_t last_use = 0;   // index of the last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request
  size_t arena_size = 0;
};

size_t align_up(size_t n, size_t alignment);

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment = 64);
MemoryPlan plan_memory_naive(const std::vector<BufferRequest>& requests, size_t alignment = 64);
// Largest sum of (aligned) sizes of requests alive at the same step.
size_t lower_bound_bytes(const std::vector<BufferRequest>& requests, size_t alignment = 64);
// Throws ember::Error naming both requests when two requests alive at the same step overlap
// in memory, or when a request ends past the arena or is misaligned.
void validate_plan(const std::vector<BufferRequest>& requests, const MemoryPlan& plan,
                   size_t alignment = 64);

}  // namespace ember
