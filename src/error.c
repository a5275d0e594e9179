/* Status texts and the per-thread detail message. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

/* Per thread, so concurrent callers never see each other's messages. */
static _Thread_local char last_message[256];

LSTM_API const char *lstm_strerror(lstm_status status)
{
    switch (status) {
    case LSTM_OK: return "success";
    case LSTM_E_NULL: return "a required pointer argument is NULL";
    case LSTM_E_SIZE: return "a size is zero or above its limit";
    case LSTM_E_OVERFLOW: return "sizes are too large: their product overflows";
    case LSTM_E_SHAPE: return "shapes or buffer lengths disagree";
    case LSTM_E_ARG: return "an argument value is invalid";
    case LSTM_E_NONFINITE: return "an input holds NaN or infinity";
    case LSTM_E_NOMEM: return "out of memory";
    case LSTM_E_STATE: return "call out of order";
    case LSTM_E_IO: return "file input or output failed";
    case LSTM_E_FORMAT: return "not a valid model file: truncated, corrupted or of another kind";
    case LSTM_E_UNSUPPORTED: return "the model file needs a feature this version does not have";
    case LSTM_E_NOT_FOUND: return "no such item";
    }
    return "unknown status";
}

LSTM_API const char *lstm_error_message(void)
{
    return last_message;
}

lstm_status lstm__fail(lstm_status status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(last_message, sizeof last_message, format, args);
    va_end(args);
    return status;
}
