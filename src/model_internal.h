/* The model's private state, shared by model.c, workspace.c, forward.c and backward.c. */
#ifndef LSTM_MODEL_INTERNAL_H
#define LSTM_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lstm/model.h"
#include "touch.h"

/* One layer and direction: where its tensors live and the sizes they have. */
typedef struct layer_block {
    size_t input_size;        /* I_l */
    size_t stacked_size;      /* K = R + I_l, the columns of W */
    size_t weight_offset;     /* W, 4H x K */
    size_t bias_offset;       /* b, 4H */
    size_t projection_offset; /* W_hr, P x H (when P > 0) */
    size_t peephole_offset;   /* p_i, p_f, p_o, 3 x H (with LSTM_PEEPHOLE) */
} layer_block;

/* One layer and direction's weights as a quantized model file gave them
 * (docs/model-format.md, QTNS). */
typedef struct stored_block {
    const void *weight;             /* W, 4H x K row-major: int8 q or bf16 bits */
    const float *weight_scales;     /* int8: s of W_h's rows, then of W_x's (2 x 4H) */
    const void *projection;         /* W_hr, P x H likewise, with P */
    const float *projection_scales; /* int8: P */
} stored_block;

/*
 * The weights of a model loaded from a quantized file, kept as the file
 * stored them: inference in that precision packs them as they are, so that
 * it gives the bits of the model that was saved. The model's float32
 * parameters hold the same values dequantized, for everything else. They
 * are the model's weights only while its generation is the one recorded
 * (lstm__model_stored()).
 */
typedef struct stored_weights {
    lstm_precision precision; /* LSTM_PRECISION_FP32: none stored */
    uint64_t generation;
    stored_block *blocks; /* [L D] */
    void *memory;         /* the values and scales of every block */
} stored_weights;

struct lstm_model {
    lstm_config config; /* as given, with num_layers >= 1 */
    size_t input_size;  /* I */
    size_t hidden_size; /* H */
    size_t num_layers;  /* L */
    size_t directions;  /* D, 1 or 2 */
    size_t proj_size;   /* P, 0 without a projection */
    size_t state_size;  /* R: P with a projection, else H */
    bool peephole;      /* LSTM_PEEPHOLE */
    size_t param_count;
    layer_block *blocks; /* [L * D], layer-major */
    float *params;       /* every block's W, b, W_hr; 64-byte aligned */
    float *grads;        /* the same layout */
    uint64_t
        generation;    /* new whenever the library may have changed params (lstm__model_touch()) */
    uint64_t identity; /* this model's alone, for its whole life, never reused: backward
                          knows its forward's model by it, as an allocator may give a dead
                          model's address to a new one */
    stored_weights stored; /* from a quantized file, or none */
};

/* Block n's weights as stored in the precision, while they are the
 * model's current weights; else NULL (pack from the float32 parameters). */
static inline const stored_block *model_stored(const lstm_model *model, lstm_precision precision,
                                               size_t n)
{
    const stored_weights *stored = &model->stored;
    if (stored->precision == LSTM_PRECISION_FP32 || stored->precision != precision ||
        stored->generation != model->generation)
        return NULL;
    return &stored->blocks[n];
}

static inline const layer_block *model_block(const lstm_model *model, size_t layer,
                                             size_t direction)
{
    return &model->blocks[layer * model->directions + direction];
}

/* The widest stacked row [h_{t-1}, x_t] of any layer. */
static inline size_t model_max_stacked(const lstm_model *model)
{
    size_t upper = model->state_size + model->directions * model->state_size;
    size_t first = model->state_size + model->input_size;
    return model->num_layers > 1 && upper > first ? upper : first;
}

/*
 * Checks a configuration and lays out its tensors without allocating any
 * parameters: shape gets everything of a model but params and grads, and
 * owns shape->blocks (lstm__mem_free() it). Model files use it to check a file's
 * sizes against its length before they create anything.
 */
lstm_status lstm__model_plan(const lstm_config *config, lstm_model *shape);

#endif /* LSTM_MODEL_INTERNAL_H */
