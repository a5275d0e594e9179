/* Argument checks shared by the public entry points. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "error.h"

/* A float is NaN or infinite exactly when its exponent bits are all ones. */
static inline int is_nonfinite(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (bits & 0x7f800000u) == 0x7f800000u;
}

size_t lstm__find_nonfinite(const float *values, size_t count)
{
    /* A branch-free scan in blocks vectorises; the exact index is looked for
     * only once a block is known to hold a bad value. */
    const size_t block = 256;
    for (size_t start = 0; start < count; start += block) {
        size_t end = count - start < block ? count : start + block;
        int bad = 0;
        for (size_t k = start; k < end; k++)
            bad |= is_nonfinite(values[k]);
        if (bad) {
            for (size_t k = start; k < end; k++)
                if (is_nonfinite(values[k]))
                    return k;
        }
    }
    return count;
}

size_t lstm__copy_finite(float *restrict dst, const float *restrict src, size_t count)
{
    /* blocks of lstm__find_nonfinite()'s kind, copied on the way */
    const size_t block = 256;
    for (size_t start = 0; start < count; start += block) {
        size_t end = count - start < block ? count : start + block;
        int bad = 0;
        for (size_t k = start; k < end; k++) {
            dst[k] = src[k];
            bad |= is_nonfinite(src[k]);
        }
        if (bad)
            return start + lstm__find_nonfinite(src + start, end - start);
    }
    return count;
}

lstm_status lstm__check_finite(const char *name, const float *values, size_t count)
{
    if (values == NULL)
        return LSTM_OK;
    size_t bad = lstm__find_nonfinite(values, count);
    if (bad < count)
        return lstm__fail(LSTM_E_NONFINITE, "%s[%zu] is %g", name, bad, (double)values[bad]);
    return LSTM_OK;
}
