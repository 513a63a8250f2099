#include "options_json.h"

#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

using nlohmann::json;

std::string sparsifiner_options_to_json(const SparsifinerOptions& s) {
  return json{{"keep_rate", s.keep_rate},
              {"reduce_c", s.reduce_c},
              {"reduce_n", s.reduce_n},
              {"basis_threshold", s.basis_threshold},
              {"basis_topk", s.basis_topk}}
      .dump();
}

SparsifinerOptions sparsifiner_options_from_json(const std::string& text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(j.is_object(), "sparsifiner options are not a JSON object: ", text);
  SparsifinerOptions s;
  for (const auto& [key, value] : j.items()) {
    const bool integer = key == "reduce_c" || key == "reduce_n" || key == "basis_topk";
    const bool real = key == "keep_rate" || key == "basis_threshold";
    SPARSESCOPE_CHECK(integer || real, "sparsifiner: unknown option '", key,
                      "' (keep_rate, reduce_c, reduce_n, basis_threshold, basis_topk)");
    SPARSESCOPE_CHECK(integer ? value.is_number_integer() : value.is_number(), "sparsifiner: option '", key,
                      "' must be ", integer ? "an integer" : "a number", ", got ", value.dump());
  }
  s.keep_rate = j.value("keep_rate", s.keep_rate);
  s.reduce_c = j.value("reduce_c", s.reduce_c);
  s.reduce_n = j.value("reduce_n", s.reduce_n);
  s.basis_threshold = j.value("basis_threshold", s.basis_threshold);
  s.basis_topk = j.value("basis_topk", s.basis_topk);
  SPARSESCOPE_CHECK(s.keep_rate > 0 && s.keep_rate <= 1, "sparsifiner: keep_rate ", s.keep_rate, " must be in (0, 1]");
  SPARSESCOPE_CHECK(s.reduce_c >= 1 && s.reduce_n >= 1 && s.basis_topk >= 1 && s.basis_threshold >= 0,
                    "sparsifiner: reduce_c, reduce_n and basis_topk must be at least 1 and basis_threshold at least 0, "
                    "got ", s.reduce_c, ", ", s.reduce_n, ", ", s.basis_topk, ", ", s.basis_threshold);
  return s;
}

}  // namespace sparsescope::vision
