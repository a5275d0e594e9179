/*
 * The elementwise kernels are compiled for the x86-64 baseline (SSE2) and,
 * through GCC's function multi-versioning, for AVX2+FMA and AVX-512 too; the
 * loader picks the widest the CPU has, once. Results do not depend on the
 * choice: the kernels never use FMA contraction (-ffp-contract=off), so every
 * variant rounds exactly as the baseline does. LSTM_NO_CLONES (CMake's
 * LSTM_CPU_CLONES=OFF) keeps the baseline alone.
 */
#ifndef LSTM_CLONES_H
#define LSTM_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(LSTM_NO_CLONES)
#  define CELL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#  define CELL_CLONES
#endif

#endif /* LSTM_CLONES_H */
