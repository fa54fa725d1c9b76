// The text of a native error as JavaScript sees it: libtorch's c10::Error carries a C++ backtrace in
// what(); every catch site that hands an exception's text to JavaScript goes through errorText instead.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace spurmem {

/// Text of an exception without libtorch's C++ backtrace (c10::Error::what_without_backtrace, which
/// libtorch 1.13 and 2.x both have); other exceptions' what().
inline std::string errorText(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace spurmem
