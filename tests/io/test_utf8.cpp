// Names and labels on their way into JSON: valid UTF-8 passes unchanged, every other byte becomes
// \xHH, the same way every time.
#include <gtest/gtest.h>

#include "sparsescope/vision/utf8.h"

namespace sv = sparsescope::vision;

TEST(Utf8, ValidTextPassesUnchanged) {
  for (const std::string text : {"", "cat.png", "caf\xc3\xa9.png", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x90\x88",
                                 "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(sv::is_utf8(text)) << text;
    EXPECT_EQ(sv::printable(text), text);
  }
}

TEST(Utf8, InvalidBytesAreEscaped) {
  const std::pair<std::string, std::string> cases[] = {
      {"caf\xe9.png", "caf\\xE9.png"},                      // Latin-1
      {"\xc3", "\\xC3"},                                    // cut sequence
      {"\xc0\xaf", "\\xC0\\xAF"},                          // overlong '/'
      {"\xe0\x80\xaf", "\\xE0\\x80\\xAF"},                // overlong, three bytes
      {"\xed\xa0\x80", "\\xED\\xA0\\x80"},                // a surrogate
      {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"},       // beyond U+10FFFF
      {"\xff\xfe", "\\xFF\\xFE"},
      {"a\x80" "b\xc3\xa9", "a\\x80b\xc3\xa9"},           // valid text around a stray byte survives
  };
  for (const auto& [bytes, shown] : cases) {
    EXPECT_FALSE(sv::is_utf8(bytes)) << shown;
    EXPECT_EQ(sv::printable(bytes), shown);
    EXPECT_TRUE(sv::is_utf8(sv::printable(bytes)));
  }
}
