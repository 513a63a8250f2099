# MAE and MAE-LUT: the masked autoencoder, LUT's two-view masking, heads and loss (README.md).
target_sources(sparsescope_vision PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/configs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/finetune.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lut_views.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mae.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pretrain.cpp
  ${CMAKE_CURRENT_LIST_DIR}/reconstruct.cpp
  ${CMAKE_CURRENT_LIST_DIR}/register.cpp
)
