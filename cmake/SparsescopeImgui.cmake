# SPARSESCOPE_BUILD_IMGUI=AUTO|ON|OFF: the Dear ImGui panel (lib/imgui) and its demo. They use
# Debian's libimgui-dev 1.86 (a static libimgui, found through pkg-config, with the GLFW and
# OpenGL 3 backends compiled in), GLFW 3 (libglfw3-dev) and OpenGL (libgl-dev). AUTO builds them
# when all three are found.
set(SPARSESCOPE_WITH_IMGUI OFF)
if(NOT SPARSESCOPE_BUILD_IMGUI STREQUAL "OFF")
  pkg_check_modules(IMGUI QUIET IMPORTED_TARGET imgui)
  find_package(glfw3 3.3 QUIET)
  find_package(OpenGL QUIET COMPONENTS OpenGL)
  if(IMGUI_FOUND AND glfw3_FOUND AND OpenGL_OpenGL_FOUND)
    set(SPARSESCOPE_WITH_IMGUI ON)
  elseif(SPARSESCOPE_BUILD_IMGUI STREQUAL "ON")
    message(FATAL_ERROR "SPARSESCOPE_BUILD_IMGUI=ON but Dear ImGui (${IMGUI_FOUND}), GLFW 3 (${glfw3_FOUND}) or "
                        "OpenGL (${OpenGL_OpenGL_FOUND}) is missing; install libimgui-dev libglfw3-dev libgl-dev")
  endif()
endif()
message(STATUS "sparsescope: ImGui panel ${SPARSESCOPE_WITH_IMGUI} (SPARSESCOPE_BUILD_IMGUI=${SPARSESCOPE_BUILD_IMGUI})")
