/*
 * Compiler attributes and the CPU dispatch of the kernels, spelled once:
 * no other file of the library names an __attribute__ or a CPU feature.
 *
 * The elementwise kernels and the products are compiled for the x86-64
 * baseline (SSE2) and also for AVX2 with FMA and for AVX-512, through
 * per-ISA functions with target attributes, which GCC and clang both
 * compile (GCC's target_clones picks by ISA level, which clang 14's cannot
 * test). lstm__cpu_isa() picks the widest variant the CPU has, from the
 * CPU's features (lstm__cpu_features()), the same way every call. The two wider variants run the
 * activations with fused multiply-adds, the baseline with plain ones
 * (activation.h): cell_fused() says which. So, like the products, the
 * cells' last bits depend on the CPU, never on the run, the batch or the
 * threads: nothing else is contracted (-ffp-contract=off), so each element
 * goes through the same operations in vector and scalar code.
 * LSTM_NO_CLONES (CMake's LSTM_CPU_CLONES=OFF) keeps the baseline alone,
 * plain.
 */
#ifndef LSTM_COMPILER_H
#define LSTM_COMPILER_H

#include <stdbool.h>

#if defined(__GNUC__) || defined(__clang__)
#  define LSTM__ALWAYS_INLINE static inline __attribute__((always_inline))
/* printf-style checking of a function's format and arguments. */
#  define LSTM__PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
/* A declaration that may have no definition in the program (then NULL). */
#  define LSTM__WEAK __attribute__((weak))
/* A vector of the given bytes of its element type (GNU C's vector extension,
 * which the products' kernel is written in). */
#  define LSTM__VECTOR(bytes) __attribute__((vector_size(bytes)))
#else
#  define LSTM__ALWAYS_INLINE static inline
#  define LSTM__PRINTF(fmt_index, first_arg)
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(LSTM_NO_CLONES)
#  define LSTM__HAS_ISA_VARIANTS 1
#  define LSTM__TARGET_AVX512 __attribute__((target("avx512f")))
#  define LSTM__TARGET_AVX2 __attribute__((target("avx2,fma")))
/* The reduced-precision products' own instructions (lowp.c): vdpbf16ps and
 * vpdpbusd, each on 512-bit vectors. */
#  define LSTM__TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bf16")))
#  define LSTM__TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512vnni")))
#else
#  define LSTM__HAS_ISA_VARIANTS 0
#endif

/* The instruction sets the kernels are compiled for, narrowest first. */
typedef enum lstm__isa { LSTM__ISA_BASELINE, LSTM__ISA_AVX2, LSTM__ISA_AVX512 } lstm__isa;

/* The CPU features the kernels use, as bits of lstm__cpu_features(). */
enum {
    LSTM__CPU_AVX2 = 1u << 0,        /* AVX2 with FMA */
    LSTM__CPU_AVX512 = 1u << 1,      /* AVX-512 F */
    LSTM__CPU_AVX512_BF16 = 1u << 2, /* AVX-512 BF16: vdpbf16ps */
    LSTM__CPU_AVX512_VNNI = 1u << 3  /* AVX-512 VNNI: vpdpbusd */
};

/*
 * The features this CPU has that the kernels may use: read from the CPU
 * once, less any the environment variable LSTM_CPU_DISABLE names (a comma-
 * separated list of avx2, avx512, bf16, vnni), which lets the tests and the
 * benchmarks run the narrower and the portable kernels on a wide CPU.
 * Disabling a feature disables the ones that build on it (avx2 takes
 * avx512 with it, avx512 bf16 and vnni). cpu.c.
 */
unsigned lstm__cpu_features(void);

/* The widest variant this CPU runs. */
static inline lstm__isa lstm__cpu_isa(void)
{
#if LSTM__HAS_ISA_VARIANTS
    const unsigned features = lstm__cpu_features();
    if (features & LSTM__CPU_AVX512)
        return LSTM__ISA_AVX512;
    if (features & LSTM__CPU_AVX2)
        return LSTM__ISA_AVX2;
#endif
    return LSTM__ISA_BASELINE;
}

/* Whether the variant that runs fuses its multiply-adds. A dispatched
 * kernel calls its body with this as a constant on each branch, so each
 * variant compiles both and runs one. */
static inline bool cell_fused(void)
{
    return lstm__cpu_isa() != LSTM__ISA_BASELINE;
}

/*
 * LSTM__DISPATCH(name, body, params, args) defines `static void name params`,
 * which runs `body args` compiled for the CPU's widest variant. body is an
 * LSTM__ALWAYS_INLINE function, so each variant inlines it whole; params is
 * the parenthesised parameter list, args the parenthesised names.
 */
#if LSTM__HAS_ISA_VARIANTS
#  define LSTM__DISPATCH(name, body, params, args) \
    LSTM__TARGET_AVX512 static void name##_avx512 params \
    { \
      body args; \
    } \
    LSTM__TARGET_AVX2 static void name##_avx2 params \
    { \
      body args; \
    } \
    static void name params \
    { \
      switch (lstm__cpu_isa()) { \
      case LSTM__ISA_AVX512: name##_avx512 args; return; \
      case LSTM__ISA_AVX2: name##_avx2 args; return; \
      case LSTM__ISA_BASELINE: break; \
      } \
      body args; \
    }
#else
#  define LSTM__DISPATCH(name, body, params, args) \
    static void name params \
    { \
      body args; \
    }
#endif

#endif /* LSTM_COMPILER_H */
