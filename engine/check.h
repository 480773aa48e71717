// One way to fail: every engine error is an unet::Error carrying where it was raised and why.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace unet {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The kinds of failure a caller may act on differently (libunet turns each into its own status):
struct IoError : Error {  // a file could not be opened, read or written
  using Error::Error;
};
struct OutOfMemory : Error {  // an allocation was refused, or a job would not fit the memory there is
  using Error::Error;
};
struct Cancelled : Error {  // the caller asked a running job to stop
  using Error::Error;
};
struct Unsupported : Error {  // a valid request this device or build cannot do (e.g. tf32 on the CPU)
  using Error::Error;
};

namespace detail {
// The message is for the user (it names their file, tile or tensor), so it carries no C++ source
// location; define UNET_ERROR_LOCATIONS to append one when debugging the engine itself.
template <typename E = Error, typename... Args>
[[noreturn]] void fail([[maybe_unused]] const char* file, [[maybe_unused]] int line, Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
#if defined(UNET_ERROR_LOCATIONS)
  os << " [" << file << ":" << line << "]";
#endif
  throw E(os.str());
}
}  // namespace detail

}  // namespace unet

// UNET_CHECK(cond, message parts...): throw unet::Error with the message when cond is false.
#define UNET_CHECK(cond, ...)                                           \
  do {                                                                  \
    if (!(cond)) ::unet::detail::fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define UNET_FAIL(...) ::unet::detail::fail(__FILE__, __LINE__, __VA_ARGS__)
// UNET_FAIL_AS(IoError, message parts...): throw that kind of Error.
#define UNET_FAIL_AS(E, ...) ::unet::detail::fail<::unet::E>(__FILE__, __LINE__, __VA_ARGS__)
