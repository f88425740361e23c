/* SWIOTLB_API marks what libswiotlb exports. The library is built with
   hidden visibility, so a shared libswiotlb.so exports only the C API and
   the C++ classes and functions so marked; a static library is unaffected.
   Valid in C and C++. */
#ifndef SWIOTLB_CORE_EXPORT_H
#define SWIOTLB_CORE_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SWIOTLB_API __attribute__((visibility("default")))
#else
#define SWIOTLB_API
#endif

#endif
