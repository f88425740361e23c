# The layers of the library and the library a consumer links.
#
# swiotlb_add_layer(<layer> [LAYERS <layer>...] [PUBLIC_PACKAGES <target>...]
#                   [PRIVATE_PACKAGES <target>...])
#   Makes swiotlb_<layer>, a static library of src/<layer>/*.cc that links the
#   layers named (and through them their own) and the packages named. A build
#   step checks every file of the layer (src/<layer>/, include/swiotlb/<layer>/)
#   and fails the layer when one includes a swiotlb header of a layer that is
#   not named.
#
# swiotlb_add_library()
#   Makes `swiotlb` (alias swiotlb::swiotlb): every layer's objects in one
#   library, static unless BUILD_SHARED_LIBS. Symbols are hidden unless marked
#   SWIOTLB_API (include/swiotlb/core/export.h); a shared library also exports
#   nothing outside the swiotlb_ C functions and the swiotlb namespace
#   (cmake/swiotlb.map), so fmt, liburcu and libstdc++ stay private.

set(CMAKE_OPTIMIZE_DEPENDENCIES ON)

# What the library's own sources, its tests and the command compile with: the
# fmt-based message helpers of core/error.h, which installed headers keep out
# of a consumer's sight.
add_library(swiotlb_internal INTERFACE)
target_compile_definitions(swiotlb_internal INTERFACE SWIOTLB_INTERNAL_FORMAT)
target_link_libraries(swiotlb_internal INTERFACE fmt::fmt)
if(SWIOTLB_CHECKS)
  target_compile_definitions(swiotlb_internal INTERFACE SWIOTLB_ENABLE_CHECKS)
endif()

set_property(GLOBAL PROPERTY SWIOTLB_LAYER_LIST "")

function(swiotlb_add_layer layer)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "LAYERS;PUBLIC_PACKAGES;PRIVATE_PACKAGES")
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*.cc)
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*.h
       ${PROJECT_SOURCE_DIR}/include/swiotlb/${layer}/*.h)
  if(NOT sources)
    message(FATAL_ERROR "layer ${layer}: no sources in src/${layer}")
  endif()
  set(deps "")
  foreach(dep IN LISTS arg_LAYERS)
    if(NOT TARGET swiotlb_${dep})
      message(FATAL_ERROR "layer ${layer} uses ${dep}, which is not a layer declared before it")
    endif()
    list(APPEND deps swiotlb_${dep})
  endforeach()

  # The include check, rerun whenever a file of the layer changes.
  set(stamp ${PROJECT_BINARY_DIR}/layer_checks/${layer}.stamp)
  list(JOIN arg_LAYERS "," allowed)
  set(files ${sources} ${headers})
  list(JOIN files "," file_arg)
  add_custom_command(OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DLAYER=${layer} -DALLOWED=${allowed} -DFILES=${file_arg}
            -DSTAMP=${stamp} -P ${PROJECT_SOURCE_DIR}/cmake/CheckLayerIncludes.cmake
    DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/CheckLayerIncludes.cmake
    COMMENT "Checking that layer ${layer} includes only ${layer} and: ${allowed}"
    VERBATIM)

  add_library(swiotlb_${layer} STATIC ${sources} ${stamp})
  target_include_directories(swiotlb_${layer} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>)
  target_compile_options(swiotlb_${layer} PRIVATE ${SWIOTLB_WARNINGS})
  target_compile_definitions(swiotlb_${layer} PRIVATE SWIOTLB_BUILDING_LIBRARY)
  target_link_libraries(swiotlb_${layer}
    PUBLIC ${deps} ${arg_PUBLIC_PACKAGES} Threads::Threads
    PRIVATE swiotlb_internal ${arg_PRIVATE_PACKAGES})
  set_target_properties(swiotlb_${layer} PROPERTIES POSITION_INDEPENDENT_CODE "${BUILD_SHARED_LIBS}")
  set_target_properties(swiotlb_${layer} PROPERTIES
    CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  set_property(GLOBAL APPEND PROPERTY SWIOTLB_LAYER_LIST ${layer})
  set_property(GLOBAL APPEND PROPERTY SWIOTLB_PUBLIC_PACKAGES ${arg_PUBLIC_PACKAGES})
  set_property(GLOBAL APPEND PROPERTY SWIOTLB_PRIVATE_PACKAGES ${arg_PRIVATE_PACKAGES})
endfunction()

function(swiotlb_add_library)
  get_property(layers GLOBAL PROPERTY SWIOTLB_LAYER_LIST)
  get_property(public_packages GLOBAL PROPERTY SWIOTLB_PUBLIC_PACKAGES)
  get_property(private_packages GLOBAL PROPERTY SWIOTLB_PRIVATE_PACKAGES)
  list(REMOVE_DUPLICATES public_packages)
  list(REMOVE_DUPLICATES private_packages)
  # nlohmann-json is headers only: the library links nothing of it, and of
  # the installed headers only the opt-in *_json.h ones include it. So the
  # installed target does not name it, and a consumer without it can still
  # find_package(swiotlb); swiotlbConfig.cmake adds it where it is found.
  foreach(packages public_packages private_packages)
    list(TRANSFORM ${packages} REPLACE "^nlohmann_json::nlohmann_json$"
         "$<BUILD_INTERFACE:nlohmann_json::nlohmann_json>")
  endforeach()
  set(objects "")
  foreach(layer IN LISTS layers)
    list(APPEND objects $<TARGET_OBJECTS:swiotlb_${layer}>)
  endforeach()
  add_library(swiotlb ${objects})
  add_library(swiotlb::swiotlb ALIAS swiotlb)
  target_include_directories(swiotlb PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(swiotlb PUBLIC ${public_packages} Threads::Threads
                        PRIVATE ${private_packages})
  # The C++ headers are C++20; a C program is unaffected.
  target_compile_features(swiotlb PUBLIC cxx_std_20)
  set_target_properties(swiotlb PROPERTIES
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
    EXPORT_NAME swiotlb
    # A C program links it with the C++ driver (libstdc++).
    LINKER_LANGUAGE CXX)
  if(BUILD_SHARED_LIBS)
    target_link_options(swiotlb PRIVATE
      -Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/swiotlb.map -Wl,--no-undefined)
    set_property(TARGET swiotlb APPEND PROPERTY LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/swiotlb.map)
  endif()
  set(SWIOTLB_LAYERS ${layers} PARENT_SCOPE)
endfunction()
