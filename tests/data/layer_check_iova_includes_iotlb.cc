// Input of the layer include check's tests (tests/CMakeLists.txt): a file
// of the iova layer that includes an iotlb header. Never compiled.
#include "swiotlb/core/error.h"
#include "swiotlb/iotlb/io_tlb.h"
