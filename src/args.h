/*
 * The argument structs of the sequence calls (lstm_sequences, lstm_inputs,
 * lstm_outputs, lstm_output_grads, lstm_input_grads) and of the network
 * calls (lstm_network_inputs, lstm_network_outputs, lstm_targets). A call first reads the
 * caller's structs, of whatever struct_size its header had, into this
 * version's own (abi.c), so the passes see plain structs whose every field
 * this version knows.
 */
#ifndef LSTM_ARGS_H
#define LSTM_ARGS_H

#include <stdbool.h>

#include "lstm/network.h"
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

/* A network call's arguments, as this version knows them. */
typedef struct network_call {
    lstm_sequences sequences;
    lstm_network_inputs inputs;
    lstm_network_outputs outputs; /* all NULL when the caller gave none */
} network_call;

/* Reads a network forward call's structs as lstm__args_read_sequence_call()
 * does: sequences and inputs required, outputs optional. */
lstm_status lstm__args_read_network_call(const lstm_sequences *sequences,
                                         const lstm_network_inputs *inputs,
                                         const lstm_network_outputs *outputs, network_call *call);

/* Reads a required lstm_sequences alone (lstm_network_loss()), its layout
 * checked as lstm__args_read_sequence_call() checks it. */
lstm_status lstm__args_read_sequences(const lstm_sequences *sequences, lstm_sequences *known);

/* Reads a required lstm_targets. */
lstm_status lstm__args_read_targets(const lstm_targets *targets, lstm_targets *known);

/* Whether x, y, dx and dy of a call are [B][T][...]. */
bool lstm__args_batch_first(const lstm_sequences *sequences, uint32_t config_flags);

#endif /* LSTM_ARGS_H */
