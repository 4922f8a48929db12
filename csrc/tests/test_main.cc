// Ember's C++ test runner: a minimal harness (no third-party framework is vendored).
// Prints "N passed, N failed" and exits non-zero on any failure.
#include "tests/harness.h"

#include <cstdio>

namespace ember::testing {
std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}
}  // namespace ember::testing

int main() {
  int passed = 0, failed = 0;
  for (const auto& t : ember::testing::registry()) {
    try {
      t.fn();
      ++passed;
      std::printf("PASS %s\n", t.name);
    } catch (const std::exception& e) {
      ++failed;
      std::printf("FAIL %s: %s\n", t.name, e.what());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
