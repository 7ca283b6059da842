// Minimal assertion helpers for the native tests: each test binary prints "N passed, N failed"
// and exits non-zero on any failure.
#pragma once

#include <cmath>
#include <cstdio>

namespace native_test {

inline int& passed() {
  static int n = 0;
  return n;
}
inline int& failed() {
  static int n = 0;
  return n;
}

inline void check(bool ok, const char* what, const char* file, int line) {
  if (ok) {
    ++passed();
  } else {
    ++failed();
    std::printf("FAILED %s:%d: %s\n", file, line, what);
  }
}

inline bool close(double a, double b, double tol) { return std::fabs(a - b) <= tol * (1.0 + std::fabs(b)); }

inline int finish() {
  std::printf("%d passed, %d failed\n", passed(), failed());
  return failed() == 0 ? 0 : 1;
}

}  // namespace native_test

#define CHECK(cond) ::native_test::check((cond), #cond, __FILE__, __LINE__)
#define CHECK_CLOSE(a, b, tol) ::native_test::check(::native_test::close((a), (b), (tol)), #a " ~= " #b, __FILE__, __LINE__)
