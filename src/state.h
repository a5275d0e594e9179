/* What the calls above the model (network.c) need of a state (state.c). */
#ifndef LSTM_STATE_H
#define LSTM_STATE_H

#include "lstm/model.h"

/* The workspace of the state's inference chunks, owned by the state; NULL
 * for a NULL state. */
lstm_workspace *lstm__state_workspace(lstm_state *state);

#endif /* LSTM_STATE_H */
