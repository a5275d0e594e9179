/*
 * bench_onednn.c: time oneDNN's LSTM primitive, for comparison with bench_core.
 *
 * Usage: bench_onednn [--precision fp32|bf16|int8] [T B I H [repetitions [layers
 *                                                     [directions]]]]
 *          (default fp32, 100 16 512 512 10 1 1)
 *        bench_onednn --check
 *
 * --precision bf16 or int8 times inference alone in that precision (see
 * lowp_setup() for the data types and int8's scales), on x drawn from
 * N(0, 1) with zero initial states, and adds relerr=, the relative L2 error
 * of y against the f32 primitive's y on the same data. It exits with
 * status 2 when this oneDNN has no such primitive.
 *
 * Times oneDNN's vanilla LSTM (f32; `layers` stacked layers, unidirectional
 * left to right, or with directions = 2 bidirectional_concat: both
 * directions' outputs side by side, as liblstm's LSTM_BIDIRECTIONAL)
 * through its C API the way bench_core times liblstm: 2 warm-up calls, then
 * the median wall time of the timed repetitions.
 *   mode=infer  forward_inference (no workspace)
 *   mode=train  forward_training (with workspace) + backward (diff_src_layer,
 *               diff_src_iter(_c), diff_weights_layer/iter, diff_bias)
 * Layouts: src_layer and dst_layer tnc, states ldnc, bias ldgo, the weights
 * L x D x I x 4 x H (layer) and L x D x H x 4 x H (iter). They are made in
 * ldigo and reordered once, outside the timing, into the layout
 * each primitive picks for format_tag_any (forward and backward may differ).
 * A training loop would redo those reorders after every optimizer step; the
 * "# " lines give their cost, and the layouts and implementations chosen.
 * FLOP counts as in bench_core (forward_flops() in bench_util.h), a
 * training step = 3 x forward. threads = omp_get_max_threads(), which is what
 * oneDNN's OpenMP runtime uses (set OMP_NUM_THREADS). workspace_bytes is the
 * forward-training workspace that backward reads; extra_bytes on the "# "
 * lines is the scratchpad oneDNN allocates itself for each primitive.
 *
 * Not every network has a oneDNN twin; the program exits with status 2 for
 * these. oneDNN gives every layer the same input width, so with more than
 * one layer I must be H. And its bidirectional_concat runs each direction
 * through the whole stack of layers on its own, concatenating only the last
 * layer's outputs, where liblstm and PyTorch feed both directions' outputs
 * to every next layer: with more than one layer, it must be unidirectional.
 *
 * --check runs tiny networks (T=3 B=2 H=5: one layer, one bidirectional
 * layer, two layers) through the same code and compares every output and
 * gradient with a plain C LSTM computed in double, gates in the order
 * i, f, g, o along the g axis of ldigo and ldgo.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>

#include "bench_util.h"

enum { WARMUP_RUNS = 2, DEFAULT_REPETITIONS = 10, MAX_REPETITIONS = 1000, GATES = 4 };

/* Limits that keep every dimension and buffer size far from overflow. */
#define MAX_FEATURES ((size_t)1 << 16)

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* One LSTM primitive with the weights in the layout it chose. */
typedef struct stage {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t primitive;
    dnnl_memory_t weights_layer, weights_iter;
    dnnl_primitive_t reorder_layer, reorder_iter; /* from the ldigo weights */
} stage;

typedef struct bench {
    size_t seq_len, batch, input_size, hidden_size, layers, directions;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    /* Plain layouts: tnc, ldnc, ldigo, ldgo. */
    dnnl_memory_t src_layer, src_iter, src_iter_c, weights_layer, weights_iter, bias;
    dnnl_memory_t dst_layer, dst_iter, dst_iter_c;
    dnnl_memory_t diff_dst_layer, diff_dst_iter, diff_dst_iter_c;
    dnnl_memory_t diff_src_layer, diff_src_iter, diff_src_iter_c, diff_bias;
    /* Layouts chosen by the primitives. */
    dnnl_memory_t workspace, diff_weights_layer, diff_weights_iter;
    stage infer, forward, backward;
    /* --precision bf16 or int8: the inference primitive on tensors of that
     * precision, its weights reordered (and quantized) from the f32 ones. */
    int precision;
    float data_scale, data_shift; /* int8: u8 = round(x data_scale + data_shift) */
    dnnl_primitive_attr_t lowp_attr;
    dnnl_memory_t lowp_src_layer, lowp_src_iter, lowp_src_iter_c;
    dnnl_memory_t lowp_dst_layer, lowp_dst_iter, lowp_dst_iter_c;
    stage lowp;
} bench;

typedef struct descs {
    dnnl_memory_desc_t src_layer, dst_layer, state, bias;
    dnnl_memory_desc_t weights_layer, weights_iter, weights_layer_any, weights_iter_any;
} descs;

/* Prints the failing call with oneDNN's status text; 1 on failure. */
static int status_failed(dnnl_status_t status, const char *call)
{
    if (status == dnnl_success)
        return 0;
    fprintf(stderr, "bench_onednn: %s failed: %s (status %d)\n", call, dnnl_status2str(status),
            (int)status);
    return 1;
}

#define FAILED(call) status_failed((call), #call)

static float *host_data(dnnl_memory_t memory)
{
    void *data = NULL;
    if (FAILED(dnnl_memory_get_data_handle(memory, &data)))
        return NULL;
    return data;
}

static const dnnl_memory_desc_t *memory_desc(dnnl_memory_t memory)
{
    const dnnl_memory_desc_t *md = NULL;
    if (FAILED(dnnl_memory_get_memory_desc(memory, &md)))
        return NULL;
    return md;
}

/* Fills with scale * [-1, 1) from seed, or with zeros for seed 0. */
static int memory_fill(dnnl_memory_t memory, uint32_t seed, float scale)
{
    const dnnl_memory_desc_t *md = memory_desc(memory);
    float *data = host_data(memory);
    if (!md || !data)
        return 1;
    size_t count = dnnl_memory_desc_get_size(md) / sizeof(float);
    if (seed == 0) {
        memset(data, 0, count * sizeof(float));
        return 0;
    }
    fill_random(data, count, seed);
    for (size_t k = 0; k < count; k++)
        data[k] *= scale;
    return 0;
}

static int memory_new(bench *b, const dnnl_memory_desc_t *md, uint32_t seed, float scale,
                      dnnl_memory_t *out)
{
    if (FAILED(dnnl_memory_create(out, md, b->engine, DNNL_MEMORY_ALLOCATE)))
        return 1;
    return memory_fill(*out, seed, scale);
}

static int reorder_run(bench *b, dnnl_primitive_t reorder, dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return FAILED(dnnl_primitive_execute(reorder, b->stream, COUNT(args), args)) ||
           FAILED(dnnl_stream_wait(b->stream));
}

/* Creates *to in layout md and a reorder from `from` into it, and runs it once;
 * attr (NULL: none) carries int8's weight scales. */
static int reorder_create(bench *b, dnnl_memory_t from, const dnnl_memory_desc_t *md,
                          dnnl_memory_t *to, dnnl_primitive_t *reorder,
                          const_dnnl_primitive_attr_t attr)
{
    const dnnl_memory_desc_t *from_md = memory_desc(from);
    dnnl_primitive_desc_t pd = NULL;
    int failure = 1;
    if (!from_md || FAILED(dnnl_memory_create(to, md, b->engine, DNNL_MEMORY_ALLOCATE)) ||
        FAILED(dnnl_reorder_primitive_desc_create(&pd, from_md, b->engine, md, b->engine, attr)) ||
        FAILED(dnnl_primitive_create(reorder, pd)))
        goto out;
    failure = reorder_run(b, *reorder, from, *to);
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return failure;
}

/* 1 on failure; 2 when oneDNN has no implementation of the primitive (with
 * a message: the caller exits with status 2, "n/a" in the report). */
static int stage_create(bench *b, stage *s, const dnnl_rnn_desc_t *desc,
                        const_dnnl_primitive_desc_t forward_hint, const_dnnl_primitive_attr_t attr)
{
    const dnnl_status_t status =
        dnnl_primitive_desc_create(&s->pd, desc, attr, b->engine, forward_hint);
    if (status == dnnl_unimplemented) {
        s->pd = NULL;
        return 2;
    }
    if (FAILED(status) || FAILED(dnnl_primitive_create(&s->primitive, s->pd)))
        return 1;
    const dnnl_memory_desc_t *layer_md =
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_LAYER);
    const dnnl_memory_desc_t *iter_md =
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_exec_arg_md, DNNL_ARG_WEIGHTS_ITER);
    if (!layer_md || !iter_md) {
        fprintf(stderr, "bench_onednn: no weights layout from the LSTM primitive\n");
        return 1;
    }
    return reorder_create(b, b->weights_layer, layer_md, &s->weights_layer, &s->reorder_layer,
                          attr) ||
           reorder_create(b, b->weights_iter, iter_md, &s->weights_iter, &s->reorder_iter, attr);
}

static void memory_free(dnnl_memory_t memory)
{
    if (memory)
        dnnl_memory_destroy(memory);
}

static void primitive_free(dnnl_primitive_t primitive)
{
    if (primitive)
        dnnl_primitive_destroy(primitive);
}

static void stage_free(stage *s)
{
    primitive_free(s->reorder_iter);
    primitive_free(s->reorder_layer);
    memory_free(s->weights_iter);
    memory_free(s->weights_layer);
    primitive_free(s->primitive);
    if (s->pd)
        dnnl_primitive_desc_destroy(s->pd);
}

static int descs_init(const bench *b, descs *d)
{
    const dnnl_dim_t T = (dnnl_dim_t)b->seq_len, B = (dnnl_dim_t)b->batch;
    const dnnl_dim_t I = (dnnl_dim_t)b->input_size, H = (dnnl_dim_t)b->hidden_size;
    const dnnl_dim_t L = (dnnl_dim_t)b->layers, D = (dnnl_dim_t)b->directions;
    /* dnnl_dims_t: the API takes full DNNL_MAX_NDIMS arrays. */
    const dnnl_dims_t src_dims = {T, B, I}, dst_dims = {T, B, D * H};
    const dnnl_dims_t state_dims = {L, D, B, H}, bias_dims = {L, D, GATES, H};
    const dnnl_dims_t layer_dims = {L, D, I, GATES, H}, iter_dims = {L, D, H, GATES, H};
    return FAILED(dnnl_memory_desc_init_by_tag(&d->src_layer, 3, src_dims, dnnl_f32, dnnl_tnc)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->dst_layer, 3, dst_dims, dnnl_f32, dnnl_tnc)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->state, 4, state_dims, dnnl_f32, dnnl_ldnc)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->bias, 4, bias_dims, dnnl_f32, dnnl_ldgo)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->weights_layer, 5, layer_dims, dnnl_f32,
                                               dnnl_ldigo)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->weights_iter, 5, iter_dims, dnnl_f32,
                                               dnnl_ldigo)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->weights_layer_any, 5, layer_dims, dnnl_f32,
                                               dnnl_format_tag_any)) ||
           FAILED(dnnl_memory_desc_init_by_tag(&d->weights_iter_any, 5, iter_dims, dnnl_f32,
                                               dnnl_format_tag_any));
}

/* The user tensors: inputs from fixed sequences, outputs zero. */
static int tensors_create(bench *b, const descs *d, float grad_scale)
{
    const float weight_scale = 1.0f / sqrtf((float)b->hidden_size);
    return memory_new(b, &d->src_layer, 1u, 1.0f, &b->src_layer) ||
           memory_new(b, &d->state, 3u, 0.5f, &b->src_iter) ||
           memory_new(b, &d->state, 4u, 0.5f, &b->src_iter_c) ||
           memory_new(b, &d->weights_layer, 5u, weight_scale, &b->weights_layer) ||
           memory_new(b, &d->weights_iter, 6u, weight_scale, &b->weights_iter) ||
           memory_new(b, &d->bias, 7u, 0.1f, &b->bias) ||
           memory_new(b, &d->dst_layer, 0u, 0.0f, &b->dst_layer) ||
           memory_new(b, &d->state, 0u, 0.0f, &b->dst_iter) ||
           memory_new(b, &d->state, 0u, 0.0f, &b->dst_iter_c) ||
           memory_new(b, &d->dst_layer, 2u, grad_scale, &b->diff_dst_layer) ||
           memory_new(b, &d->state, 8u, grad_scale, &b->diff_dst_iter) ||
           memory_new(b, &d->state, 9u, grad_scale, &b->diff_dst_iter_c) ||
           memory_new(b, &d->src_layer, 0u, 0.0f, &b->diff_src_layer) ||
           memory_new(b, &d->state, 0u, 0.0f, &b->diff_src_iter) ||
           memory_new(b, &d->state, 0u, 0.0f, &b->diff_src_iter_c) ||
           memory_new(b, &d->bias, 0u, 0.0f, &b->diff_bias);
}

/* Workspace and gradient memory in the layouts the training primitives chose. */
static int training_memory_create(bench *b)
{
    const dnnl_memory_desc_t *forward_ws =
        dnnl_primitive_desc_query_md(b->forward.pd, dnnl_query_workspace_md, 0);
    const dnnl_memory_desc_t *backward_ws =
        dnnl_primitive_desc_query_md(b->backward.pd, dnnl_query_workspace_md, 0);
    const dnnl_memory_desc_t *diff_layer_md = dnnl_primitive_desc_query_md(
        b->backward.pd, dnnl_query_exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER);
    const dnnl_memory_desc_t *diff_iter_md = dnnl_primitive_desc_query_md(
        b->backward.pd, dnnl_query_exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER);
    if (!forward_ws || !backward_ws || !diff_layer_md || !diff_iter_md ||
        !dnnl_memory_desc_equal(forward_ws, backward_ws)) {
        fprintf(stderr, "bench_onednn: unexpected workspace or gradient layouts\n");
        return 1;
    }
    return memory_new(b, forward_ws, 0u, 0.0f, &b->workspace) ||
           memory_new(b, diff_layer_md, 0u, 0.0f, &b->diff_weights_layer) ||
           memory_new(b, diff_iter_md, 0u, 0.0f, &b->diff_weights_iter);
}

/* grad_scale scales the output gradients (small, as a loss would give). */
static int bench_setup(bench *b, float grad_scale)
{
    const dnnl_rnn_direction_t direction =
        b->directions == 2 ? dnnl_bidirectional_concat : dnnl_unidirectional_left2right;
    dnnl_rnn_desc_t infer_desc, forward_desc, backward_desc;
    descs d;
    if (descs_init(b, &d) || FAILED(dnnl_engine_create(&b->engine, dnnl_cpu, 0)) ||
        FAILED(dnnl_stream_create(&b->stream, b->engine, dnnl_stream_default_flags)) ||
        tensors_create(b, &d, grad_scale))
        return 1;
    if (FAILED(dnnl_lstm_forward_desc_init(&infer_desc, dnnl_forward_inference, direction,
                                           &d.src_layer, &d.state, &d.state, &d.weights_layer_any,
                                           &d.weights_iter_any, &d.bias, &d.dst_layer, &d.state,
                                           &d.state, 0)) ||
        FAILED(dnnl_lstm_forward_desc_init(&forward_desc, dnnl_forward_training, direction,
                                           &d.src_layer, &d.state, &d.state, &d.weights_layer_any,
                                           &d.weights_iter_any, &d.bias, &d.dst_layer, &d.state,
                                           &d.state, 0)) ||
        /* Inputs, outputs, then their gradients in the same order. */
        FAILED(dnnl_lstm_backward_desc_init(
            &backward_desc, dnnl_backward, direction, &d.src_layer, &d.state, &d.state,
            &d.weights_layer_any, &d.weights_iter_any, &d.bias, &d.dst_layer, &d.state, &d.state,
            &d.src_layer, &d.state, &d.state, &d.weights_layer_any, &d.weights_iter_any, &d.bias,
            &d.dst_layer, &d.state, &d.state, 0)))
        return 1;
    return stage_create(b, &b->infer, &infer_desc, NULL, NULL) ||
           stage_create(b, &b->forward, &forward_desc, NULL, NULL) ||
           stage_create(b, &b->backward, &backward_desc, b->forward.pd, NULL) ||
           training_memory_create(b);
}

static void bench_teardown(bench *b)
{
    stage_free(&b->lowp);
    const dnnl_memory_t lowp[] = {b->lowp_src_layer, b->lowp_src_iter, b->lowp_src_iter_c,
                                  b->lowp_dst_layer, b->lowp_dst_iter, b->lowp_dst_iter_c};
    for (int k = 0; k < COUNT(lowp); k++)
        memory_free(lowp[k]);
    if (b->lowp_attr)
        dnnl_primitive_attr_destroy(b->lowp_attr);
    memory_free(b->diff_weights_iter);
    memory_free(b->diff_weights_layer);
    memory_free(b->workspace);
    stage_free(&b->backward);
    stage_free(&b->forward);
    stage_free(&b->infer);
    const dnnl_memory_t tensors[] = {
        b->src_layer,      b->src_iter,       b->src_iter_c,      b->weights_layer,
        b->weights_iter,   b->bias,           b->dst_layer,       b->dst_iter,
        b->dst_iter_c,     b->diff_dst_layer, b->diff_dst_iter,   b->diff_dst_iter_c,
        b->diff_src_layer, b->diff_src_iter,  b->diff_src_iter_c, b->diff_bias,
    };
    for (int k = 0; k < COUNT(tensors); k++)
        memory_free(tensors[k]);
    if (b->stream)
        dnnl_stream_destroy(b->stream);
    if (b->engine)
        dnnl_engine_destroy(b->engine);
}

static int run_infer(bench *b)
{
    const dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC_LAYER, b->src_layer},
        {DNNL_ARG_SRC_ITER, b->src_iter},
        {DNNL_ARG_SRC_ITER_C, b->src_iter_c},
        {DNNL_ARG_WEIGHTS_LAYER, b->infer.weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, b->infer.weights_iter},
        {DNNL_ARG_BIAS, b->bias},
        {DNNL_ARG_DST_LAYER, b->dst_layer},
        {DNNL_ARG_DST_ITER, b->dst_iter},
        {DNNL_ARG_DST_ITER_C, b->dst_iter_c},
    };
    return FAILED(dnnl_primitive_execute(b->infer.primitive, b->stream, COUNT(args), args)) ||
           FAILED(dnnl_stream_wait(b->stream));
}

/*
 * Reduced precision (--precision bf16 | int8), inference only, as oneDNN
 * 2.6 offers it:
 *   bf16: src_layer, src_iter, weights and dst_layer, dst_iter in bf16;
 *         the bias and the c states in f32.
 *   int8: src_layer and src_iter u8 with one static scale and shift
 *         (u8 = round(x data_scale + data_shift), the same for every layer
 *         and for h), weights s8 with a scale per output channel (g, o:
 *         s8 = round(w weights_scale), one scale over W_layer and W_iter
 *         and over every layer and direction, as oneDNN shares it), the
 *         bias, c states and dst_layer f32 (u8 outputs where f32 is refused).
 * The weights are reordered and quantized once, outside the timing; so are
 * the inputs (to_precision()), which liblstm converts inside its call.
 */
static uint16_t float_to_bf16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    /* to nearest, ties to even (no NaN here) */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static float bf16_to_float(uint16_t value)
{
    const uint32_t bits = (uint32_t)value << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* Converts the f32 tensor `from` into `to`, of the same plain layout, in to's data type. */
static int to_precision(const bench *b, dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_memory_desc_t *md = memory_desc(to);
    const float *source = host_data(from);
    void *target = host_data(to);
    if (!md || !source || !target)
        return 1;
    const size_t count = dnnl_memory_desc_get_size(memory_desc(from)) / sizeof(float);
    for (size_t k = 0; k < count; k++) {
        if (md->data_type == dnnl_bf16)
            ((uint16_t *)target)[k] = float_to_bf16(source[k]);
        else if (md->data_type == dnnl_u8) {
            const float q = nearbyintf(source[k] * b->data_scale + b->data_shift);
            ((uint8_t *)target)[k] = (uint8_t)(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
        } else
            ((float *)target)[k] = source[k];
    }
    return 0;
}

/* The inverse of to_precision: `from`'s values as floats in out. */
static int from_precision(const bench *b, dnnl_memory_t from, float *out, size_t count)
{
    const dnnl_memory_desc_t *md = memory_desc(from);
    const void *source = host_data(from);
    if (!md || !source)
        return 1;
    for (size_t k = 0; k < count; k++)
        out[k] = md->data_type == dnnl_bf16 ? bf16_to_float(((const uint16_t *)source)[k])
                 : md->data_type == dnnl_u8
                     ? ((float)((const uint8_t *)source)[k] - b->data_shift) / b->data_scale
                     : ((const float *)source)[k];
    return 0;
}

/*
 * int8's scales. Data: the range of the input x, widened to [-1, 1] (the
 * h that src_iter and the layers past the first read), onto 0 .. 255 with 0
 * exact. Weights: 127 / max |w| of each output channel (g, o) over W_layer
 * and W_iter of every layer and direction, oneDNN's per-channel mask
 * (1 << 3) | (1 << 4) (of the dims l, d, i, g, o: one scale per g and o).
 */
static int int8_attr_create(bench *b)
{
    const size_t T = b->seq_len, B = b->batch, I = b->input_size, H = b->hidden_size;
    const size_t cells = b->layers * b->directions, G = GATES * H;
    const float *x = host_data(b->src_layer), *w_layer = host_data(b->weights_layer),
                *w_iter = host_data(b->weights_iter);
    float *scales = calloc(G, sizeof *scales);
    int failure = 1;
    if (!x || !w_layer || !w_iter || !scales) {
        fprintf(stderr, "bench_onednn: out of memory\n");
        goto out;
    }
    float low = -1.0f, high = 1.0f;
    for (size_t k = 0; k < T * B * I; k++) {
        low = fminf(low, x[k]);
        high = fmaxf(high, x[k]);
    }
    b->data_scale = 255.0f / (high - low);
    b->data_shift = nearbyintf(-low * b->data_scale);
    /* scales[] holds max |w| first, then 127 over it. */
    for (size_t n = 0; n < cells; n++)
        for (size_t g = 0; g < G; g++) {
            for (size_t i = 0; i < I; i++)
                scales[g] = fmaxf(scales[g], fabsf(w_layer[(n * I + i) * G + g]));
            for (size_t j = 0; j < H; j++)
                scales[g] = fmaxf(scales[g], fabsf(w_iter[(n * H + j) * G + g]));
        }
    for (size_t g = 0; g < G; g++)
        scales[g] = scales[g] > 0.0f ? 127.0f / scales[g] : 1.0f;
    failure = FAILED(dnnl_primitive_attr_create(&b->lowp_attr)) ||
              FAILED(dnnl_primitive_attr_set_rnn_data_qparams(b->lowp_attr, b->data_scale,
                                                              b->data_shift)) ||
              FAILED(dnnl_primitive_attr_set_rnn_weights_qparams(b->lowp_attr, (dnnl_dim_t)G,
                                                                 (1 << 3) | (1 << 4), scales));
out:
    free(scales);
    return failure;
}

/*
 * The reduced-precision inference primitive, its weights and its tensors,
 * the inputs converted from the f32 ones. 1 on failure; 2 when oneDNN has
 * no such LSTM here (after trying f32, then u8 or bf16, for the outputs).
 */
static int lowp_setup(bench *b)
{
    const dnnl_dim_t T = (dnnl_dim_t)b->seq_len, B = (dnnl_dim_t)b->batch;
    const dnnl_dim_t I = (dnnl_dim_t)b->input_size, H = (dnnl_dim_t)b->hidden_size;
    const dnnl_dim_t L = (dnnl_dim_t)b->layers, D = (dnnl_dim_t)b->directions;
    const dnnl_dims_t src_dims = {T, B, I}, dst_dims = {T, B, D * H};
    const dnnl_dims_t state_dims = {L, D, B, H}, bias_dims = {L, D, GATES, H};
    const dnnl_dims_t layer_dims = {L, D, I, GATES, H}, iter_dims = {L, D, H, GATES, H};
    const dnnl_rnn_direction_t direction =
        b->directions == 2 ? dnnl_bidirectional_concat : dnnl_unidirectional_left2right;
    const int int8 = b->precision == 2;
    const dnnl_data_type_t src_type = int8 ? dnnl_u8 : dnnl_bf16;
    const dnnl_data_type_t weights_type = int8 ? dnnl_s8 : dnnl_bf16;
    /* Outputs (dst_layer, dst_iter, the c states): f32 where oneDNN takes
     * it, the source type where it does not. */
    static const dnnl_data_type_t int8_types[][3] = {{dnnl_f32, dnnl_f32, dnnl_f32},
                                                     {dnnl_f32, dnnl_u8, dnnl_f32},
                                                     {dnnl_u8, dnnl_u8, dnnl_f32}};
    static const dnnl_data_type_t bf16_types[][3] = {{dnnl_bf16, dnnl_bf16, dnnl_f32},
                                                     {dnnl_bf16, dnnl_bf16, dnnl_bf16}};
    if (int8 && int8_attr_create(b))
        return 1;
    int status = 2;
    for (int attempt = 0; attempt < (int8 ? COUNT(int8_types) : COUNT(bf16_types)) && status == 2;
         attempt++) {
        const dnnl_data_type_t *types = int8 ? int8_types[attempt] : bf16_types[attempt];
        const dnnl_data_type_t dst_type = types[0], dst_iter_type = types[1], c_type = types[2];
        dnnl_memory_desc_t src, src_iter, c_state, dst, dst_iter, bias, layer_any, iter_any;
        dnnl_rnn_desc_t desc;
        if (FAILED(dnnl_memory_desc_init_by_tag(&src, 3, src_dims, src_type, dnnl_tnc)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&src_iter, 4, state_dims, src_type, dnnl_ldnc)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&c_state, 4, state_dims, c_type, dnnl_ldnc)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&dst, 3, dst_dims, dst_type, dnnl_tnc)) ||
            FAILED(
                dnnl_memory_desc_init_by_tag(&dst_iter, 4, state_dims, dst_iter_type, dnnl_ldnc)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&bias, 4, bias_dims, dnnl_f32, dnnl_ldgo)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&layer_any, 5, layer_dims, weights_type,
                                                dnnl_format_tag_any)) ||
            FAILED(dnnl_memory_desc_init_by_tag(&iter_any, 5, iter_dims, weights_type,
                                                dnnl_format_tag_any)))
            return 1;
        /* (The descriptor itself refuses some combinations of types.) */
        const dnnl_status_t init = dnnl_lstm_forward_desc_init(
            &desc, dnnl_forward_inference, direction, &src, &src_iter, &c_state, &layer_any,
            &iter_any, &bias, &dst, &dst_iter, &c_state, 0);
        if (init == dnnl_unimplemented)
            continue;
        if (FAILED(init))
            return 1;
        status = stage_create(b, &b->lowp, &desc, NULL, b->lowp_attr);
        if (status == 0 && (memory_new(b, &src, 0u, 0.0f, &b->lowp_src_layer) ||
                            memory_new(b, &src_iter, 0u, 0.0f, &b->lowp_src_iter) ||
                            memory_new(b, &c_state, 0u, 0.0f, &b->lowp_src_iter_c) ||
                            memory_new(b, &dst, 0u, 0.0f, &b->lowp_dst_layer) ||
                            memory_new(b, &dst_iter, 0u, 0.0f, &b->lowp_dst_iter) ||
                            memory_new(b, &c_state, 0u, 0.0f, &b->lowp_dst_iter_c) ||
                            to_precision(b, b->src_layer, b->lowp_src_layer) ||
                            to_precision(b, b->src_iter, b->lowp_src_iter) ||
                            to_precision(b, b->src_iter_c, b->lowp_src_iter_c)))
            status = 1;
    }
    if (status == 2)
        printf("# oneDNN has no %s LSTM inference here (primitive creation unimplemented)\n",
               int8 ? "int8" : "bf16");
    return status;
}

static int run_infer_lowp(bench *b)
{
    const dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC_LAYER, b->lowp_src_layer},
        {DNNL_ARG_SRC_ITER, b->lowp_src_iter},
        {DNNL_ARG_SRC_ITER_C, b->lowp_src_iter_c},
        {DNNL_ARG_WEIGHTS_LAYER, b->lowp.weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, b->lowp.weights_iter},
        {DNNL_ARG_BIAS, b->bias},
        {DNNL_ARG_DST_LAYER, b->lowp_dst_layer},
        {DNNL_ARG_DST_ITER, b->lowp_dst_iter},
        {DNNL_ARG_DST_ITER_C, b->lowp_dst_iter_c},
    };
    return FAILED(dnnl_primitive_execute(b->lowp.primitive, b->stream, COUNT(args), args)) ||
           FAILED(dnnl_stream_wait(b->stream));
}

static int run_train(bench *b)
{
    const dnnl_exec_arg_t forward_args[] = {
        {DNNL_ARG_SRC_LAYER, b->src_layer},
        {DNNL_ARG_SRC_ITER, b->src_iter},
        {DNNL_ARG_SRC_ITER_C, b->src_iter_c},
        {DNNL_ARG_WEIGHTS_LAYER, b->forward.weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, b->forward.weights_iter},
        {DNNL_ARG_BIAS, b->bias},
        {DNNL_ARG_DST_LAYER, b->dst_layer},
        {DNNL_ARG_DST_ITER, b->dst_iter},
        {DNNL_ARG_DST_ITER_C, b->dst_iter_c},
        {DNNL_ARG_WORKSPACE, b->workspace},
    };
    const dnnl_exec_arg_t backward_args[] = {
        {DNNL_ARG_SRC_LAYER, b->src_layer},
        {DNNL_ARG_SRC_ITER, b->src_iter},
        {DNNL_ARG_SRC_ITER_C, b->src_iter_c},
        {DNNL_ARG_WEIGHTS_LAYER, b->backward.weights_layer},
        {DNNL_ARG_WEIGHTS_ITER, b->backward.weights_iter},
        {DNNL_ARG_BIAS, b->bias},
        {DNNL_ARG_DST_LAYER, b->dst_layer},
        {DNNL_ARG_DST_ITER, b->dst_iter},
        {DNNL_ARG_DST_ITER_C, b->dst_iter_c},
        {DNNL_ARG_WORKSPACE, b->workspace},
        {DNNL_ARG_DIFF_DST_LAYER, b->diff_dst_layer},
        {DNNL_ARG_DIFF_DST_ITER, b->diff_dst_iter},
        {DNNL_ARG_DIFF_DST_ITER_C, b->diff_dst_iter_c},
        {DNNL_ARG_DIFF_SRC_LAYER, b->diff_src_layer},
        {DNNL_ARG_DIFF_SRC_ITER, b->diff_src_iter},
        {DNNL_ARG_DIFF_SRC_ITER_C, b->diff_src_iter_c},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, b->diff_weights_layer},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, b->diff_weights_iter},
        {DNNL_ARG_DIFF_BIAS, b->diff_bias},
    };
    return FAILED(dnnl_primitive_execute(b->forward.primitive, b->stream, COUNT(forward_args),
                                         forward_args)) ||
           FAILED(dnnl_primitive_execute(b->backward.primitive, b->stream, COUNT(backward_args),
                                         backward_args)) ||
           FAILED(dnnl_stream_wait(b->stream));
}

/* The weight reorders a training loop needs after each optimizer step. */
static int run_train_reorders(bench *b)
{
    const stage *stages[] = {&b->forward, &b->backward};
    for (int k = 0; k < COUNT(stages); k++)
        if (reorder_run(b, stages[k]->reorder_layer, b->weights_layer, stages[k]->weights_layer) ||
            reorder_run(b, stages[k]->reorder_iter, b->weights_iter, stages[k]->weights_iter))
            return 1;
    return 0;
}

/* oneDNN accumulates into the weight gradients; start each measurement from zero. */
static int zero_weight_grads(bench *b)
{
    return memory_fill(b->diff_weights_layer, 0u, 0.0f) ||
           memory_fill(b->diff_weights_iter, 0u, 0.0f) || memory_fill(b->diff_bias, 0u, 0.0f);
}

/* Median wall time of one call, in seconds. */
static int time_median(bench *b, int (*run)(bench *), size_t repetitions, double *median)
{
    double times[MAX_REPETITIONS];
    for (int k = 0; k < WARMUP_RUNS; k++)
        if (run(b))
            return 1;
    for (size_t k = 0; k < repetitions; k++) {
        double start = now_seconds();
        if (run(b))
            return 1;
        times[k] = now_seconds() - start;
    }
    qsort(times, repetitions, sizeof times[0], compare_doubles);
    *median = repetitions % 2 ? times[repetitions / 2]
                              : 0.5 * (times[repetitions / 2 - 1] + times[repetitions / 2]);
    return 0;
}

/*
 * Writes a weights layout in oneDNN's tag notation (dims l d i g o, outermost
 * first, blocked dims in capitals followed by their blocks, as in ldgIo32i),
 * plus "+pad" when the strides leave gaps (oneDNN pads leading dimensions).
 */
static void layout_name(const dnnl_memory_desc_t *md, char *out, size_t size)
{
    static const char letters[] = "ldigo";
    if (md->format_kind == dnnl_format_kind_rnn_packed) {
        snprintf(out, size, "packed_%s",
                 md->format_desc.rnn_packed_desc.format == dnnl_ldigo_p   ? "ldigo_p"
                 : md->format_desc.rnn_packed_desc.format == dnnl_ldgoi_p ? "ldgoi_p"
                                                                          : "other");
        return;
    }
    if (md->format_kind != dnnl_blocked || md->ndims != 5) {
        snprintf(out, size, "format_kind_%s", dnnl_fmt_kind2str(md->format_kind));
        return;
    }
    const dnnl_blocking_desc_t *blocking = &md->format_desc.blocking;
    int order[5] = {0, 1, 2, 3, 4}, blocked[5] = {0};
    for (int k = 0; k < blocking->inner_nblks; k++)
        blocked[blocking->inner_idxs[k]] = 1;
    /* Outermost first: larger stride, ties (size-1 dims) in logical order. */
    for (int k = 1; k < 5; k++)
        for (int j = k; j > 0; j--) {
            if (blocking->strides[order[j]] <= blocking->strides[order[j - 1]])
                break;
            int swap = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swap;
        }
    size_t used = 0;
    for (int k = 0; k < 5 && used + 1 < size; k++)
        out[used++] = blocked[order[k]] ? (char)(letters[order[k]] - 'a' + 'A') : letters[order[k]];
    for (int k = 0; k < blocking->inner_nblks && used < size; k++)
        used +=
            (size_t)snprintf(out + used, size - used, "%lld%c", (long long)blocking->inner_blks[k],
                             letters[blocking->inner_idxs[k]]);
    dnnl_dim_t dense = (dnnl_dim_t)dnnl_data_type_size(md->data_type);
    for (int k = 0; k < 5; k++)
        dense *= md->padded_dims[k];
    if (used < size)
        snprintf(out + used, size - used, "%s",
                 (dnnl_dim_t)dnnl_memory_desc_get_size(md) > dense ? "+pad" : "");
}

/* One "# " line: implementation, weights layouts and extra memory of a stage. */
static int describe(const char *label, const stage *s)
{
    const char *impl = NULL;
    int64_t extra_bytes = 0;
    char layer_name[64], iter_name[64];
    const dnnl_memory_desc_t *layer_md = memory_desc(s->weights_layer);
    const dnnl_memory_desc_t *iter_md = memory_desc(s->weights_iter);
    if (FAILED(dnnl_primitive_desc_query(s->pd, dnnl_query_impl_info_str, 0, &impl)) ||
        FAILED(
            dnnl_primitive_desc_query(s->pd, dnnl_query_memory_consumption_s64, 0, &extra_bytes)) ||
        !layer_md || !iter_md)
        return 1;
    layout_name(layer_md, layer_name, sizeof layer_name);
    layout_name(iter_md, iter_name, sizeof iter_name);
    /* extra_bytes: the scratchpad oneDNN allocates for this primitive itself. */
    printf("# %s: primitive=%s weights_layer=%s weights_iter=%s weights_bytes=%zu "
           "extra_bytes=%lld\n",
           label, impl, layer_name, iter_name,
           dnnl_memory_desc_get_size(layer_md) + dnnl_memory_desc_get_size(iter_md),
           (long long)extra_bytes);
    return 0;
}

/* Host pointers to every tensor in the plain layouts (weights ldigo). */
typedef struct host_view {
    const float *src_layer, *src_iter, *src_iter_c, *weights_layer, *weights_iter, *bias;
    const float *diff_dst_layer, *diff_dst_iter, *diff_dst_iter_c;
    float *dst_layer, *dst_iter, *dst_iter_c;
    float *diff_src_layer, *diff_src_iter, *diff_src_iter_c;
    float *diff_weights_layer, *diff_weights_iter, *diff_bias;
} host_view;

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/*
 * One layer and direction of the reference: its blocks of oneDNN's weights
 * (W: I x 4H, U: H x 4H, bias: 4H) and what its forward keeps for backward,
 * by step s in the direction's own order (t = s forward, t = T - 1 - s in
 * reverse).
 */
typedef struct reference_cell {
    size_t T, B, I, H, D, d; /* I: the layer's input width; d: 0 forward, 1 reverse */
    const float *weights_layer, *weights_iter, *bias;
    double *gates;          /* T x B x 4H, activated */
    double *cells, *hidden; /* (T + 1) x B x H: the initial states, then each step's */
} reference_cell;

static size_t step_time(const reference_cell *r, size_t s)
{
    return r->d == 1 ? r->T - 1 - s : s;
}

/*
 * Forward of one layer and direction over x (T x B x I) from h0, c0 (B x H),
 * into its H columns of y (T x B x D H, the forward direction's first):
 *   a_t = x_t W + h_prev U + bias   (h_prev: h_{t-1}, or h_{t+1} in reverse)
 *   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
 *   c_t = f * c_prev + i * g,  h_t = o * tanh(c_t)
 */
static void reference_forward(const reference_cell *r, const double *x, const float *h0,
                              const float *c0, double *y)
{
    const size_t B = r->B, I = r->I, H = r->H, G = GATES * H, y_width = r->D * H;
    for (size_t k = 0; k < B * H; k++) {
        r->hidden[k] = h0[k];
        r->cells[k] = c0[k];
    }
    for (size_t s = 0; s < r->T; s++) {
        const size_t t = step_time(r, s);
        for (size_t b = 0; b < B; b++) {
            const double *x_row = x + (t * B + b) * I;
            const double *h_prev = r->hidden + (s * B + b) * H;
            const double *c_prev = r->cells + (s * B + b) * H;
            double *a = r->gates + (s * B + b) * G;
            /* a = x W + h_prev U + bias, then the gate nonlinearities */
            for (size_t n = 0; n < G; n++) {
                double sum = r->bias[n];
                for (size_t i = 0; i < I; i++)
                    sum += x_row[i] * r->weights_layer[i * G + n];
                for (size_t j = 0; j < H; j++)
                    sum += h_prev[j] * r->weights_iter[j * G + n];
                a[n] = n / H == 2 ? tanh(sum) : sigmoid(sum);
            }
            /* c = f c_prev + i g, h = o tanh(c) */
            for (size_t n = 0; n < H; n++) {
                double c = a[H + n] * c_prev[n] + a[n] * a[2 * H + n];
                double h = a[3 * H + n] * tanh(c);
                r->cells[((s + 1) * B + b) * H + n] = c;
                r->hidden[((s + 1) * B + b) * H + n] = h;
                y[(t * B + b) * y_width + r->d * H + n] = h;
            }
        }
    }
}

/*
 * Backward of one layer and direction. dy: the gradient of the layer's
 * output (T x B x D H; its own H columns are read). dh, dc (B x H) come in
 * as the final states' gradients and leave as the initial states'. Adds to
 * dx (T x B x I) and to dw (I x 4H), du (H x 4H) and dbias (4H); dgates is
 * B x 4H of scratch.
 */
static void reference_backward(const reference_cell *r, const double *x, const double *dy,
                               double *dx, double *dh, double *dc, double *dgates, double *dw,
                               double *du, double *dbias)
{
    const size_t B = r->B, I = r->I, H = r->H, G = GATES * H, y_width = r->D * H;
    for (size_t s = r->T; s-- > 0;) {
        const size_t t = step_time(r, s);
        for (size_t b = 0; b < B; b++) {
            const double *a = r->gates + (s * B + b) * G;
            double *da = dgates + b * G;
            for (size_t n = 0; n < H; n++) {
                double ig = a[n], fg = a[H + n], gg = a[2 * H + n], og = a[3 * H + n];
                double c = r->cells[((s + 1) * B + b) * H + n];
                double c_prev = r->cells[(s * B + b) * H + n];
                double dh_total = dy[(t * B + b) * y_width + r->d * H + n] + dh[b * H + n];
                double tanh_c = tanh(c);
                /* dc = dc_next + dh o (1 - tanh^2 c); dc_prev = dc f */
                double dcell = dc[b * H + n] + dh_total * og * (1.0 - tanh_c * tanh_c);
                dc[b * H + n] = dcell * fg;
                da[n] = dcell * gg * ig * (1.0 - ig);
                da[H + n] = dcell * c_prev * fg * (1.0 - fg);
                da[2 * H + n] = dcell * ig * (1.0 - gg * gg);
                da[3 * H + n] = dh_total * tanh_c * og * (1.0 - og);
            }
        }
        for (size_t b = 0; b < B; b++) {
            const double *x_row = x + (t * B + b) * I;
            const double *h_prev = r->hidden + (s * B + b) * H, *da = dgates + b * G;
            /* dx += da W^T, dh_prev = da U^T, dW += x^T da, dU += h_prev^T da, dbias += da */
            for (size_t i = 0; i < I; i++) {
                double sum = 0.0;
                for (size_t n = 0; n < G; n++) {
                    sum += r->weights_layer[i * G + n] * da[n];
                    dw[i * G + n] += x_row[i] * da[n];
                }
                dx[(t * B + b) * I + i] += sum;
            }
            for (size_t j = 0; j < H; j++) {
                double sum = 0.0;
                for (size_t n = 0; n < G; n++) {
                    sum += r->weights_iter[j * G + n] * da[n];
                    du[j * G + n] += h_prev[j] * da[n];
                }
                dh[b * H + j] = sum;
            }
            for (size_t n = 0; n < G; n++)
                dbias[n] += da[n];
        }
    }
}

/*
 * The network in double, in oneDNN's layouts (x: T x B x I; every layer's
 * weights I x 4H and H x 4H, so with L > 1 I must be D H; states and their
 * gradients indexed l D + d). Layer l > 0 reads both directions' outputs of
 * layer l - 1 (as liblstm and PyTorch; oneDNN, whose bidirectional stacks
 * do not, is only checked with one of L and D above 1), so backward runs
 * the layers top down and adds both directions' input gradients into the
 * output gradient of the layer below. Reads the inputs of v and writes all
 * its outputs.
 */
static int reference_lstm(size_t T, size_t B, size_t I, size_t H, size_t L, size_t D, host_view *v)
{
    const size_t G = GATES * H, width = I > D * H ? I : D * H, io_size = T * B * width;
    const size_t cell_size = T * B * G + 2 * (T + 1) * B * H, grads_size = I * G + H * G + G;
    /* io: layer l's input at l, the network's output at L; dio: their gradients */
    double *io = calloc(
        2 * (L + 1) * io_size + L * D * (cell_size + grads_size) + B * G + 2 * B * H, sizeof *io);
    if (!io) {
        fprintf(stderr, "bench_onednn: out of memory\n");
        return 1;
    }
    double *dio = io + (L + 1) * io_size, *cell_memory = dio + (L + 1) * io_size;
    double *grads = cell_memory + L * D * cell_size, *dgates = grads + L * D * grads_size;
    double *dh = dgates + B * G, *dc = dh + B * H;

    for (size_t k = 0; k < T * B * I; k++)
        io[k] = v->src_layer[k];
    for (size_t k = 0; k < T * B * D * H; k++)
        dio[L * io_size + k] = v->diff_dst_layer[k];
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t step = 0; step < L * D; step++) {
            /* forward: (0, 0), (0, 1), (1, 0) ...; backward the other way round */
            const size_t n = pass == 0 ? step : L * D - 1 - step, l = n / D;
            const reference_cell r = {
                .T = T,
                .B = B,
                .I = I,
                .H = H,
                .D = D,
                .d = n % D,
                .weights_layer = v->weights_layer + n * I * G,
                .weights_iter = v->weights_iter + n * H * G,
                .bias = v->bias + n * G,
                .gates = cell_memory + n * cell_size,
                .cells = cell_memory + n * cell_size + T * B * G,
                .hidden = cell_memory + n * cell_size + T * B * G + (T + 1) * B * H,
            };
            const size_t state = n * B * H;
            if (pass == 0) {
                reference_forward(&r, io + l * io_size, v->src_iter + state, v->src_iter_c + state,
                                  io + (l + 1) * io_size);
                for (size_t k = 0; k < B * H; k++) {
                    v->dst_iter[state + k] = (float)r.hidden[T * B * H + k];
                    v->dst_iter_c[state + k] = (float)r.cells[T * B * H + k];
                }
                continue;
            }
            for (size_t k = 0; k < B * H; k++) {
                dh[k] = v->diff_dst_iter[state + k];
                dc[k] = v->diff_dst_iter_c[state + k];
            }
            double *dw = grads + n * grads_size, *du = dw + I * G, *dbias = du + H * G;
            reference_backward(&r, io + l * io_size, dio + (l + 1) * io_size, dio + l * io_size, dh,
                               dc, dgates, dw, du, dbias);
            for (size_t k = 0; k < B * H; k++) {
                v->diff_src_iter[state + k] = (float)dh[k];
                v->diff_src_iter_c[state + k] = (float)dc[k];
            }
            for (size_t k = 0; k < I * G; k++)
                v->diff_weights_layer[n * I * G + k] = (float)dw[k];
            for (size_t k = 0; k < H * G; k++)
                v->diff_weights_iter[n * H * G + k] = (float)du[k];
            for (size_t k = 0; k < G; k++)
                v->diff_bias[n * G + k] = (float)dbias[k];
        }
    }
    for (size_t k = 0; k < T * B * D * H; k++)
        v->dst_layer[k] = (float)io[L * io_size + k];
    for (size_t k = 0; k < T * B * I; k++)
        v->diff_src_layer[k] = (float)dio[k];
    free(io);
    return 0;
}

/* Largest |got - factor * want| relative to max(1, |want|); prints a line, 1 if over 1e-5. */
static int compare(const char *mode, const char *name, const float *got, const float *want,
                   size_t count, double factor)
{
    double worst = 0.0;
    for (size_t k = 0; k < count; k++) {
        double expected = factor * want[k];
        double error = fabs(got[k] - expected) / fmax(1.0, fabs(expected));
        if (!(error <= worst)) /* also catches NaN */
            worst = error;
    }
    int bad = !(worst <= 1e-5);
    printf("check mode=%s tensor=%s count=%zu max_rel_err=%.3g %s\n", mode, name, count, worst,
           bad ? "FAILED" : "ok");
    return bad;
}

/*
 * Runs one tiny network through the benchmark's own code and compares with
 * reference_lstm; 0 when every tensor matches.
 */
static int check_network(size_t I, size_t L, size_t D)
{
    bench b = {
        .seq_len = 3, .batch = 2, .input_size = I, .hidden_size = 5, .layers = L, .directions = D};
    const size_t T = b.seq_len, B = b.batch, H = b.hidden_size, G = GATES * H;
    const size_t output = T * B * D * H, states = L * D * B * H, cells = L * D;
    dnnl_memory_t grad_layer = NULL, grad_iter = NULL; /* diff weights in ldigo */
    dnnl_primitive_t to_plain_layer = NULL, to_plain_iter = NULL;
    float *expected = NULL;
    int failures = 0, exit_code = 1;

    if (bench_setup(&b, 1.0f) ||
        reorder_create(&b, b.diff_weights_layer, memory_desc(b.weights_layer), &grad_layer,
                       &to_plain_layer, NULL) ||
        reorder_create(&b, b.diff_weights_iter, memory_desc(b.weights_iter), &grad_iter,
                       &to_plain_iter, NULL))
        goto out;
    expected =
        malloc((output + 4 * states + T * B * I + cells * (I * G + H * G + G)) * sizeof *expected);
    if (!expected) {
        fprintf(stderr, "bench_onednn: out of memory\n");
        goto out;
    }
    host_view ref = {
        .src_layer = host_data(b.src_layer),
        .src_iter = host_data(b.src_iter),
        .src_iter_c = host_data(b.src_iter_c),
        .weights_layer = host_data(b.weights_layer),
        .weights_iter = host_data(b.weights_iter),
        .bias = host_data(b.bias),
        .diff_dst_layer = host_data(b.diff_dst_layer),
        .diff_dst_iter = host_data(b.diff_dst_iter),
        .diff_dst_iter_c = host_data(b.diff_dst_iter_c),
    };
    ref.dst_layer = expected;
    ref.dst_iter = ref.dst_layer + output;
    ref.dst_iter_c = ref.dst_iter + states;
    ref.diff_src_layer = ref.dst_iter_c + states;
    ref.diff_src_iter = ref.diff_src_layer + T * B * I;
    ref.diff_src_iter_c = ref.diff_src_iter + states;
    ref.diff_weights_layer = ref.diff_src_iter_c + states;
    ref.diff_weights_iter = ref.diff_weights_layer + cells * I * G;
    ref.diff_bias = ref.diff_weights_iter + cells * H * G;
    if (reference_lstm(T, B, I, H, L, D, &ref))
        goto out;

    const float *dst_layer = host_data(b.dst_layer), *dst_iter = host_data(b.dst_iter),
                *dst_iter_c = host_data(b.dst_iter_c);
    if (run_infer(&b))
        goto out;
    failures += compare("infer", "dst_layer", dst_layer, ref.dst_layer, output, 1.0);
    failures += compare("infer", "dst_iter", dst_iter, ref.dst_iter, states, 1.0);
    failures += compare("infer", "dst_iter_c", dst_iter_c, ref.dst_iter_c, states, 1.0);

    /* Training must write every output itself. */
    if (memory_fill(b.dst_layer, 0u, 0.0f) || memory_fill(b.dst_iter, 0u, 0.0f) ||
        memory_fill(b.dst_iter_c, 0u, 0.0f) || run_train(&b) ||
        reorder_run(&b, to_plain_layer, b.diff_weights_layer, grad_layer) ||
        reorder_run(&b, to_plain_iter, b.diff_weights_iter, grad_iter))
        goto out;
    const struct {
        const char *name;
        const float *got, *want;
        size_t count;
    } outputs[] = {
        {"dst_layer", dst_layer, ref.dst_layer, output},
        {"dst_iter", dst_iter, ref.dst_iter, states},
        {"dst_iter_c", dst_iter_c, ref.dst_iter_c, states},
        {"diff_src_layer", host_data(b.diff_src_layer), ref.diff_src_layer, T * B * I},
        {"diff_src_iter", host_data(b.diff_src_iter), ref.diff_src_iter, states},
        {"diff_src_iter_c", host_data(b.diff_src_iter_c), ref.diff_src_iter_c, states},
        {"diff_weights_layer", host_data(grad_layer), ref.diff_weights_layer, cells * I * G},
        {"diff_weights_iter", host_data(grad_iter), ref.diff_weights_iter, cells * H * G},
        {"diff_bias", host_data(b.diff_bias), ref.diff_bias, cells * G},
    };
    for (int k = 0; k < COUNT(outputs); k++) {
        if (!outputs[k].got)
            goto out;
        failures += compare("train", outputs[k].name, outputs[k].got, outputs[k].want,
                            outputs[k].count, 1.0);
    }

    /* A second step without zeroing: do the weight gradients accumulate? */
    if (run_train(&b) || reorder_run(&b, to_plain_layer, b.diff_weights_layer, grad_layer) ||
        reorder_run(&b, to_plain_iter, b.diff_weights_iter, grad_iter))
        goto out;
    failures += compare("train_twice", "diff_weights_layer", host_data(grad_layer),
                        ref.diff_weights_layer, cells * I * G, 2.0);
    failures += compare("train_twice", "diff_weights_iter", host_data(grad_iter),
                        ref.diff_weights_iter, cells * H * G, 2.0);
    failures +=
        compare("train_twice", "diff_bias", host_data(b.diff_bias), ref.diff_bias, cells * G, 2.0);
    printf("check T=%zu B=%zu I=%zu H=%zu layers=%zu directions=%zu %s\n", T, B, I, H, L, D,
           failures ? "FAILED" : "passed");
    exit_code = failures ? 1 : 0;
out:
    free(expected);
    primitive_free(to_plain_iter);
    primitive_free(to_plain_layer);
    memory_free(grad_iter);
    memory_free(grad_layer);
    bench_teardown(&b);
    return exit_code;
}

/* One layer, then a bidirectional one, and two layers (I = H). */
static int run_check(void)
{
    static const size_t networks[][3] = {{4, 1, 1}, {4, 1, 2}, {5, 2, 1}};
    int failed_networks = 0;
    for (int k = 0; k < COUNT(networks); k++)
        failed_networks += check_network(networks[k][0], networks[k][1], networks[k][2]);
    printf("check %s\n", failed_networks ? "FAILED" : "passed");
    return failed_networks ? 1 : 0;
}

int main(int argc, char **argv)
{
    bench b = {.seq_len = 100,
               .batch = 16,
               .input_size = 512,
               .hidden_size = 512,
               .layers = 1,
               .directions = 1};
    size_t repetitions = DEFAULT_REPETITIONS;
    int exit_code = 1;
    float *reference = NULL, *lowp_y = NULL;

    if (argc == 2 && strcmp(argv[1], "--check") == 0)
        return run_check();
    const char *program = "bench_onednn";
    if (argc >= 3 && strcmp(argv[1], "--precision") == 0) {
        if ((b.precision = parse_precision(program, argv[2])) < 0)
            return 2;
        argv[2] = argv[0];
        argv += 2;
        argc -= 2;
    }
    if (argc != 1 && (argc < 5 || argc > 8)) {
        fprintf(stderr,
                "usage: %s [--precision fp32|bf16|int8] [T B I H [repetitions [layers "
                "[directions]]]] | --check\n",
                argv[0]);
        return 2;
    }
    if (argc >= 5 &&
        (parse_size(program, argv[1], &b.seq_len) || parse_size(program, argv[2], &b.batch) ||
         parse_size(program, argv[3], &b.input_size) ||
         parse_size(program, argv[4], &b.hidden_size)))
        return 2;
    if (argc >= 6 &&
        (parse_size(program, argv[5], &repetitions) || repetitions > MAX_REPETITIONS)) {
        fprintf(stderr, "bench_onednn: repetitions must be 1 .. %d\n", MAX_REPETITIONS);
        return 2;
    }
    if (parse_network(program, argc >= 7 ? argv[6] : NULL, argc >= 8 ? argv[7] : NULL, &b.layers,
                      &b.directions))
        return 2;
    size_t T = b.seq_len, B = b.batch, I = b.input_size, H = b.hidden_size;
    size_t L = b.layers, D = b.directions;
    /* (64: room for D H = 2 H, the 4 gates and the float size) */
    if (I > MAX_FEATURES || H > MAX_FEATURES || B > SIZE_MAX / 64 / MAX_FEATURES ||
        T > SIZE_MAX / 64 / B / MAX_FEATURES) {
        fprintf(stderr,
                "bench_onednn: I and H must be at most %zu, and T*B*max(I,2H) floats "
                "must fit in memory\n",
                MAX_FEATURES);
        return 2;
    }
    if (L > 1 && D == 2) {
        fprintf(stderr,
                "bench_onednn: oneDNN's bidirectional layers read only their own "
                "direction of the layer below, not both as liblstm's: with %zu layers "
                "the network must be unidirectional\n",
                L);
        return 2;
    }
    /* One weights_layer tensor (L x D x I x 4 x H) serves every layer. */
    if (L > 1 && I != H) {
        fprintf(stderr,
                "bench_onednn: oneDNN gives every layer the same input width, so with "
                "%zu layers I must be H = %zu, not %zu\n",
                L, H, I);
        return 2;
    }

    const dnnl_version_t *version = dnnl_version();
    const char *omp_env = getenv("OMP_NUM_THREADS");
    const int threads = omp_get_max_threads();
    printf("oneDNN %d.%d.%d (%s, cpu_runtime=%s) OMP_NUM_THREADS=%s repetitions=%zu warmup=%d\n",
           version->major, version->minor, version->patch, version->hash ? version->hash : "?",
           dnnl_runtime2str(version->cpu_runtime), omp_env ? omp_env : "(unset)", repetitions,
           WARMUP_RUNS);
    if (bench_setup(&b, 1e-3f) || describe("infer", &b.infer) ||
        describe("train forward", &b.forward) || describe("train backward", &b.backward))
        goto out;

    const double flops = forward_flops(T, B, I, H, L, D);
    if (b.precision != 0) {
        /* The accuracy measurement's data: x from N(0, 1), zero initial
         * states; the f32 primitive's y on it is the reference. */
        const size_t count = T * B * D * H;
        reference = malloc(count * sizeof *reference);
        lowp_y = malloc(count * sizeof *lowp_y);
        const float *y = host_data(b.dst_layer);
        float *x = host_data(b.src_layer);
        if (!reference || !lowp_y || !y || !x) {
            fprintf(stderr, "bench_onednn: out of memory\n");
            goto out;
        }
        fill_normal(x, T * B * I, 1u);
        if (memory_fill(b.src_iter, 0u, 0.0f) || memory_fill(b.src_iter_c, 0u, 0.0f) ||
            run_infer(&b))
            goto out;
        memcpy(reference, y, count * sizeof *reference);
        const int status = lowp_setup(&b);
        if (status) {
            exit_code = status;
            goto out;
        }
        double seconds;
        if (describe(precision_names[b.precision], &b.lowp) ||
            time_median(&b, run_infer_lowp, repetitions, &seconds) ||
            from_precision(&b, b.lowp_dst_layer, lowp_y, count))
            goto out;
        printf("impl=onednn T=%zu B=%zu I=%zu H=%zu layers=%zu directions=%zu mode=infer "
               "threads=%d ms=%.3f gflops=%.2f workspace_bytes=0 precision=%s relerr=%.6f\n",
               T, B, I, H, L, D, threads, 1e3 * seconds, flops / seconds * 1e-9,
               precision_names[b.precision], relative_l2_error(lowp_y, reference, count));
        printf("# %s: dst_layer=%s dst_iter=%s dst_iter_c=%s", precision_names[b.precision],
               dnnl_dt2str(memory_desc(b.lowp_dst_layer)->data_type),
               dnnl_dt2str(memory_desc(b.lowp_dst_iter)->data_type),
               dnnl_dt2str(memory_desc(b.lowp_dst_iter_c)->data_type));
        if (b.precision == 2)
            printf(" data_scale=%g data_shift=%g", b.data_scale, b.data_shift);
        printf("\n");
        exit_code = 0;
        goto out;
    }
    const struct {
        const char *name;
        int (*run)(bench *);
        double flops;
        size_t workspace_bytes;
    } modes[] = {
        {"infer", run_infer, flops, 0},
        {"train", run_train, 3.0 * flops, dnnl_memory_desc_get_size(memory_desc(b.workspace))},
    };
    for (int m = 0; m < COUNT(modes); m++) {
        double seconds;
        if (zero_weight_grads(&b) || time_median(&b, modes[m].run, repetitions, &seconds))
            goto out;
        printf("impl=onednn T=%zu B=%zu I=%zu H=%zu layers=%zu directions=%zu mode=%s "
               "threads=%d ms=%.3f gflops=%.2f workspace_bytes=%zu precision=fp32\n",
               T, B, I, H, L, D, modes[m].name, threads, 1e3 * seconds,
               modes[m].flops / seconds * 1e-9, modes[m].workspace_bytes);
    }
    double reorder_seconds;
    if (time_median(&b, run_train_reorders, repetitions, &reorder_seconds))
        goto out;
    printf("# train: weights reorders per optimizer step (not in ms above) ms=%.3f\n",
           1e3 * reorder_seconds);
    exit_code = 0;
out:
    free(reference);
    free(lowp_y);
    bench_teardown(&b);
    return exit_code;
}
