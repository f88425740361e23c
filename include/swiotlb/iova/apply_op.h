// apply(op, IovaDomain): the op vocabulary (ops/op.h) on an IOVA domain.
//
//   iova_reserve  IovaDomain::reserve; gives 0
//   iova_alloc    IovaDomain::alloc_fast; gives the pfn
//   iova_free     IovaDomain::free_fast
//   tick          changes nothing: nothing in a domain waits on time
//   map, unmap, sync_*, grow  refused (Errc::invalid_argument)
//
// Errors are the domain's own, nothing changed by them. Thread safety: as
// the IovaDomain calls it makes.
#pragma once

#include "swiotlb/core/export.h"
#include "swiotlb/iova/iova_domain.h"
#include "swiotlb/iova/iova_trace.h"
#include "swiotlb/ops/op.h"

namespace swiotlb::ops {

SWIOTLB_API Applied apply(const Op& op, iova::IovaDomain& domain);

// The op one IOVA trace line says (its domain aside: the caller picks the
// IovaDomain to apply it to).
SWIOTLB_API Op op_from_iova(const iova::IovaTraceOp& op);

}  // namespace swiotlb::ops
