/*
 * test_activation.c - accuracy of act_sigmoid/act_tanh against libm in
 * double, special values, and array forms against the scalar ones: each
 * for both forms, plain and fused (fmaf here; FMA instructions in the
 * library's AVX2 and AVX-512 cells, which test_vector_fma_matches_scalar
 * matches).
 *
 * The bounds asserted here are the ones stated at the top of
 * src/activation.h; a change to the kernels that loosens them fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "activation.h"

/* Stated bounds (see activation.h). ulp = float spacing at the true
 * value, 2^-149 below FLT_MIN. */
#define TANH_MAX_ULP 2.0
#define TANH_MAX_REL 1.8e-7
#define SIGMOID_MAX_ULP 3.0
#define SIGMOID_MAX_REL 2.4e-7 /* for normal results, x >= -87.3 */
#define MAX_ABS 1.0e-7

/* Stride through the 2^32 bit patterns: a prime, so the walk hits every
 * exponent of both signs with mantissas spread over all residues.  Keeps
 * a -O0 run around a second. */
#define BIT_STRIDE 1543u

/* Consecutive patterns checked on each side of a point of interest. */
#define DENSE_HALF_WIDTH 2048

struct err_stats {
    const char *name;
    int fused; /* the form checked (activation.h) */
    double max_abs, max_ulp, max_rel;
    float at_abs, at_ulp, at_rel;
    unsigned long checked, failures;
    float first_failure;
};

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double ulp_at(double ref)
{
    int exponent;

    ref = fabs(ref);
    if (ref < (double)FLT_MIN)
        return ldexp(1.0, -149);
    (void)frexp(ref, &exponent);
    return ldexp(1.0, exponent - 24);
}

static double ref_sigmoid(float x)
{
    return 1.0 / (1.0 + exp(-(double)x));
}

static double ref_tanh(float x)
{
    return tanh((double)x);
}

static void note_failure(struct err_stats *s, float x)
{
    if (s->failures == 0)
        s->first_failure = x;
    s->failures++;
}

/*
 * Record one result against its reference.  rel_checked says whether the
 * relative bound applies at this x; the ulp and absolute bounds always do.
 */
static void record(struct err_stats *s, float x, float got, double ref, double max_ulp,
                   double max_rel, int rel_checked)
{
    s->checked++;
    if (isnan(ref) || isnan(got)) {
        if (!(isnan(ref) && isnan(got)))
            note_failure(s, x);
        return;
    }

    double abs_err = fabs((double)got - ref);
    double ulp_err = abs_err / ulp_at(ref);
    double rel_err = ref != 0.0 ? abs_err / fabs(ref) : (got != 0.0f ? 1.0 : 0.0);

    if (abs_err > s->max_abs) {
        s->max_abs = abs_err;
        s->at_abs = x;
    }
    if (ulp_err > s->max_ulp) {
        s->max_ulp = ulp_err;
        s->at_ulp = x;
    }
    if (rel_checked && rel_err > s->max_rel) {
        s->max_rel = rel_err;
        s->at_rel = x;
    }
    if (abs_err > MAX_ABS || ulp_err > max_ulp || (rel_checked && rel_err > max_rel))
        note_failure(s, x);
}

static void check_sigmoid(struct err_stats *s, int fused, float x)
{
    float got = act_sigmoid(fused, x);

    /* The range [0, 1] holds exactly, not just within the bound. */
    if (!(got >= 0.0f && got <= 1.0f) && !isnan(x))
        note_failure(s, x);
    record(s, x, got, ref_sigmoid(x), SIGMOID_MAX_ULP, SIGMOID_MAX_REL, x >= -87.3f);
}

static void check_tanh(struct err_stats *s, int fused, float x)
{
    float got = act_tanh(fused, x);
    float got_neg = act_tanh(fused, -x);

    if (!(got >= -1.0f && got <= 1.0f) && !isnan(x))
        note_failure(s, x);
    /* tanh is odd, bit for bit (NaN aside). */
    if (!isnan(x) && bits_of(got_neg) != (bits_of(got) ^ 0x80000000u))
        note_failure(s, x);
    record(s, x, got, ref_tanh(x), TANH_MAX_ULP, TANH_MAX_REL, 1);
}

static void report(const struct err_stats *s)
{
    print_message("%-8s %-5s %lu checked: max abs %.3g (x=%a), max %.3f ulp (x=%a), "
                  "max rel %.3g (x=%a)\n",
                  s->name, s->fused ? "fused" : "plain", s->checked, s->max_abs, (double)s->at_abs,
                  s->max_ulp, (double)s->at_ulp, s->max_rel, (double)s->at_rel);
    if (s->failures != 0)
        print_error("%s: %lu out of bound, first at x=%a (%.9g)\n", s->name, s->failures,
                    (double)s->first_failure, (double)s->first_failure);
    assert_int_equal(s->failures, 0);
}

/* Every BIT_STRIDE-th bit pattern: both signs, subnormals, infinities, NaNs. */
static void test_bit_walk(void **state)
{
    const int fused = *(const int *)*state;
    struct err_stats sig = {.name = "sigmoid", .fused = fused};
    struct err_stats th = {.name = "tanh", .fused = fused};

    for (uint64_t u = 0; u <= UINT32_MAX; u += BIT_STRIDE) {
        float x = float_of((uint32_t)u);
        check_sigmoid(&sig, fused, x);
        check_tanh(&th, fused, x);
    }
    report(&sig);
    report(&th);
}

/* Dense runs of consecutive floats around the places where the kernels
 * change regime or approach their limits. */
static void test_dense_regions(void **state)
{
    static const float centres[] = {
        0.0f,   FLT_MIN, 1e-30f, 1e-8f, 3e-4f,   0.01f,  0.1f,  0.5f,   ACT_TANH_POLY_MAX,
        0.63f,  1.0f,    2.0f,   4.0f,  8.0f,    9.0f,   10.0f, 16.0f,  17.0f,
        30.0f,  52.0f,   80.0f,  87.3f, 88.0f,   88.72f, 89.0f, 100.0f, 103.97f,
        104.0f, 105.0f,  150.0f, 1e10f, FLT_MAX,
    };
    const int fused = *(const int *)*state;
    struct err_stats sig = {.name = "sigmoid", .fused = fused};
    struct err_stats th = {.name = "tanh", .fused = fused};

    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
        for (int sign = 0; sign < 2; sign++) {
            uint32_t mid = bits_of(centres[c]) | (sign ? 0x80000000u : 0u);
            for (int32_t d = -DENSE_HALF_WIDTH; d <= DENSE_HALF_WIDTH; d++) {
                float x = float_of(mid + (uint32_t)d);
                check_sigmoid(&sig, fused, x);
                check_tanh(&th, fused, x);
            }
        }
    }
    report(&sig);
    report(&th);
}

static void assert_same_bits(float got, float want)
{
    if (bits_of(got) != bits_of(want))
        print_error("got %a (0x%08x), want %a (0x%08x)\n", (double)got, (unsigned)bits_of(got),
                    (double)want, (unsigned)bits_of(want));
    assert_int_equal(bits_of(got), bits_of(want));
}

static void test_special_values(void **state)
{
    const float inf = INFINITY;
    const float sub_min = float_of(1u);          /* 2^-149 */
    const float sub_max = float_of(0x007fffffu); /* just under FLT_MIN */
    const int fused = *(const int *)*state;

    /* Exact at zero, signed zero kept by tanh. */
    assert_same_bits(act_tanh(fused, 0.0f), 0.0f);
    assert_same_bits(act_tanh(fused, -0.0f), -0.0f);
    assert_same_bits(act_sigmoid(fused, 0.0f), 0.5f);
    assert_same_bits(act_sigmoid(fused, -0.0f), 0.5f);

    /* tanh(x) = x for tiny and subnormal x. */
    assert_same_bits(act_tanh(fused, sub_min), sub_min);
    assert_same_bits(act_tanh(fused, -sub_min), -sub_min);
    assert_same_bits(act_tanh(fused, sub_max), sub_max);
    assert_same_bits(act_tanh(fused, FLT_MIN), FLT_MIN);
    assert_same_bits(act_tanh(fused, -FLT_MIN), -FLT_MIN);
    assert_same_bits(act_tanh(fused, 1e-20f), 1e-20f);
    assert_same_bits(act_sigmoid(fused, sub_min), 0.5f);
    assert_same_bits(act_sigmoid(fused, -sub_min), 0.5f);

    /* Saturation without NaN. */
    assert_same_bits(act_tanh(fused, inf), 1.0f);
    assert_same_bits(act_tanh(fused, -inf), -1.0f);
    assert_same_bits(act_tanh(fused, FLT_MAX), 1.0f);
    assert_same_bits(act_tanh(fused, -FLT_MAX), -1.0f);
    assert_same_bits(act_tanh(fused, 20.0f), 1.0f);
    assert_same_bits(act_tanh(fused, -20.0f), -1.0f);
    assert_same_bits(act_sigmoid(fused, inf), 1.0f);
    assert_same_bits(act_sigmoid(fused, -inf), 0.0f);
    assert_same_bits(act_sigmoid(fused, FLT_MAX), 1.0f);
    assert_same_bits(act_sigmoid(fused, -FLT_MAX), 0.0f);
    assert_same_bits(act_sigmoid(fused, 200.0f), 1.0f);
    assert_same_bits(act_sigmoid(fused, -200.0f), 0.0f);

    /* Below -87.3 sigmoid ~ e^x is subnormal: still positive down to
     * -102 (e^-104 < 2^-150 rounds to 0). */
    for (float x = -86.0f; x >= -102.0f; x -= 0.25f) {
        float s = act_sigmoid(fused, x);
        assert_true(s > 0.0f);
        assert_true(s < 1e-37f);
    }

    /* NaN in, NaN out, for quiet and signalling patterns of both signs. */
    static const uint32_t nan_bits[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u,
                                        0xff800001u, 0x7fffffffu, 0xffffffffu};
    for (size_t k = 0; k < sizeof nan_bits / sizeof nan_bits[0]; k++) {
        float x = float_of(nan_bits[k]);
        assert_true(isnan(act_tanh(fused, x)));
        assert_true(isnan(act_sigmoid(fused, x)));
    }
}

/* Inputs of every regime, so each vector lane sees a mix. */
static float mixed_input(size_t k)
{
    static const float specials[] = {
        0.0f,    -0.0f,  INFINITY, -INFINITY,  NAN,   FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-40f,
        -1e-40f, 0.625f, -0.625f,  0.6249999f, 88.7f, -88.7f,  104.5f,   -104.5f, 9.0f,     -9.0f,
    };
    const size_t n_specials = sizeof specials / sizeof specials[0];

    if (k % 3 == 0)
        return specials[(k / 3) % n_specials];
    /* Spread over [-12, 12) with irregular steps. */
    return (float)((double)((k * 2654435761u) % 24000u) / 1000.0 - 12.0);
}

static void check_arrays(int fused, float *buf, size_t n)
{
    for (size_t k = 0; k < n; k++)
        buf[k] = mixed_input(k);
    act_sigmoid_array(fused, buf, n);
    for (size_t k = 0; k < n; k++)
        assert_same_bits(buf[k], act_sigmoid(fused, mixed_input(k)));

    for (size_t k = 0; k < n; k++)
        buf[k] = mixed_input(k);
    act_tanh_array(fused, buf, n);
    for (size_t k = 0; k < n; k++)
        assert_same_bits(buf[k], act_tanh(fused, mixed_input(k)));
}

/* The array forms equal the scalar ones bit for bit, whatever the length
 * (vector body plus tail) and alignment. */
static void test_array_matches_scalar(void **state)
{
    float buf[1 + 8 * ACT_BLOCK + 7];
    const int fused = *(const int *)*state;

    /* A length that is not a multiple of 8, from an aligned and an
     * unaligned start. */
    check_arrays(fused, buf, 5 * ACT_BLOCK + 3);
    check_arrays(fused, buf + 1, 5 * ACT_BLOCK + 3);

    /* Every tail length. */
    for (size_t n = 0; n <= 3 * ACT_BLOCK + 1; n++)
        check_arrays(fused, buf + (n & 1u), n);

    /* n = 0 touches nothing. */
    buf[0] = 42.0f;
    act_sigmoid_array(fused, buf, 0);
    act_tanh_array(fused, buf, 0);
    assert_same_bits(buf[0], 42.0f);
}

/*
 * The fused form vectorised as the library's cells vectorise it (blocks of
 * ACT_BLOCK), with the FMA instructions of AVX-512 and of x86-64-v3
 * (AVX2), equals this file's scalar fused form (fmaf) bit for bit: a
 * vector lane rounds as a scalar does.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#  define HAVE_VECTOR_VARIANTS 1
__attribute__((target("avx512f"))) static void fused_arrays_avx512(float *sig, float *th, size_t n)
{
    act_sigmoid_array(1, sig, n);
    act_tanh_array(1, th, n);
}

__attribute__((target("arch=x86-64-v3"))) static void fused_arrays_v3(float *sig, float *th,
                                                                      size_t n)
{
    act_sigmoid_array(1, sig, n);
    act_tanh_array(1, th, n);
}
static void check_vector_variant(void (*variant)(float *, float *, size_t))
{
    enum { N = 40 * ACT_BLOCK + 5 };
    float sig[N], th[N];
    for (size_t k = 0; k < N; k++)
        sig[k] = th[k] = mixed_input(k);
    variant(sig, th, N);
    for (size_t k = 0; k < N; k++) {
        /* a NaN's sign and payload may differ (libm's fmaf against
         * the instruction), not that it is one */
        if (isnan(mixed_input(k))) {
            assert_true(isnan(sig[k]) && isnan(th[k]));
            continue;
        }
        assert_same_bits(sig[k], act_sigmoid(1, mixed_input(k)));
        assert_same_bits(th[k], act_tanh(1, mixed_input(k)));
    }
}
#else
#  define HAVE_VECTOR_VARIANTS 0
#endif

static void test_vector_fma_matches_scalar(void **state)
{
    (void)state;
#if HAVE_VECTOR_VARIANTS
    int checked = 0;
    if (__builtin_cpu_supports("avx512f")) {
        check_vector_variant(fused_arrays_avx512);
        checked = 1;
    }
    if (__builtin_cpu_supports("x86-64-v3")) {
        check_vector_variant(fused_arrays_v3);
        checked = 1;
    }
    if (!checked)
        skip();
#else
    skip();
#endif
}

static int PLAIN = 0, FUSED = 1;

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_special_values, &PLAIN),
        cmocka_unit_test_prestate(test_special_values, &FUSED),
        cmocka_unit_test_prestate(test_dense_regions, &PLAIN),
        cmocka_unit_test_prestate(test_dense_regions, &FUSED),
        cmocka_unit_test_prestate(test_bit_walk, &PLAIN),
        cmocka_unit_test_prestate(test_bit_walk, &FUSED),
        cmocka_unit_test_prestate(test_array_matches_scalar, &PLAIN),
        cmocka_unit_test_prestate(test_array_matches_scalar, &FUSED),
        cmocka_unit_test(test_vector_fma_matches_scalar),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
