/*
 * The workspace's private state. One arena holds every buffer of a call;
 * workspace_prepare() carves it into the regions below for a given mode and
 * shape, growing it first if needed. Nothing else allocates.
 */
#ifndef LSTM_WORKSPACE_H
#define LSTM_WORKSPACE_H

#include <stddef.h>

#include "lstm/model.h"

struct lstm_workspace {
    size_t input_size;  /* I of the models this workspace serves */
    size_t hidden_size; /* H */
    void *arena;
    size_t capacity; /* bytes of arena */

    /* Regions of the current call, in floats (K = H + I, G = 4H).
     *                inference        training                     */
    float *stacked;  /* [T][B][K]     [T][B][K]   S_t = [h_{t-1}, x_t] */
    float *gates;    /* [B][G]        [T][B][G]   activated i, f, g, o;
                                                  backward overwrites with dA */
    float *cells;    /* [B][H]        [T+1][B][H] c_t, c_0 first */
    float *h_last;   /* [B][H]        [B][H]      h_{T-1}, whose S has no slot */
    float *dh;       /*               [B][H]      dh_T */
    float *dc;       /*               [B][H]      running dc_t */
    float *dstacked; /*               [B][K]      [dh_{t-1}, dx_t] */

    /* Training state: set by a training forward, consumed by backward. */
    const lstm_model *trained_model; /* NULL when none is held */
    size_t seq_len;
    size_t batch;
};

/*
 * Checks T and B, sizes the regions for mode, grows the arena if it is too
 * small (keeping the old one on failure), and sets the region pointers.
 * Drops any training state.
 */
lstm_status workspace_prepare(lstm_workspace *workspace, lstm_mode mode, size_t seq_len,
                              size_t batch);

#endif /* LSTM_WORKSPACE_H */
