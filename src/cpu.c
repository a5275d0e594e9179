/* The CPU features the kernels dispatch on (compiler.h), read once. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* The features as the CPU reports them. */
static unsigned detect(void)
{
    unsigned features = 0;
#if LSTM__HAS_ISA_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        features |= LSTM__CPU_AVX2;
    if ((features & LSTM__CPU_AVX2) && __builtin_cpu_supports("avx512f"))
        features |= LSTM__CPU_AVX512;
    if ((features & LSTM__CPU_AVX512) && __builtin_cpu_supports("avx512bf16"))
        features |= LSTM__CPU_AVX512_BF16;
    if ((features & LSTM__CPU_AVX512) && __builtin_cpu_supports("avx512vnni"))
        features |= LSTM__CPU_AVX512_VNNI;
#endif
    return features;
}

/* Whether the comma-separated list names the feature. */
static bool names(const char *list, const char *feature)
{
    const size_t length = strlen(feature);
    for (const char *p = list; *p != '\0';) {
        const size_t item = strcspn(p, ",");
        if (item == length && strncmp(p, feature, length) == 0)
            return true;
        p += item + (p[item] == ',');
    }
    return false;
}

/* The features, plus one, once known (0: not read yet). Every thread that
 * reads them first computes the same value, so the race is harmless. */
static atomic_uint known;

unsigned lstm__cpu_features(void)
{
    const unsigned seen = atomic_load_explicit(&known, memory_order_relaxed);
    if (seen != 0)
        return seen - 1;
    unsigned features = detect();
    const char *disable = getenv("LSTM_CPU_DISABLE");
    if (disable != NULL) {
        /* each feature takes those that build on it along */
        if (names(disable, "avx2"))
            features = 0;
        if (names(disable, "avx512"))
            features &= LSTM__CPU_AVX2;
        if (names(disable, "bf16"))
            features &= ~(unsigned)LSTM__CPU_AVX512_BF16;
        if (names(disable, "vnni"))
            features &= ~(unsigned)LSTM__CPU_AVX512_VNNI;
    }
    atomic_store_explicit(&known, features + 1, memory_order_relaxed);
    return features;
}
