# `cmake --install` puts headers, libraries and a CMake package in the prefix, so that a consumer
# project only needs find_package(sparsescope) (and LibTorch on its prefix path).
include(CMakePackageConfigHelpers)
set(SPARSESCOPE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/sparsescope")

install(TARGETS sparsescope_kernels sparsescope_vision sparsescope_vlm
  EXPORT sparsescopeTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(layer kernels vision vlm)
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/lib/${layer}/include/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          PATTERN "video.h" EXCLUDE)
endforeach()
if(SPARSESCOPE_WITH_VIDEO)
  install(FILES "${PROJECT_SOURCE_DIR}/lib/vision/include/sparsescope/vision/video.h"
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sparsescope/vision)
endif()
if(SPARSESCOPE_WITH_IMGUI)
  # A static library: the app that links it brings the one ImGui (Debian's libimgui-dev 1.86).
  install(TARGETS sparsescope_imgui EXPORT sparsescopeTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/lib/imgui/include/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
install(EXPORT sparsescopeTargets NAMESPACE sparsescope:: DESTINATION "${SPARSESCOPE_CMAKE_DIR}")

configure_package_config_file(cmake/sparsescopeConfig.cmake.in
  "${PROJECT_BINARY_DIR}/sparsescopeConfig.cmake" INSTALL_DESTINATION "${SPARSESCOPE_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/sparsescopeConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/sparsescopeConfig.cmake" "${PROJECT_BINARY_DIR}/sparsescopeConfigVersion.cmake"
  DESTINATION "${SPARSESCOPE_CMAKE_DIR}")
