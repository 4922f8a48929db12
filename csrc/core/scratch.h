// Grow-only, 64-byte aligned float scratch memory, one object per use and thread
// (`thread_local FloatScratch s;`): kernels reuse their packing / transform buffers across
// calls, so a steady state allocates nothing and takes no page faults.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace ember {

class FloatScratch {
 public:
  FloatScratch() = default;
  FloatScratch(const FloatScratch&) = delete;
  FloatScratch& operator=(const FloatScratch&) = delete;
  ~FloatScratch() { std::free(data_); }

  // At least `floats` floats (contents unspecified); `what` names the user in the error.
  float* get(int64_t floats, const char* what) {
    if (floats > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const int64_t capacity = (std::max<int64_t>(floats, 1) + 15) / 16 * 16;
      data_ = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(capacity) * 4));
      if (!data_) fail<Error>(what, ": out of memory for ", capacity, " floats of scratch");
      capacity_ = capacity;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

}  // namespace ember
