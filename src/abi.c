/* Versioned structs that cross the ABI. */
#include <string.h>

#include "abi.h"
#include "error.h"
#include "lstm/version.h"

/* No struct of the API will grow this large: a struct_size above it is
 * garbage, not a newer caller, and must not make the library read or write
 * past the caller's struct. */
#define MAX_STRUCT_SIZE ((size_t)64 << 10)

static size_t min_size_of(size_t a, size_t b)
{
    return a < b ? a : b;
}

lstm_status lstm__abi_struct_write(void *caller, size_t struct_size, const void *known,
                                   size_t known_size, size_t min_size, const char *name)
{
    if (struct_size < min_size || struct_size > MAX_STRUCT_SIZE)
        return lstm__fail(LSTM_E_ARG,
                          "%s struct_size is %zu; it must be sizeof the struct, at "
                          "least %zu and at most %zu bytes",
                          name, struct_size, min_size, MAX_STRUCT_SIZE);
    memset(caller, 0, struct_size);
    memcpy(caller, known, min_size_of(struct_size, known_size));
    memcpy(caller, &struct_size, sizeof struct_size);
    return LSTM_OK;
}

lstm_status lstm__abi_struct_read(const void *caller, void *known, size_t known_size,
                                  size_t min_size, const char *name)
{
    size_t struct_size;
    memcpy(&struct_size, caller, sizeof struct_size);
    if (struct_size < min_size || struct_size > MAX_STRUCT_SIZE)
        return lstm__fail(LSTM_E_ARG, "%s->struct_size is %zu; set it with its _init() function",
                          name, struct_size);
    memset(known, 0, known_size);
    memcpy(known, caller, min_size_of(struct_size, known_size));
    /* The copy is this version's struct, whatever the caller's size: passed
     * on to another call, it must be read as this version's. */
    memcpy(known, &known_size, sizeof known_size);
    const unsigned char *bytes = caller;
    for (size_t k = known_size; k < struct_size; k++)
        if (bytes[k] != 0)
            return lstm__fail(LSTM_E_ARG,
                              "%s sets a field at byte %zu that liblstm %s does not know", name, k,
                              LSTM_VERSION_STRING);
    return LSTM_OK;
}
