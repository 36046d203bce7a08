#pragma once
// Typed errors. Every message reads "[op] what went wrong: the shapes/dtypes involved".
// The Python bindings map each type to the Python exception of the same name.
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dc {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ValueError : Error { using Error::Error; };
struct IndexError : Error { using Error::Error; };
struct TypeError : Error { using Error::Error; };
struct RuntimeError : Error { using Error::Error; };
struct MemoryError : Error { using Error::Error; };
struct NotImplementedError : Error { using Error::Error; };

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

// "(3, 4)" like a Python tuple; "()" for a scalar, "(5,)" for one dim.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace dc

#define DC_THROW(Type, ...) throw ::dc::Type(::dc::str(__VA_ARGS__))
#define DC_CHECK(cond, Type, ...)   \
  do {                              \
    if (!(cond)) DC_THROW(Type, __VA_ARGS__); \
  } while (0)
