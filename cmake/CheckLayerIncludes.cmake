# Fails when a file of layer LAYER includes a swiotlb header of a layer other
# than LAYER and those in ALLOWED (comma-separated); FILES: the files, comma-
# separated. Touches STAMP when all is well. Run by swiotlb_add_layer().
cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" allowed "${LAYER},${ALLOWED}")
string(REPLACE "," ";" files "${FILES}")
set(bad "")
foreach(file IN LISTS files)
  file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]swiotlb/[a-z0-9_]+/")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[^<\"]*[<\"]swiotlb/([a-z0-9_]+)/.*$" "\\1" used "${line}")
    if(NOT used IN_LIST allowed)
      string(APPEND bad "\n  ${file}: ${line}  (layer ${used} is not one ${LAYER} may use)")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "layer ${LAYER} includes headers of layers it does not link:${bad}\n"
                      "Name the layer in swiotlb_add_layer(${LAYER} LAYERS ...) in CMakeLists.txt "
                      "if the dependency is meant, keeping the order of src/README.md.")
endif()
file(TOUCH ${STAMP})
