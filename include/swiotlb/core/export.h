/* SWIOTLB_API marks what libswiotlb exports. The library is built with
   hidden visibility, so a shared libswiotlb.so exports only the C API and
   the C++ classes and functions so marked; a static library is unaffected.
   Valid in C and C++. */
#ifndef SWIOTLB_CORE_EXPORT_H
#define SWIOTLB_CORE_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SWIOTLB_API __attribute__((visibility("default")))
/* For the library's own classes nested in an exported one, which would
   otherwise be exported with it. */
#define SWIOTLB_LOCAL __attribute__((visibility("hidden")))
#else
#define SWIOTLB_API
#define SWIOTLB_LOCAL
#endif

#endif
