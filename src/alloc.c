/* Aligned, counted allocation. */
#include <stdatomic.h>
#include <stdlib.h>

#include "alloc.h"

static atomic_size_t alloc_count;

size_t align_up(size_t bytes)
{
    size_t rounded = (bytes + LSTM_ALIGNMENT - 1) & ~(LSTM_ALIGNMENT - 1);
    return rounded < bytes ? 0 : rounded;
}

void *mem_alloc(size_t bytes)
{
    size_t rounded = align_up(bytes);
    if (rounded == 0)
        return NULL;
    /* C11 aligned_alloc wants a size that is a multiple of the alignment. */
    void *block = aligned_alloc(LSTM_ALIGNMENT, rounded);
    if (block != NULL)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return block;
}

void mem_free(void *block)
{
    free(block);
}

size_t mem_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}
