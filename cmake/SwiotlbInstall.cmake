# Install rules: headers, the library, the CMake package (find_package(swiotlb
# CONFIG) gives swiotlb::swiotlb) and the pkg-config file (swiotlb.pc).

set(SWIOTLB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/swiotlb)

install(TARGETS swiotlb EXPORT swiotlbTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Public headers: the C API at the top (<swiotlb.h>), the C++ entry headers
# and each layer's folder. A layer that is not built installs no headers.
install(FILES ${PROJECT_SOURCE_DIR}/include/swiotlb.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/swiotlb/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/swiotlb)
install(FILES ${PROJECT_SOURCE_DIR}/include/swiotlb/swiotlb.h
  ${PROJECT_SOURCE_DIR}/include/swiotlb/iova.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/swiotlb)
if(SWIOTLB_BUILD_SIM)
  install(FILES ${PROJECT_SOURCE_DIR}/include/swiotlb/trace.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/swiotlb)
endif()
foreach(layer IN LISTS SWIOTLB_LAYERS)
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/include/swiotlb/${layer})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/swiotlb/${layer}
      DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/swiotlb FILES_MATCHING PATTERN "*.h"
      # The library's own message helpers (fmt), never seen by a consumer.
      PATTERN "error_format.h" EXCLUDE)
  endif()
endforeach()

install(EXPORT swiotlbTargets NAMESPACE swiotlb:: DESTINATION ${SWIOTLB_CMAKE_DIR})

# The package config finds again what the library links: for a static
# library every package, for a shared one only those its headers use.
get_target_property(SWIOTLB_LIBRARY_TYPE swiotlb TYPE)
if(SWIOTLB_LIBRARY_TYPE STREQUAL "STATIC_LIBRARY")
  set(SWIOTLB_STATIC ON)
else()
  set(SWIOTLB_STATIC OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/swiotlbConfig.cmake.in
  ${PROJECT_BINARY_DIR}/swiotlbConfig.cmake INSTALL_DESTINATION ${SWIOTLB_CMAKE_DIR})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/swiotlbConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/swiotlbConfig.cmake
  ${PROJECT_BINARY_DIR}/swiotlbConfigVersion.cmake DESTINATION ${SWIOTLB_CMAKE_DIR})

# pkg-config: for a static library the packages behind it go to
# Requires.private and the C++ runtime to Libs.private, since a C program
# links them. A shared library names neither: it records what it needs
# itself, and a consumer should not need fmt's or liburing's .pc files.
if(SWIOTLB_STATIC)
  set(SWIOTLB_PC_PRIVATE "Requires.private: fmt liburcu-bp liburing\nLibs.private: -lstdc++ -lm -pthread")
else()
  set(SWIOTLB_PC_PRIVATE "")
endif()
# The prefix is found from the file's own place (${pcfiledir}), so that an
# install with `cmake --install --prefix` elsewhere still finds itself.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SWIOTLB_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH swiotlb_pc_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  set(SWIOTLB_PC_PREFIX "\${pcfiledir}/${swiotlb_pc_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SWIOTLB_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(SWIOTLB_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SWIOTLB_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SWIOTLB_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/swiotlb.pc.in ${PROJECT_BINARY_DIR}/swiotlb.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/swiotlb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
