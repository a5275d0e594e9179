/*
 * The argument-struct calls (LSTM_1.2): lstm_model_infer(),
 * lstm_model_train_forward(), lstm_model_train_backward(),
 * lstm_model_infer_stream(), lstm_model_train_chunk() and the structs'
 * init functions and _INIT macros.
 *
 *  - Older forms: for unidirectional and bidirectional models of 2 layers,
 *    with a projection, peepholes, LSTM_BATCH_FIRST and mixed lengths, each
 *    struct call gives the bits of its positional form (lstm_model_forward()
 *    and the others), which the rest of the suite checks against PyTorch:
 *    y, hT, cT, dx, dh0, dc0, the parameters' gradients, streamed states.
 *  - Layout: a call whose lstm_sequences.layout says batch-major, on a
 *    time-major model (and time-major on a batch-first one), gives the
 *    transpose, made here by the test, of the model's own layout's results,
 *    for the forward and the backward (dx read in the call's layout, dy too).
 *  - Streams with lengths: each stream of a chunk runs its own number of
 *    steps and its state is taken at its own end: the bits of running that
 *    stream alone (B = 1) for so many steps. hT and cT of the call equal
 *    lstm_state_get().
 *  - Struct rules: the init functions write only struct_size bytes and give
 *    the _INIT values; a struct_size below the first version or above
 *    64 KiB, an unknown field set past this version's struct, and an
 *    unknown layout are LSTM_E_ARG; a larger struct whose extra bytes are
 *    zero (a newer caller that sets nothing new) works. Required structs
 *    NULL, x NULL: LSTM_E_NULL. A stream given h0 or c0: LSTM_E_ARG; of
 *    another batch: LSTM_E_SHAPE; the state unchanged by every failure. A
 *    newer caller's structs work through the stream calls too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"
#include "test_rng.h"

enum { T = 7, B = 3, I = 5, H = 6, LAYERS = 2 };

typedef struct model_case {
    const char *name;
    uint32_t flags;
    size_t proj;
} model_case;

static const model_case cases[] = {
    {"unidirectional", 0, 0},
    {"bidirectional, projection", LSTM_BIDIRECTIONAL, 4},
    {"peepholes, batch first", LSTM_PEEPHOLE | LSTM_BATCH_FIRST, 0},
    {"bidirectional, batch first, projection", LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST, 3},
};

static const size_t mixed_lengths[B] = {4, 7, 2};

static lstm_model *new_model(const model_case *mc, uint64_t seed)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = LAYERS;
    config.flags = mc->flags;
    config.proj_size = mc->proj;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, seed, 0), LSTM_OK);
    return model;
}

static lstm_workspace *new_workspace(const lstm_model *model)
{
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    return workspace;
}

static float *random_floats(rng *r, size_t count)
{
    float *p = malloc(count * sizeof(float));
    assert_non_null(p);
    for (size_t k = 0; k < count; k++)
        p[k] = rng_float(r, -1.0f, 1.0f);
    return p;
}

/* A buffer of count floats filled with a value no call writes, so that a
 * buffer left unwritten shows. */
static float *fresh_floats(size_t count)
{
    float *p = malloc(count * sizeof(float));
    assert_non_null(p);
    for (size_t k = 0; k < count; k++)
        p[k] = 12345.0f;
    return p;
}

static void expect_same(const char *what, const float *got, const float *want, size_t count)
{
    if (memcmp(got, want, count * sizeof(float)) != 0) {
        size_t k = 0;
        while (memcmp(&got[k], &want[k], sizeof(float)) == 0)
            k++;
        fail_msg("%s differs at %zu: %.9g against %.9g", what, k, (double)got[k], (double)want[k]);
    }
}

/* Sizes of one model's buffers. */
typedef struct sizes {
    size_t dirs, out_cols, states_h, states_c, params;
} sizes;

static sizes model_sizes(const lstm_model *model, const model_case *mc)
{
    const size_t D = (mc->flags & LSTM_BIDIRECTIONAL) ? 2 : 1, R = mc->proj ? mc->proj : H;
    return (sizes){D, D * R, LAYERS * D * B * R, LAYERS * D * B * H, lstm_model_param_count(model)};
}

/* Every output of a training forward and backward. */
typedef struct results {
    float *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
} results;

static results new_results(const sizes *s)
{
    return (results){fresh_floats(T * B * s->out_cols),
                     fresh_floats(s->states_h),
                     fresh_floats(s->states_c),
                     fresh_floats(T * B * I),
                     fresh_floats(s->states_h),
                     fresh_floats(s->states_c),
                     fresh_floats(s->params)};
}

static void free_results(results *r)
{
    free(r->y), free(r->hT), free(r->cT), free(r->dx), free(r->dh0), free(r->dc0), free(r->grads);
}

static void expect_same_results(const char *name, const results *got, const results *want,
                                const sizes *s)
{
    (void)name;
    expect_same("y", got->y, want->y, T * B * s->out_cols);
    expect_same("hT", got->hT, want->hT, s->states_h);
    expect_same("cT", got->cT, want->cT, s->states_c);
    expect_same("dx", got->dx, want->dx, T * B * I);
    expect_same("dh0", got->dh0, want->dh0, s->states_h);
    expect_same("dc0", got->dc0, want->dc0, s->states_c);
    expect_same("gradients", got->grads, want->grads, s->params);
}

/* The inputs of one case. */
typedef struct inputs_data {
    float *x, *h0, *c0, *dy, *dhT, *dcT;
} inputs_data;

static inputs_data new_inputs(rng *r, const sizes *s)
{
    return (inputs_data){random_floats(r, T * B * I),   random_floats(r, s->states_h),
                         random_floats(r, s->states_c), random_floats(r, T * B * s->out_cols),
                         random_floats(r, s->states_h), random_floats(r, s->states_c)};
}

static void free_inputs(inputs_data *in)
{
    free(in->x), free(in->h0), free(in->c0), free(in->dy), free(in->dhT), free(in->dcT);
}

/* A training step through the positional forms. */
static void train_positional(lstm_model *model, lstm_workspace *ws, const size_t *lengths,
                             const inputs_data *in, results *out, const sizes *s)
{
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_forward_train(model, ws, T, B, lengths, in->x, in->h0, in->c0,
                                              out->y, out->hT, out->cT),
                     LSTM_OK);
    assert_int_equal(
        lstm_model_backward(model, ws, in->dy, in->dhT, in->dcT, out->dx, out->dh0, out->dc0),
        LSTM_OK);
    assert_int_equal(lstm_model_get_grads(model, out->grads, s->params), LSTM_OK);
}

/* The same step through the argument structs, in the given layout, with x
 * and dy given in that layout (the caller transposes them). */
static void train_structs(lstm_model *model, lstm_workspace *ws, const size_t *lengths,
                          uint32_t layout, const inputs_data *in, results *out, const sizes *s)
{
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    sequences.layout = layout;
    lstm_inputs inputs = LSTM_INPUTS_INIT;
    inputs.x = in->x;
    inputs.h0 = in->h0;
    inputs.c0 = in->c0;
    lstm_outputs outputs = LSTM_OUTPUTS_INIT;
    outputs.y = out->y;
    outputs.hT = out->hT;
    outputs.cT = out->cT;
    lstm_output_grads output_grads = LSTM_OUTPUT_GRADS_INIT;
    output_grads.dy = in->dy;
    output_grads.dhT = in->dhT;
    output_grads.dcT = in->dcT;
    lstm_input_grads input_grads = LSTM_INPUT_GRADS_INIT;
    input_grads.dx = out->dx;
    input_grads.dh0 = out->dh0;
    input_grads.dc0 = out->dc0;
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_train_forward(model, ws, &sequences, &inputs, &outputs), LSTM_OK);
    assert_int_equal(lstm_model_train_backward(model, ws, &output_grads, &input_grads), LSTM_OK);
    assert_int_equal(lstm_model_get_grads(model, out->grads, s->params), LSTM_OK);
}

static void test_struct_calls_equal_positional(void **unused)
{
    (void)unused;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const model_case *mc = &cases[c];
        lstm_model *model = new_model(mc, 11 + c);
        lstm_workspace *ws = new_workspace(model);
        const sizes s = model_sizes(model, mc);
        rng r = {100 + c};
        inputs_data in = new_inputs(&r, &s);
        for (int with_lengths = 0; with_lengths < 2; with_lengths++) {
            const size_t *lengths = with_lengths ? mixed_lengths : NULL;
            results want = new_results(&s), got = new_results(&s);
            train_positional(model, ws, lengths, &in, &want, &s);
            train_structs(model, ws, lengths, LSTM_LAYOUT_MODEL, &in, &got, &s);
            expect_same_results(mc->name, &got, &want, &s);

            /* inference: the training forward's outputs */
            float *y = fresh_floats(T * B * s.out_cols);
            lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
            lstm_inputs inputs = {sizeof inputs, in.x, in.h0, in.c0};
            lstm_outputs outputs = {sizeof outputs, y, NULL, NULL};
            assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, &outputs), LSTM_OK);
            expect_same("inferred y", y, want.y, T * B * s.out_cols);
            /* no outputs at all is allowed, as NULL outputs were */
            assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, NULL), LSTM_OK);
            free(y);
            free_results(&want);
            free_results(&got);
        }
        free_inputs(&in);
        lstm_workspace_destroy(ws);
        lstm_model_destroy(model);
    }
}

/* [T][B][w] to [B][T][w] or back (from_batch_first). */
static float *transposed(const float *p, size_t w, int from_batch_first)
{
    float *q = malloc(T * B * w * sizeof(float));
    assert_non_null(q);
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            const size_t tb = (t * B + b) * w, bt = (b * T + t) * w;
            memcpy(q + (from_batch_first ? tb : bt), p + (from_batch_first ? bt : tb),
                   w * sizeof(float));
        }
    return q;
}

static void test_layout_of_the_call(void **unused)
{
    (void)unused;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const model_case *mc = &cases[c];
        const int model_batch_first = (mc->flags & LSTM_BATCH_FIRST) != 0;
        const uint32_t other = model_batch_first ? LSTM_LAYOUT_TIME_MAJOR : LSTM_LAYOUT_BATCH_MAJOR;
        const uint32_t same = model_batch_first ? LSTM_LAYOUT_BATCH_MAJOR : LSTM_LAYOUT_TIME_MAJOR;
        lstm_model *model = new_model(mc, 21 + c);
        lstm_workspace *ws = new_workspace(model);
        const sizes s = model_sizes(model, mc);
        rng r = {200 + c};
        inputs_data in = new_inputs(&r, &s);
        results want = new_results(&s), got = new_results(&s), same_got = new_results(&s);
        train_positional(model, ws, mixed_lengths, &in, &want, &s);

        /* the layout the model has, named: the same bits */
        train_structs(model, ws, mixed_lengths, same, &in, &same_got, &s);
        expect_same_results(mc->name, &same_got, &want, &s);

        /* the other layout: x and dy given transposed, y and dx come transposed */
        inputs_data other_in = in;
        other_in.x = transposed(in.x, I, model_batch_first);
        other_in.dy = transposed(in.dy, s.out_cols, model_batch_first);
        train_structs(model, ws, mixed_lengths, other, &other_in, &got, &s);
        float *y = transposed(got.y, s.out_cols, !model_batch_first);
        float *dx = transposed(got.dx, I, !model_batch_first);
        expect_same("y in the other layout", y, want.y, T * B * s.out_cols);
        expect_same("dx in the other layout", dx, want.dx, T * B * I);
        expect_same("hT", got.hT, want.hT, s.states_h);
        expect_same("dc0", got.dc0, want.dc0, s.states_c);
        expect_same("gradients", got.grads, want.grads, s.params);

        free(y), free(dx), free((float *)other_in.x), free((float *)other_in.dy);
        free_results(&want), free_results(&got), free_results(&same_got);
        free_inputs(&in);
        lstm_workspace_destroy(ws);
        lstm_model_destroy(model);
    }
}

/* x of stream b alone, its first n steps, from a chunk's [T][B][I]. */
static void stream_alone(const float *x, size_t b, size_t n, float *alone)
{
    for (size_t t = 0; t < n; t++)
        memcpy(alone + t * I, x + (t * B + b) * I, I * sizeof(float));
}

static void test_stream_lengths(void **unused)
{
    (void)unused;
    const model_case mc = {"projection", 0, 4};
    const size_t R = 4, h_count = LAYERS * B * R, c_count = LAYERS * B * H;
    lstm_model *model = new_model(&mc, 31);
    lstm_workspace *ws = new_workspace(model);
    rng r = {300};
    float *x = random_floats(&r, T * B * I), *start_h = random_floats(&r, h_count);
    float *start_c = random_floats(&r, c_count);
    for (int training = 0; training < 2; training++) {
        lstm_state *state = NULL;
        assert_int_equal(lstm_state_create(model, B, &state), LSTM_OK);
        assert_int_equal(lstm_state_set(state, start_h, start_c), LSTM_OK);
        const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, mixed_lengths};
        const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
        float *y = fresh_floats(T * B * R), *hT = fresh_floats(h_count),
              *cT = fresh_floats(c_count);
        const lstm_outputs outputs = {sizeof outputs, y, hT, cT};
        assert_int_equal(
            training ? lstm_model_train_chunk(model, ws, state, &sequences, &inputs, &outputs)
                     : lstm_model_infer_stream(model, state, &sequences, &inputs, &outputs),
            LSTM_OK);
        float h[LAYERS * B * 4], c[LAYERS * B * H];
        assert_int_equal(lstm_state_get(state, h, c), LSTM_OK);
        expect_same("hT against the state", hT, h, h_count);
        expect_same("cT against the state", cT, c, c_count);

        /* each stream alone, B = 1, for its own length */
        for (size_t b = 0; b < B; b++) {
            const size_t n = mixed_lengths[b];
            lstm_state *alone = NULL;
            assert_int_equal(lstm_state_create(model, 1, &alone), LSTM_OK);
            float h1[LAYERS * 4], c1[LAYERS * H];
            for (size_t l = 0; l < LAYERS; l++) {
                memcpy(h1 + l * R, start_h + (l * B + b) * R, R * sizeof(float));
                memcpy(c1 + l * H, start_c + (l * B + b) * H, H * sizeof(float));
            }
            assert_int_equal(lstm_state_set(alone, h1, c1), LSTM_OK);
            float x1[T * I], y1[T * 4];
            stream_alone(x, b, n, x1);
            assert_int_equal(lstm_model_stream(model, alone, n, x1, y1), LSTM_OK);
            assert_int_equal(lstm_state_get(alone, h1, c1), LSTM_OK);
            for (size_t l = 0; l < LAYERS; l++) {
                expect_same("stream's h", h + (l * B + b) * R, h1 + l * R, R);
                expect_same("stream's c", c + (l * B + b) * H, c1 + l * H, H);
            }
            for (size_t t = 0; t < T; t++) {
                const float *row = y + (t * B + b) * R;
                if (t < n)
                    expect_same("stream's y", row, y1 + t * R, R);
                else
                    for (size_t j = 0; j < R; j++)
                        assert_true(row[j] == 0.0f);
            }
            lstm_state_destroy(alone);
        }
        free(y), free(hT), free(cT);
        lstm_state_destroy(state);
    }
    free(x), free(start_h), free(start_c);
    lstm_workspace_destroy(ws);
    lstm_model_destroy(model);
}

/* Guard bytes past struct_size stay as they were. */
#define GUARD 0xA5

static void expect_init(lstm_status (*init)(void *, size_t), const void *initializer, size_t size,
                        const char *name)
{
    unsigned char buffer[256];
    memset(buffer, GUARD, sizeof buffer);
    assert_int_equal(init(buffer, size), LSTM_OK);
    if (memcmp(buffer, initializer, size) != 0)
        fail_msg("%s_init() differs from its _INIT macro", name);
    for (size_t k = size; k < sizeof buffer; k++)
        assert_int_equal(buffer[k], GUARD);
    /* a newer caller's larger struct: zeros past this version's */
    memset(buffer, GUARD, sizeof buffer);
    assert_int_equal(init(buffer, size + 16), LSTM_OK);
    size_t written;
    memcpy(&written, buffer, sizeof written);
    assert_int_equal(written, size + 16);
    for (size_t k = size; k < size + 16; k++)
        assert_int_equal(buffer[k], 0);
    assert_int_equal(buffer[size + 16], GUARD);
    /* too small, absurd, NULL */
    assert_int_equal(init(buffer, sizeof(size_t)), LSTM_E_ARG);
    assert_int_equal(init(buffer, (size_t)1 << 40), LSTM_E_ARG);
    assert_int_equal(init(NULL, size), LSTM_E_NULL);
}

/* The init functions, each through a void * signature for expect_init(). */
#define INIT_THUNK(type) \
  static lstm_status type##_init_thunk(void *args, size_t size) \
  { \
    return type##_init(args, size); \
  }
INIT_THUNK(lstm_sequences)
INIT_THUNK(lstm_inputs)
INIT_THUNK(lstm_outputs)
INIT_THUNK(lstm_output_grads)
INIT_THUNK(lstm_input_grads)

static void test_init_functions(void **unused)
{
    (void)unused;
    /* static: the padding of lstm_sequences (between layout and lengths on
     * LP64) is zero, as in the library's defaults */
    static const lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    static const lstm_inputs inputs = LSTM_INPUTS_INIT;
    static const lstm_outputs outputs = LSTM_OUTPUTS_INIT;
    static const lstm_output_grads output_grads = LSTM_OUTPUT_GRADS_INIT;
    static const lstm_input_grads input_grads = LSTM_INPUT_GRADS_INIT;
    /* no struct ends in padding, where a field added later would fall */
    assert_int_equal(sizeof sequences, offsetof(lstm_sequences, lengths) + sizeof(void *));
    expect_init(lstm_sequences_init_thunk, &sequences, sizeof sequences, "lstm_sequences");
    expect_init(lstm_inputs_init_thunk, &inputs, sizeof inputs, "lstm_inputs");
    expect_init(lstm_outputs_init_thunk, &outputs, sizeof outputs, "lstm_outputs");
    expect_init(lstm_output_grads_init_thunk, &output_grads, sizeof output_grads,
                "lstm_output_grads");
    expect_init(lstm_input_grads_init_thunk, &input_grads, sizeof input_grads, "lstm_input_grads");
}

/* A struct of a newer caller: this version's fields, then extra bytes. */
typedef struct newer_sequences {
    lstm_sequences known;
    uint64_t extra;
} newer_sequences;

static void test_bad_structs(void **unused)
{
    (void)unused;
    const model_case mc = {"plain", 0, 0};
    lstm_model *model = new_model(&mc, 41);
    lstm_workspace *ws = new_workspace(model);
    rng r = {400};
    float *x = random_floats(&r, T * B * I), *y = fresh_floats(T * B * H);
    lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, NULL};
    lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
    lstm_outputs outputs = {sizeof outputs, y, NULL, NULL};
    assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, &outputs), LSTM_OK);
    float *want = malloc(T * B * H * sizeof(float));
    memcpy(want, y, T * B * H * sizeof(float));

    assert_int_equal(lstm_model_infer(model, ws, NULL, &inputs, &outputs), LSTM_E_NULL);
    assert_non_null(strstr(lstm_error_message(), "sequences"));
    assert_int_equal(lstm_model_infer(model, ws, &sequences, NULL, &outputs), LSTM_E_NULL);
    inputs.x = NULL;
    assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, &outputs), LSTM_E_NULL);
    assert_non_null(strstr(lstm_error_message(), "x"));
    inputs.x = x;
    sequences.layout = 3;
    assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, &outputs), LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "layout"));
    sequences.layout = LSTM_LAYOUT_MODEL;
    /* too small for the first version, or absurd: each struct in turn */
    size_t *struct_sizes[] = {&sequences.struct_size, &inputs.struct_size, &outputs.struct_size};
    for (size_t which = 0; which < 3; which++) {
        const size_t size = *struct_sizes[which];
        const size_t refused[] = {0, sizeof(size_t), size - 1, (size_t)1 << 17, SIZE_MAX};
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
            *struct_sizes[which] = refused[k];
            assert_int_equal(lstm_model_infer(model, ws, &sequences, &inputs, &outputs),
                             LSTM_E_ARG);
        }
        *struct_sizes[which] = size;
    }
    expect_same("y after refused calls", y, want, T * B * H);
    assert_int_equal(lstm_model_train_forward(model, ws, &sequences, &inputs, &outputs), LSTM_OK);
    lstm_output_grads output_grads = {sizeof output_grads, NULL, NULL, NULL};
    output_grads.struct_size = 3;
    assert_int_equal(lstm_model_train_backward(model, ws, &output_grads, NULL), LSTM_E_ARG);
    output_grads.struct_size = sizeof output_grads;
    /* both NULL: zero gradients in, none wanted out; the parameters'
     * gradients are then zero */
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_train_backward(model, ws, NULL, NULL), LSTM_OK);
    const size_t count = lstm_model_param_count(model);
    float *grads = fresh_floats(count);
    assert_int_equal(lstm_model_get_grads(model, grads, count), LSTM_OK);
    for (size_t k = 0; k < count; k++)
        assert_true(grads[k] == 0.0f);
    free(grads);

    /* a newer caller's struct: zeros past the known fields work, a set
     * unknown field is refused */
    newer_sequences newer;
    memset(&newer, 0, sizeof newer);
    newer.known = sequences;
    newer.known.struct_size = sizeof newer;
    assert_int_equal(lstm_model_infer(model, ws, &newer.known, &inputs, &outputs), LSTM_OK);
    expect_same("y from a newer caller", y, want, T * B * H);
    newer.extra = 1;
    assert_int_equal(lstm_model_infer(model, ws, &newer.known, &inputs, &outputs), LSTM_E_ARG);

    /* a newer caller's structs through the stream calls, which hand their
     * copies on to the forward calls (the fuzzer found them refused, and
     * read past, when the copies kept the caller's struct_size) */
    typedef struct newer_inputs {
        lstm_inputs known;
        uint64_t extra[4];
    } newer_inputs;
    newer_inputs newer_in;
    memset(&newer_in, 0, sizeof newer_in);
    newer_in.known = inputs;
    newer_in.known.struct_size = sizeof newer_in;
    newer.extra = 0;
    for (int training = 0; training < 2; training++) {
        lstm_state *streams = NULL;
        assert_int_equal(lstm_state_create(model, B, &streams), LSTM_OK);
        assert_int_equal(
            training
                ? lstm_model_train_chunk(model, ws, streams, &newer.known, &newer_in.known, NULL)
                : lstm_model_infer_stream(model, streams, &newer.known, &newer_in.known, &outputs),
            LSTM_OK);
        lstm_state_destroy(streams);
    }

    /* streams: h0 and c0 come from the state; the batch is the state's */
    lstm_state *state = NULL;
    assert_int_equal(lstm_state_create(model, B, &state), LSTM_OK);
    float h[LAYERS * B * H], c[LAYERS * B * H], h_after[LAYERS * B * H], c_after[LAYERS * B * H];
    for (size_t k = 0; k < LAYERS * B * H; k++)
        h[k] = c[k] = 0.25f;
    assert_int_equal(lstm_state_set(state, h, c), LSTM_OK);
    inputs.h0 = h;
    assert_int_equal(lstm_model_infer_stream(model, state, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "h0"));
    inputs.h0 = NULL;
    inputs.c0 = c;
    assert_int_equal(lstm_model_train_chunk(model, ws, state, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    inputs.c0 = NULL;
    sequences.batch = B + 1;
    assert_int_equal(lstm_model_infer_stream(model, state, &sequences, &inputs, &outputs),
                     LSTM_E_SHAPE);
    sequences.batch = B;
    sequences.layout = 9;
    assert_int_equal(lstm_model_train_chunk(model, ws, state, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_infer_stream(model, NULL, &sequences, &inputs, &outputs),
                     LSTM_E_NULL);
    assert_int_equal(lstm_state_get(state, h_after, c_after), LSTM_OK);
    expect_same("h after refused stream calls", h_after, h, LAYERS * B * H);
    expect_same("c after refused stream calls", c_after, c, LAYERS * B * H);

    lstm_state_destroy(state);
    free(x), free(y), free(want);
    lstm_workspace_destroy(ws);
    lstm_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_calls_equal_positional),
        cmocka_unit_test(test_layout_of_the_call),
        cmocka_unit_test(test_stream_lengths),
        cmocka_unit_test(test_init_functions),
        cmocka_unit_test(test_bad_structs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
