/* Error reporting inside the library: every failure goes through lstm__fail(). */
#ifndef LSTM_ERROR_H
#define LSTM_ERROR_H

#include "compiler.h"
#include "lstm/common.h"

/*
 * Records a detail message for lstm_error_message() on the calling thread and
 * returns status, so call sites read `return lstm__fail(LSTM_E_SIZE, "...", ...);`.
 */
lstm_status lstm__fail(lstm_status status, const char *format, ...) LSTM__PRINTF(2, 3);

#endif /* LSTM_ERROR_H */
