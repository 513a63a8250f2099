#pragma once
// Typed reads of a JSON object's keys for the model cards, with errors that name the key.
#include <nlohmann/json.hpp>

#include <string>
#include <type_traits>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::detail {

/// Reads `j[key]` into `field` as its type; throws sparsescope::Error "<what>: key '<key>' is
/// missing" or "... has the wrong type: <value>".
template <typename T>
void json_field(const nlohmann::json& j, const char* key, T& field, const std::string& what) {
  SPARSESCOPE_CHECK(j.contains(key), what, ": key '", key, "' is missing");
  try {
    field = j.at(key).get<std::decay_t<T>>();
  } catch (const nlohmann::json::exception&) {
    SPARSESCOPE_FAIL(what, ": key '", key, "' has the wrong type: ", j.at(key).dump());
  }
}

}  // namespace sparsescope::vision::detail
