# Sparsifiner: its attention policy, training task, FLOPs and mask recall (README.md).
target_sources(sparsescope_vision PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/mask_predictor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sparsifiner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train.cpp
  ${CMAKE_CURRENT_LIST_DIR}/register.cpp
)
