/* The argument structs of the sequence calls: init functions and reading. */
#include "args.h"

#include <stddef.h>
#include <string.h>

#include "abi.h"
#include "error.h"

/* The size of each struct's first version, the smallest a caller can have:
 * up to the end of its last field then (fields are never moved). The
 * fields are ordered so that no struct ends in padding, which a field added
 * later would fall into. */
#define FIRST_SIZE(type, last_field) (offsetof(type, last_field) + sizeof(((type *)0)->last_field))
#define FIRST_SEQUENCES_SIZE FIRST_SIZE(lstm_sequences, lengths)
#define FIRST_INPUTS_SIZE FIRST_SIZE(lstm_inputs, c0)
#define FIRST_OUTPUTS_SIZE FIRST_SIZE(lstm_outputs, cT)
#define FIRST_OUTPUT_GRADS_SIZE FIRST_SIZE(lstm_output_grads, dcT)
#define FIRST_INPUT_GRADS_SIZE FIRST_SIZE(lstm_input_grads, dc0)
#define FIRST_NETWORK_INPUTS_SIZE FIRST_SIZE(lstm_network_inputs, c0)
#define FIRST_NETWORK_OUTPUTS_SIZE FIRST_SIZE(lstm_network_outputs, cT)
#define FIRST_TARGETS_SIZE FIRST_SIZE(lstm_targets, mask)

static lstm_status init_struct(void *args, size_t struct_size, const void *defaults,
                               size_t known_size, size_t first_size, const char *name)
{
    if (args == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", name);
    return lstm__abi_struct_write(args, struct_size, defaults, known_size, first_size, name);
}

LSTM_API lstm_status lstm_sequences_init(lstm_sequences *args, size_t struct_size)
{
    static const lstm_sequences defaults = LSTM_SEQUENCES_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_SEQUENCES_SIZE,
                       "sequences");
}

LSTM_API lstm_status lstm_inputs_init(lstm_inputs *args, size_t struct_size)
{
    static const lstm_inputs defaults = LSTM_INPUTS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_INPUTS_SIZE, "inputs");
}

LSTM_API lstm_status lstm_outputs_init(lstm_outputs *args, size_t struct_size)
{
    static const lstm_outputs defaults = LSTM_OUTPUTS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_OUTPUTS_SIZE,
                       "outputs");
}

LSTM_API lstm_status lstm_output_grads_init(lstm_output_grads *args, size_t struct_size)
{
    static const lstm_output_grads defaults = LSTM_OUTPUT_GRADS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_OUTPUT_GRADS_SIZE,
                       "output_grads");
}

LSTM_API lstm_status lstm_input_grads_init(lstm_input_grads *args, size_t struct_size)
{
    static const lstm_input_grads defaults = LSTM_INPUT_GRADS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_INPUT_GRADS_SIZE,
                       "input_grads");
}

LSTM_API lstm_status lstm_network_inputs_init(lstm_network_inputs *args, size_t struct_size)
{
    static const lstm_network_inputs defaults = LSTM_NETWORK_INPUTS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_NETWORK_INPUTS_SIZE,
                       "inputs");
}

LSTM_API lstm_status lstm_network_outputs_init(lstm_network_outputs *args, size_t struct_size)
{
    static const lstm_network_outputs defaults = LSTM_NETWORK_OUTPUTS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_NETWORK_OUTPUTS_SIZE,
                       "outputs");
}

LSTM_API lstm_status lstm_targets_init(lstm_targets *args, size_t struct_size)
{
    static const lstm_targets defaults = LSTM_TARGETS_INIT;
    return init_struct(args, struct_size, &defaults, sizeof defaults, FIRST_TARGETS_SIZE,
                       "targets");
}

/* A caller's struct into this version's; a NULL optional struct reads as
 * zeros, which every struct documents as its defaults. */
static lstm_status read_struct(const void *caller, bool required, void *known, size_t known_size,
                               size_t first_size, const char *name)
{
    if (caller == NULL) {
        if (required)
            return lstm__fail(LSTM_E_NULL, "%s is NULL", name);
        memset(known, 0, known_size);
        return LSTM_OK;
    }
    return lstm__abi_struct_read(caller, known, known_size, first_size, name);
}

lstm_status lstm__args_read_sequences(const lstm_sequences *sequences, lstm_sequences *known)
{
    lstm_status status =
        read_struct(sequences, true, known, sizeof *known, FIRST_SEQUENCES_SIZE, "sequences");
    if (status != LSTM_OK)
        return status;
    const uint32_t layout = known->layout;
    if (layout != LSTM_LAYOUT_MODEL && layout != LSTM_LAYOUT_TIME_MAJOR &&
        layout != LSTM_LAYOUT_BATCH_MAJOR)
        return lstm__fail(LSTM_E_ARG,
                          "sequences->layout is %u; it must be LSTM_LAYOUT_MODEL, "
                          "LSTM_LAYOUT_TIME_MAJOR or LSTM_LAYOUT_BATCH_MAJOR",
                          (unsigned)layout);
    return LSTM_OK;
}

lstm_status lstm__args_read_sequence_call(const lstm_sequences *sequences,
                                          const lstm_inputs *inputs, const lstm_outputs *outputs,
                                          sequence_call *call)
{
    lstm_status status;
    if ((status = lstm__args_read_sequences(sequences, &call->sequences)) != LSTM_OK ||
        (status = read_struct(inputs, true, &call->inputs, sizeof call->inputs, FIRST_INPUTS_SIZE,
                              "inputs")) != LSTM_OK)
        return status;
    return read_struct(outputs, false, &call->outputs, sizeof call->outputs, FIRST_OUTPUTS_SIZE,
                       "outputs");
}

lstm_status lstm__args_read_network_call(const lstm_sequences *sequences,
                                         const lstm_network_inputs *inputs,
                                         const lstm_network_outputs *outputs, network_call *call)
{
    lstm_status status;
    if ((status = lstm__args_read_sequences(sequences, &call->sequences)) != LSTM_OK ||
        (status = read_struct(inputs, true, &call->inputs, sizeof call->inputs,
                              FIRST_NETWORK_INPUTS_SIZE, "inputs")) != LSTM_OK)
        return status;
    return read_struct(outputs, false, &call->outputs, sizeof call->outputs,
                       FIRST_NETWORK_OUTPUTS_SIZE, "outputs");
}

lstm_status lstm__args_read_targets(const lstm_targets *targets, lstm_targets *known)
{
    return read_struct(targets, true, known, sizeof *known, FIRST_TARGETS_SIZE, "targets");
}

lstm_status lstm__args_read_gradients(const lstm_output_grads *output_grads,
                                      const lstm_input_grads *input_grads, lstm_output_grads *dout,
                                      lstm_input_grads *din)
{
    lstm_status status = read_struct(output_grads, false, dout, sizeof *dout,
                                     FIRST_OUTPUT_GRADS_SIZE, "output_grads");
    if (status == LSTM_OK)
        status = read_struct(input_grads, false, din, sizeof *din, FIRST_INPUT_GRADS_SIZE,
                             "input_grads");
    return status;
}

bool lstm__args_batch_first(const lstm_sequences *sequences, uint32_t config_flags)
{
    if (sequences->layout == LSTM_LAYOUT_MODEL)
        return (config_flags & LSTM_BATCH_FIRST) != 0;
    return sequences->layout == LSTM_LAYOUT_BATCH_MAJOR;
}
