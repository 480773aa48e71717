// A small JSON reader and the string quoting of a writer: what the safetensors header needs, with no
// library behind it, so that the engine (and libunet's inference-only build) carries no JSON
// dependency. RFC 8259 text, strictly: UTF-8 checked, control characters escaped, no trailing commas,
// nothing after the value but whitespace. Stricter than most readers in two ways that matter for
// files from outside: a key that appears twice in one object is an error (which of two tensor
// entries would count is not a question to answer silently), and nesting stops at kMaxDepth.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace unet::json {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  // Numbers: the literal as written; `is_unsigned` when it is a non-negative integer without fraction
  // or exponent that fits in 64 bits, its value then in `u`.
  std::string text;  // also the (unescaped) contents of a string
  bool is_unsigned = false;
  uint64_t u = 0;
  std::vector<Value> items;                            // array elements
  std::vector<std::pair<std::string, Value>> members;  // object members, in file order

  bool is_string() const { return kind == Kind::kString; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
  // The member called `key` of an object, or nullptr.
  const Value* find(const std::string& key) const;
  // Compact JSON text of the value (for messages): numbers as written, strings re-quoted.
  std::string dump() const;
};

constexpr int kMaxDepth = 64;

// Parses `n` bytes of JSON text; throws unet::Error ("at byte B: ...") when the text is not JSON.
Value parse(const char* text, size_t n);

// `s` as a JSON string literal (quotes included), escaping as the common writers do: \" \\ \b \f
// \n \r \t and \u00XX for other control characters; UTF-8 passes through. Throws unet::Error when
// `s` is not valid UTF-8.
std::string quote(const std::string& s);

}  // namespace unet::json
