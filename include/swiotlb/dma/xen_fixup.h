// Xen's fixup of the bounce pools (the kernel's xen_swiotlb_fixup): a
// guest's pool is contiguous in its own frame numbers but, in a
// paravirtualised guest, scattered over machine frames anywhere in the
// host, so no device with a DMA limit can use it as it is. The fixup
// exchanges each pool's frames with the hypervisor for one run of machine
// frames below the devices' limit.
#pragma once

#include <cstdint>
#include <memory>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/frame_translator.h"

namespace swiotlb {

class IoTlb;

// Exchanges the frames of every configured pool of `io_tlb` that does not
// already lie, as one machine-contiguous run, at or below machine address
// `limit`. Returns the translator that devices of the guest must be given
// from then on (`translator` itself when no pool needed an exchange). Run
// it once the IoTlb is made and before a translated device is created: a
// device works out at creation which pools it reaches. Pools grown or made
// later are not exchanged by this call; an IoTlb whose pools come and go
// takes XenExchangeBackend (xen_exchange_backend.h) instead, which
// exchanges every pool as it is made. Errors: those of
// FrameTranslator::exchanged; the frames of pools exchanged before the one
// that failed go back to `exchange`, so nothing stays taken.
SWIOTLB_API Result<std::shared_ptr<const FrameTranslator>> xen_swiotlb_fixup(
    const IoTlb& io_tlb, std::shared_ptr<const FrameTranslator> translator, FrameExchange& exchange,
    std::uint64_t limit);

}  // namespace swiotlb
