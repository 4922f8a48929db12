// The ember::Error hierarchy. Every failure the library reports is one of these; none aborts.
// They cross into Python as graphruntime.errors.{EmberError, InvalidArgumentError,
// InvalidModelError, UnsupportedError}.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ember {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A caller passed something wrong: shapes, dtypes, attribute values, feeds.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};
// A model file or NetDef is malformed, corrupt, or inconsistent with the op schemas.
class InvalidModel : public Error {
 public:
  using Error::Error;
};
// Well-formed, but not implemented: an unknown op, a dtype with no kernel.
class Unsupported : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

template <typename E = InvalidArgument, typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw E(detail::str_cat(std::forward<Args>(args)...));
}

}  // namespace ember

// EMBER_CHECK(cond, ErrorType, message parts...): throws ErrorType(message) when cond is false.
#define EMBER_CHECK(COND, ERR, ...)                                \
  do {                                                             \
    if (!(COND)) ::ember::fail<::ember::ERR>(__VA_ARGS__);         \
  } while (0)
