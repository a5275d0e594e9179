/*
 * The elementwise kernels are compiled for the x86-64 baseline (SSE2) and,
 * through GCC's function multi-versioning, for x86-64-v3 (AVX2, FMA) and
 * AVX-512 too; the loader picks the widest the CPU has, once, by its
 * features. Those two variants run the activations with fused
 * multiply-adds, the baseline with plain ones (activation.h): cell_fused()
 * says which, from the same tests of the CPU as the loader's. So, like the
 * products, the cells' last bits depend on the CPU, never on the run, the
 * batch or the threads: nothing else is contracted (-ffp-contract=off), so
 * each element goes through the same operations in vector and scalar code.
 * LSTM_NO_CLONES (CMake's LSTM_CPU_CLONES=OFF) keeps the baseline alone,
 * plain.
 */
#ifndef LSTM_CLONES_H
#define LSTM_CLONES_H

#include <stdbool.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(LSTM_NO_CLONES)
#  define CELL_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#  define CELL_HAS_CLONES 1
#else
#  define CELL_CLONES
#  define CELL_HAS_CLONES 0
#endif

/* Whether the variant the loader picked fuses its multiply-adds. A CELL_CLONES
 * function calls its kernel with this as a constant on each branch, so each
 * variant compiles both and runs one. */
static inline bool cell_fused(void)
{
#if CELL_HAS_CLONES
    return __builtin_cpu_supports("avx512f") || __builtin_cpu_supports("x86-64-v3");
#else
    return false;
#endif
}

#endif /* LSTM_CLONES_H */
