/*
 * Versioned structs that cross the ABI (lstm_config, lstm_optim_options):
 * a size_t struct_size comes first and the struct only grows at the end, so
 * a caller built against an older or newer header and this library agree on
 * every field both know.
 */
#ifndef LSTM_ABI_H
#define LSTM_ABI_H

#include <stddef.h>

#include "lstm/common.h"

/*
 * Copies this library's struct (known, known_size bytes) into a caller's of
 * struct_size bytes: the fields both know, zeros past them, and struct_size
 * itself. LSTM_E_ARG when struct_size is below min_size, the first version,
 * or above 64 KiB.
 */
lstm_status lstm__abi_struct_write(void *caller, size_t struct_size, const void *known,
                                   size_t known_size, size_t min_size, const char *name);

/*
 * Reads a caller's struct (its struct_size first) into this library's: the
 * fields both know, zeros for the rest, and known_size as its struct_size. A newer caller's fields
 * that this version does not know must be zero, else LSTM_E_ARG: they ask for something this
 * version cannot do. LSTM_E_ARG too for a struct_size below min_size or above 64 KiB.
 */
lstm_status lstm__abi_struct_read(const void *caller, void *known, size_t known_size,
                                  size_t min_size, const char *name);

#endif /* LSTM_ABI_H */
