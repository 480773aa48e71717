// engine/json: the safetensors header's reader and the writer's quoting, against the JSON grammar and
// against nlohmann-json (what wrote and read the headers before), so that files written by either
// read the same.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/check.h"
#include "engine/json.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/temp_dir.h"

using namespace unet;
using Catch::Matchers::Contains;

namespace {

std::string parse_error(const std::string& text) {
  try {
    json::parse(text.data(), text.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json reads every kind of value", "[json]") {
  const std::string text = R"( {"a": [1, 0, 18446744073709551615, 18446744073709551616, -3, 2.5, 1e3],
    "s": "x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00", "t": true, "f": false, "n": null, "o": {}, "e": []} )";
  const json::Value v = json::parse(text.data(), text.size());
  REQUIRE(v.is_object());
  REQUIRE(v.members.size() == 7);
  const json::Value& a = *v.find("a");
  REQUIRE(a.items.size() == 7);
  CHECK(a.items[0].is_unsigned);
  CHECK(a.items[0].u == 1);
  CHECK(a.items[1].u == 0);
  CHECK(a.items[2].is_unsigned);
  CHECK(a.items[2].u == 18446744073709551615ull);
  CHECK_FALSE(a.items[3].is_unsigned);  // 2^64: no longer an unsigned 64-bit integer
  CHECK_FALSE(a.items[4].is_unsigned);
  CHECK_FALSE(a.items[5].is_unsigned);
  CHECK_FALSE(a.items[6].is_unsigned);
  CHECK(a.items[6].text == "1e3");
  CHECK(v.find("s")->text == "x\"y\\z/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("t")->boolean);
  CHECK(v.find("f")->kind == json::Value::Kind::kBool);
  CHECK(v.find("n")->kind == json::Value::Kind::kNull);
  CHECK(v.find("o")->is_object());
  CHECK(v.find("e")->is_array());
  CHECK(v.find("missing") == nullptr);
  CHECK(a.dump() == "[1,0,18446744073709551615,18446744073709551616,-3,2.5,1e3]");
}

TEST_CASE("json refuses what is not JSON, saying where", "[json]") {
  CHECK_THAT(parse_error(""), Contains("at byte 0") && Contains("end of text"));
  CHECK_THAT(parse_error("{\"a\": 1,}"), Contains("at byte 8") && Contains("string as object key"));
  CHECK_THAT(parse_error("[1, 2,]"), Contains("expected a value"));
  CHECK_THAT(parse_error("{\"a\" 1}"), Contains("expected ':'"));
  CHECK_THAT(parse_error("{\"a\": 1} x"), Contains("after the JSON value"));
  CHECK_THAT(parse_error("[01]"), Contains("expected ']'"));
  CHECK_THAT(parse_error("[1.]"), Contains("digit after '.'"));
  CHECK_THAT(parse_error("[1e]"), Contains("exponent"));
  CHECK_THAT(parse_error("[-]"), Contains("expected a digit"));
  CHECK_THAT(parse_error("[tru]"), Contains("expected a value"));
  CHECK_THAT(parse_error("\"abc"), Contains("unterminated"));
  CHECK_THAT(parse_error("\"a\tb\""), Contains("control character"));
  CHECK_THAT(parse_error("\"\\x\""), Contains("unknown escape"));
  CHECK_THAT(parse_error("\"\\u12g4\""), Contains("hex digit"));
  CHECK_THAT(parse_error("\"\\ud800\""), Contains("high surrogate"));
  CHECK_THAT(parse_error("\"\\udc00\""), Contains("low surrogate"));
  CHECK_THAT(parse_error("\"\xff\""), Contains("invalid UTF-8"));
  CHECK_THAT(parse_error("\"\xc0\xaf\""), Contains("invalid UTF-8"));      // overlong '/'
  CHECK_THAT(parse_error("\"\xed\xa0\x80\""), Contains("invalid UTF-8"));  // an encoded surrogate
  CHECK_THAT(parse_error("\"\xe2\x82\""), Contains("invalid UTF-8"));      // cut short
  CHECK_THAT(parse_error(R"({"w": 1, "w": 2})"), Contains("\"w\"") && Contains("appears twice"));
  CHECK_THAT(parse_error(std::string(json::kMaxDepth + 1, '[') + std::string(json::kMaxDepth + 1, ']')),
             Contains("nesting deeper"));
  CHECK(parse_error(std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']')).empty());
}

TEST_CASE("json agrees with nlohmann-json on quoting and on what parses", "[json]") {
  // Quoting: every string nlohmann-json dumps, byte for byte (what safetensors headers used to hold).
  for (const std::string& s :
       {std::string(""), std::string("plain"), std::string("q\"b\\s/"), std::string("\x01\x1f\x7f\b\f\n\r\t", 8),
        std::string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")})
    CHECK(json::quote(s) == nlohmann::json(s).dump());
  CHECK_THROWS_WITH(json::quote("bad \xff byte"), Contains("not valid UTF-8"));
  // Random short texts over JSON's alphabet: both parse, or both refuse (ours refuses duplicate keys
  // and deep nesting too, which random texts this short do not reach; nlohmann-json refuses numbers
  // that overflow a double, which ours reads as text).
  Rng rng(7);
  const std::string alphabet = "{}[],:\"\\ 0123456789.-+eEtruefalsn\xc3\xa9u";
  int both_parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng.below(12));
    for (int k = 0; k < n; ++k) s.push_back(alphabet[rng.below(static_cast<uint32_t>(alphabet.size()))]);
    if (i % 3 == 0) s = "{\"k\":" + s + "}";
    const bool ours = parse_error(s).empty();
    bool theirs = nlohmann::json::accept(s);
    if (ours && !theirs) {  // nlohmann-json also refuses numbers beyond a double's range, which JSON allows
      try {
        const nlohmann::json parsed = nlohmann::json::parse(s);
        (void)parsed;
      } catch (const nlohmann::json::exception& e) {
        theirs = std::string(e.what()).find("number overflow") != std::string::npos;
      }
    }
    INFO("text: " << s);
    CHECK(ours == theirs);
    both_parsed += ours && theirs;
  }
  CHECK(both_parsed > 100);
}

TEST_CASE("safetensors files are written byte for byte as the nlohmann-json writer wrote them", "[json][safetensors]") {
  // fuzz/corpus holds checkpoints written with nlohmann-json: read and written again, the same bytes.
  test::TempDir tmp;
  for (const char* name : {"train.safetensors", "weights.safetensors"}) {
    const std::string src = std::string(UNET_SOURCE_DIR) + "/fuzz/corpus/fuzz_safetensors/" + name;
    const SafetensorsFile f = load_safetensors(src);
    save_safetensors(tmp / name, f.tensors, f.metadata);
    auto bytes = [](const std::string& p) {
      std::ifstream in(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    INFO(name);
    CHECK(bytes(tmp / name) == bytes(src));
  }
}
