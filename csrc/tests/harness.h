// A minimal test harness for C++ pieces with no Python binding.
#pragma once
#include <functional>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ember::testing {
struct TestCase {
  const char* name;
  std::function<void()> fn;
};
std::vector<TestCase>& registry();
struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
}  // namespace ember::testing

#define EMBER_TEST_CONCAT_INNER(a, b) a##b
#define EMBER_TEST_CONCAT(a, b) EMBER_TEST_CONCAT_INNER(a, b)
#define TEST_CASE(NAME)                                                              \
  static void NAME();                                                                \
  static ::ember::testing::Registrar EMBER_TEST_CONCAT(test_registrar_, NAME)(#NAME, NAME); \
  static void NAME()
#define EXPECT(COND)                                                                   \
  do {                                                                                 \
    if (!(COND)) {                                                                     \
      std::ostringstream os_;                                                          \
      os_ << __FILE__ << ":" << __LINE__ << ": expected " #COND;                       \
      throw std::runtime_error(os_.str());                                             \
    }                                                                                  \
  } while (0)
#define EXPECT_THROWS(STMT, TYPE)                                                      \
  do {                                                                                 \
    bool thrown_ = false;                                                              \
    try { STMT; } catch (const TYPE&) { thrown_ = true; }                              \
    if (!thrown_) throw std::runtime_error(std::string(__FILE__) + ": expected " #TYPE " from " #STMT); \
  } while (0)
