#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/module_weights.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vlm/dclip.h"

namespace sparsescope::vlm {

std::string dclip_teacher_config_json(const DclipTeacherConfig& c) {
  return nlohmann::json{{"embed_dim", c.embed_dim}, {"heads", c.heads}, {"aggregation_temperature", c.aggregation_temperature}}
      .dump();
}

DclipTeacher load_dclip_teacher(const std::string& path) {
  const vision::SafetensorsFile file = vision::load_safetensors(path);
  const auto card = file.metadata.find(kDclipTeacherCardKey);
  SPARSESCOPE_CHECK(card != file.metadata.end(), path, ": no DCLIP teacher card (", kDclipTeacherCardKey,
                    "); train one with `sparsescope train --task dclip-teacher`");
  DclipTeacherConfig c;
  try {
    const auto j = nlohmann::json::parse(card->second);
    c.embed_dim = j.at("embed_dim").get<int64_t>();
    c.heads = j.at("heads").get<int64_t>();
    c.aggregation_temperature = j.at("aggregation_temperature").get<double>();
  } catch (const nlohmann::json::exception& e) {
    SPARSESCOPE_FAIL(path, ": DCLIP teacher card (", kDclipTeacherCardKey, ") is malformed: ", e.what());
  }
  SPARSESCOPE_CHECK(c.embed_dim > 0 && c.heads > 0 && c.embed_dim % c.heads == 0 && c.aggregation_temperature > 0, path,
                    ": DCLIP teacher card: impossible sizes");
  DclipTeacher teacher(c);
  vision::assign_weights(*teacher, file.tensors, path);
  teacher->eval();
  return teacher;
}

}  // namespace sparsescope::vlm
