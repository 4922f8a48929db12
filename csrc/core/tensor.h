// Tensor: a shape, a dtype and contiguous (row-major) storage. Storage is either owned
// (64-byte aligned allocation) or borrowed from someone else (a numpy array, an arena, a
// memory-mapped model), kept alive through `owner`.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace ember {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
Shape contiguous_strides(const Shape& shape);  // in elements

// Shape and dtype without data: what shape inference computes. A -1 dim is unknown
// (dynamic) at model-load time; at run time every dim is known.
struct TensorType {
  DType dtype = DType::Undefined;
  Shape shape;
  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const { return shape_numel(shape); }
  bool operator==(const TensorType& o) const { return dtype == o.dtype && shape == o.shape; }
  std::string str() const;  // "float32[2, 3]"
};

constexpr size_t kTensorAlignment = 64;

class Tensor {
 public:
  Tensor() = default;
  // Allocates uninitialized, 64-byte aligned storage.
  static Tensor empty(const Shape& shape, DType dtype);
  static Tensor zeros(const Shape& shape, DType dtype);
  // Borrows `data`; `owner` (may be null) is kept alive as long as the tensor.
  static Tensor wrap(void* data, const Shape& shape, DType dtype,
                     std::shared_ptr<void> owner = nullptr);

  bool defined() const { return dtype_ != DType::Undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[static_cast<size_t>(i < 0 ? i + ndim() : i)]; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  TensorType type() const { return {dtype_, shape_}; }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }
  const std::shared_ptr<void>& owner() const { return owner_; }

  // Same storage, new shape of equal numel.
  Tensor reshaped(const Shape& shape) const;

 private:
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::Undefined;
  std::shared_ptr<void> owner_;
};

}  // namespace ember
