/* What the library reaches inside a dense layer (head.c). */
#ifndef LSTM_HEAD_INTERNAL_H
#define LSTM_HEAD_INTERNAL_H

#include <stdint.h>

#include "lstm/head.h"

/* The parameters [W (O x I) | b (O)], for the library's own reads, which
 * (unlike lstm_dense_params()'s writable view) change nothing. */
const float *lstm__dense_values(const lstm_dense *dense);

/*
 * A number the layer's parameters have had since they last may have
 * changed, never given before to any layer: new on creation, on
 * lstm_dense_init() and on each lstm_dense_params() (its view may be
 * written), as a model's generation (touch.h). A network's head packed in
 * a reduced precision is kept between calls for one generation
 * (network.c).
 */
uint64_t lstm__dense_generation(const lstm_dense *dense);

#endif /* LSTM_HEAD_INTERNAL_H */
