#include "core/dtype.h"

#include "core/error.h"

namespace ember {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Int32: return 4;
    case DType::UInt8: return 1;
    case DType::Int8: return 1;
    case DType::Bool: return 1;
    default: return 0;
  }
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Int32: return "int32";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Bool: return "bool";
    default: return "undefined";
  }
}

DType dtype_from_name(const std::string& name) {
  for (int i = 1; i <= 7; ++i) {
    DType t = static_cast<DType>(i);
    if (name == dtype_name(t)) return t;
  }
  fail<InvalidArgument>("unknown dtype '", name, "'");
}

bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }
bool is_integral(DType t) {
  return t == DType::Int64 || t == DType::Int32 || t == DType::UInt8 || t == DType::Int8;
}

}  // namespace ember
