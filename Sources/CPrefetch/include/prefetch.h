#ifndef SCULPT_PREFETCH_H
#define SCULPT_PREFETCH_H

// Software prefetch for the quantized kernels. Swift has no prefetch of its own, and the
// intrinsics header spells _mm_prefetch as a function-like macro, which Swift cannot import;
// this static inline function is inlined into the Swift callers as one prefetcht0.

/// Asks for the cache line at `address` in every cache level; never faults, even past the end
/// of an allocation.
static inline __attribute__((always_inline)) void sculpt_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
