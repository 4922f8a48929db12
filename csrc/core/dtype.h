// Element types of Ember tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ember {

// Values are part of the model formats (NetDef and the runtime flatbuffer): they only grow.
enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  Float64 = 2,
  Int64 = 3,
  Int32 = 4,
  UInt8 = 5,
  Int8 = 6,
  Bool = 7,
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses a dtype name ("float32", "int64", ...); throws InvalidArgument for an unknown name.
DType dtype_from_name(const std::string& name);
bool is_floating(DType t);
bool is_integral(DType t);  // integer types, not bool

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::Bool; };

}  // namespace ember

// Calls BODY with `scalar_t` bound to the C++ type of DTYPE (all dtypes).
#define EMBER_DISPATCH_ALL(DTYPE, NAME, ...)                                            \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::ember::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }   \
      case ::ember::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }  \
      case ::ember::DType::Int64: { using scalar_t = int64_t; return __VA_ARGS__(); }   \
      case ::ember::DType::Int32: { using scalar_t = int32_t; return __VA_ARGS__(); }   \
      case ::ember::DType::UInt8: { using scalar_t = uint8_t; return __VA_ARGS__(); }   \
      case ::ember::DType::Int8: { using scalar_t = int8_t; return __VA_ARGS__(); }     \
      case ::ember::DType::Bool: { using scalar_t = bool; return __VA_ARGS__(); }       \
      default:                                                                          \
        throw ::ember::Unsupported(std::string(NAME) + ": unsupported dtype " +        \
                                   ::ember::dtype_name(DTYPE));                         \
    }                                                                                   \
  }()

// Same, restricted to the numeric types (no bool).
#define EMBER_DISPATCH_NUMERIC(DTYPE, NAME, ...)                                        \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::ember::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }   \
      case ::ember::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }  \
      case ::ember::DType::Int64: { using scalar_t = int64_t; return __VA_ARGS__(); }   \
      case ::ember::DType::Int32: { using scalar_t = int32_t; return __VA_ARGS__(); }   \
      case ::ember::DType::UInt8: { using scalar_t = uint8_t; return __VA_ARGS__(); }   \
      case ::ember::DType::Int8: { using scalar_t = int8_t; return __VA_ARGS__(); }     \
      default:                                                                          \
        throw ::ember::Unsupported(std::string(NAME) + ": unsupported dtype " +        \
                                   ::ember::dtype_name(DTYPE));                         \
    }                                                                                   \
  }()

// Floating types only.
#define EMBER_DISPATCH_FLOAT(DTYPE, NAME, ...)                                          \
  [&] {                                                                                 \
    switch (DTYPE) {                                                                    \
      case ::ember::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }   \
      case ::ember::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }  \
      default:                                                                          \
        throw ::ember::Unsupported(std::string(NAME) + ": unsupported dtype " +        \
                                   ::ember::dtype_name(DTYPE));                         \
    }                                                                                   \
  }()
