#include "engine/json.h"

#include <cstdio>
#include <cstring>

#include "engine/check.h"

namespace unet::json {

namespace {

// Length of the well-formed UTF-8 sequence at p (at most `left` bytes), 0 when it is not one:
// overlong forms, UTF-16 surrogates and code points past U+10FFFF are refused (RFC 3629).
size_t utf8_length(const unsigned char* p, size_t left) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  if (left < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

class Parser {
 public:
  Parser(const char* text, size_t n) : p_(reinterpret_cast<const unsigned char*>(text)), n_(n) {}

  Value document() {
    Value v = value(0);
    skip_space();
    if (i_ != n_) fail("unexpected ", describe(), " after the JSON value");
    return v;
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail(Args&&... args) const {
    UNET_FAIL("at byte ", i_, ": ", std::forward<Args>(args)...);
  }

  std::string describe() const {
    if (i_ >= n_) return "end of text";
    const unsigned char c = p_[i_];
    if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skip_space() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }

  void expect(char c, const char* where) {
    skip_space();
    if (i_ >= n_ || p_[i_] != static_cast<unsigned char>(c)) fail("expected '", c, "' ", where, ", found ", describe());
    ++i_;
  }

  Value value(int depth) {
    skip_space();
    if (i_ >= n_) fail("expected a value, found the end of text");
    const unsigned char c = p_[i_];
    if (c == '{') return object(depth + 1);
    if (c == '[') return array(depth + 1);
    if (c == '"') {
      Value v;
      v.kind = Value::Kind::kString;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    for (const char* word : {"true", "false", "null"}) {
      const size_t len = std::strlen(word);
      if (n_ - i_ >= len && std::memcmp(p_ + i_, word, len) == 0) {
        i_ += len;
        Value v;
        v.kind = word[0] == 'n' ? Value::Kind::kNull : Value::Kind::kBool;
        v.boolean = word[0] == 't';
        return v;
      }
    }
    fail("expected a value, found ", describe());
  }

  Value object(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than ", kMaxDepth, " levels");
    ++i_;  // '{'
    Value v;
    v.kind = Value::Kind::kObject;
    skip_space();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
      return v;
    }
    for (;;) {
      skip_space();
      if (i_ >= n_ || p_[i_] != '"') fail("expected a string as object key, found ", describe());
      const size_t key_at = i_;
      std::string key = string();
      if (v.find(key)) {
        i_ = key_at;
        fail("the key ", quote(key), " appears twice in one object");
      }
      expect(':', "after an object key");
      Value member = value(depth);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_space();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      expect('}', "or ',' in an object");
      return v;
    }
  }

  Value array(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than ", kMaxDepth, " levels");
    ++i_;  // '['
    Value v;
    v.kind = Value::Kind::kArray;
    skip_space();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      return v;
    }
    for (;;) {
      v.items.push_back(value(depth));
      skip_space();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      expect(']', "or ',' in an array");
      return v;
    }
  }

  uint32_t hex4() {
    if (n_ - i_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const unsigned char c = p_[i_];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else fail("bad hex digit ", describe(), " in a \\u escape");
      v = v * 16 + d;
      ++i_;
    }
    return v;
  }

  std::string string() {
    ++i_;  // '"'
    std::string out;
    for (;;) {
      if (i_ >= n_) fail("unterminated string");
      const unsigned char c = p_[i_];
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character ", describe(), " in a string");
      if (c == '\\') {
        if (++i_ >= n_) fail("unterminated string");
        const unsigned char e = p_[i_++];
        switch (e) {
          case '"':
            out.push_back('"');
            break;
          case '\\':
            out.push_back('\\');
            break;
          case '/':
            out.push_back('/');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xdc00 && cp <= 0xdfff) fail("lone low surrogate in a \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
              if (n_ - i_ < 2 || p_[i_] != '\\' || p_[i_ + 1] != 'u') fail("high surrogate without its low half");
              i_ += 2;
              const uint32_t lo = hex4();
              if (lo < 0xdc00 || lo > 0xdfff) fail("high surrogate without its low half");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --i_;
            fail("unknown escape \\", describe());
        }
        continue;
      }
      const size_t len = utf8_length(p_ + i_, n_ - i_);
      if (len == 0) fail("invalid UTF-8 ", describe(), " in a string");
      out.append(reinterpret_cast<const char*>(p_ + i_), len);
      i_ += len;
    }
  }

  Value number() {
    const size_t start = i_;
    Value v;
    v.kind = Value::Kind::kNumber;
    const bool negative = p_[i_] == '-';
    if (negative) ++i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
      return i_ - from;
    };
    if (i_ < n_ && p_[i_] == '0') ++i_;
    else if (digits() == 0) fail("expected a digit, found ", describe());
    const size_t int_end = i_;
    bool integer = true;
    if (i_ < n_ && p_[i_] == '.') {
      ++i_;
      if (digits() == 0) fail("expected a digit after '.', found ", describe());
      integer = false;
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
      if (digits() == 0) fail("expected a digit in the exponent, found ", describe());
      integer = false;
    }
    v.text.assign(reinterpret_cast<const char*>(p_ + start), i_ - start);
    if (integer && !negative) {
      uint64_t u = 0;
      bool fits = true;
      for (size_t k = start; k < int_end && fits; ++k) {
        const uint64_t d = p_[k] - '0';
        if (u > (UINT64_MAX - d) / 10) fits = false;
        else u = u * 10 + d;
      }
      v.is_unsigned = fits;
      v.u = fits ? u : 0;
    }
    return v;
  }

  const unsigned char* p_;
  size_t n_, i_ = 0;
};

}  // namespace

const Value* Value::find(const std::string& key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

std::string Value::dump() const {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return boolean ? "true" : "false";
    case Kind::kNumber:
      return text;
    case Kind::kString:
      return quote(text);
    case Kind::kArray: {
      std::string s = "[";
      for (size_t i = 0; i < items.size(); ++i) s += (i ? "," : "") + items[i].dump();
      return s + "]";
    }
    case Kind::kObject: {
      std::string s = "{";
      for (size_t i = 0; i < members.size(); ++i)
        s += (i ? "," : "") + quote(members[i].first) + ":" + members[i].second.dump();
      return s + "}";
    }
  }
  return "";
}

Value parse(const char* text, size_t n) { return Parser(text, n).document(); }

std::string quote(const std::string& s) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const size_t len = utf8_length(p + i, s.size() - i);
      UNET_CHECK(len > 0, "byte ", i, " of \"", s.substr(0, i), "...\" is not valid UTF-8");
      out.append(s, i, len);
      i += len;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  return out + "\"";
}

}  // namespace unet::json
