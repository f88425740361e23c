// The DMA tests run with the DMA debug checks on, whatever the build type,
// as the kernel's own DMA tests run with CONFIG_DMA_API_DEBUG. Set before
// main(), so every device a test creates with the process default checks.
#include "swiotlb/dma/dma_debug.h"

namespace {

[[maybe_unused]] const bool checks_on = [] {
  swiotlb::set_dma_debug_default(true);
  return true;
}();

}  // namespace
