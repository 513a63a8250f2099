#pragma once
// gzip (RFC 1952) decompression of whole files held in memory, through the inflate of Debian's
// libstb (already linked for PNG), so the data readers need no zlib.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vision {

/// True when `data` starts with the gzip magic bytes 1f 8b.
bool is_gzip(const std::uint8_t* data, std::size_t size);

/// Decompresses a single-member gzip stream after checking its header (method, flags, optional
/// fields), the decompressed size against `max_output` and, after inflating, the CRC-32 and size
/// recorded in its trailer. Throws sparsescope::Error naming `name` and what is wrong.
std::vector<std::uint8_t> gunzip(const std::uint8_t* data, std::size_t size, const std::string& name,
                                 std::size_t max_output);

}  // namespace sparsescope::vision
