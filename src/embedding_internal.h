/* What a network reaches inside an embedding layer (embedding.c). */
#ifndef LSTM_EMBEDDING_INTERNAL_H
#define LSTM_EMBEDDING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/embedding.h"

/*
 * Makes room in the touched-rows set for a backward of these ids (valid
 * ones: checked by the caller), so that the backward allocates nothing. A
 * network's backward calls it before any gradient moves, since it runs the
 * embedding's backward last: LSTM_E_NOMEM there would leave the head's and
 * the LSTM's gradients added. Idempotent; LSTM_E_NOMEM leaves the layer as
 * it was.
 */
lstm_status lstm__embedding_reserve_touched(lstm_embedding *embedding, size_t count,
                                            const int64_t *ids);

#endif /* LSTM_EMBEDDING_INTERNAL_H */
