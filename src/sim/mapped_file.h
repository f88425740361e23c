// A whole file's bytes in memory, under its sim name, for the replays (the
// class is the ops layer's: swiotlb/ops/mapped_file.h).
#pragma once

#include "swiotlb/ops/mapped_file.h"

namespace swiotlb::sim {

using ops::MappedFile;

}  // namespace swiotlb::sim
