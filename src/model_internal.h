/* The model's private state, shared by model.c, forward.c and backward.c. */
#ifndef LSTM_MODEL_INTERNAL_H
#define LSTM_MODEL_INTERNAL_H

#include <stddef.h>

#include "lstm/model.h"

struct lstm_model {
    size_t input_size;   /* I */
    size_t hidden_size;  /* H */
    size_t weight_count; /* 4H (H + I): W comes first in params and grads */
    size_t param_count;  /* weight_count + 4H: then b */
    float *params;       /* [W | b], 64-byte aligned */
    float *grads;        /* [dW | db], same layout */
};

/* The packed weight W (4H x (H+I)) and bias b (4H) inside a buffer. */
static inline const float *model_weight(const lstm_model *model)
{
    return model->params;
}

static inline const float *model_bias(const lstm_model *model)
{
    return model->params + model->weight_count;
}

#endif /* LSTM_MODEL_INTERNAL_H */
