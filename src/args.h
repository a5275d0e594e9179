/*
 * The argument structs of the sequence calls (lstm_sequences, lstm_inputs,
 * lstm_outputs, lstm_output_grads, lstm_input_grads). A call first reads the
 * caller's structs, of whatever struct_size its header had, into this
 * version's own (abi.c), so the passes see plain structs whose every field
 * this version knows.
 */
#ifndef LSTM_ARGS_H
#define LSTM_ARGS_H

#include <stdbool.h>

#include "lstm/train.h"

/* A forward call's arguments, as this version knows them. */
typedef struct sequence_call {
    lstm_sequences sequences;
    lstm_inputs inputs;
    lstm_outputs outputs; /* all NULL when the caller gave none */
} sequence_call;

/* Reads a forward call's structs: sequences and inputs are required (their
 * fields are checked by the pass), outputs may be NULL. LSTM_E_ARG for a
 * bad struct_size or an unknown layout. */
lstm_status lstm__args_read_sequence_call(const lstm_sequences *sequences,
                                          const lstm_inputs *inputs, const lstm_outputs *outputs,
                                          sequence_call *call);

/* Reads a backward call's structs; either may be NULL (all zero / none). */
lstm_status lstm__args_read_gradients(const lstm_output_grads *output_grads,
                                      const lstm_input_grads *input_grads, lstm_output_grads *dout,
                                      lstm_input_grads *din);

/* Whether x, y, dx and dy of a call are [B][T][...]. */
bool lstm__args_batch_first(const lstm_sequences *sequences, uint32_t config_flags);

#endif /* LSTM_ARGS_H */
