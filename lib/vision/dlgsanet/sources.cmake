# DLGSANet: the super-resolution network and its configurations (README.md).
target_sources(sparsescope_vision PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/configs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dlgsanet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/load.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sr_model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train_sr.cpp
  ${CMAKE_CURRENT_LIST_DIR}/register.cpp
)
