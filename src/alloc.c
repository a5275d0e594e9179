/* Aligned, counted allocation, and the fault points of the tests. */
#include <stdatomic.h>
#include <stdlib.h>

#include "alloc.h"

static atomic_size_t alloc_count, live_count;
static atomic_uint_fast64_t points_passed;
static atomic_uint_fast64_t failing_point; /* the point number that fails; 0: none */

bool lstm__fault_point(void)
{
    uint_fast64_t point = atomic_fetch_add_explicit(&points_passed, 1, memory_order_relaxed) + 1;
    return point == atomic_load_explicit(&failing_point, memory_order_relaxed);
}

void lstm__fault_fail_at(uint64_t n)
{
    atomic_store(&failing_point, n == 0 ? 0 : atomic_load(&points_passed) + n);
}

uint64_t lstm__fault_point_count(void)
{
    return atomic_load(&points_passed);
}

size_t lstm__align_up(size_t bytes)
{
    size_t rounded = (bytes + LSTM_ALIGNMENT - 1) & ~(LSTM_ALIGNMENT - 1);
    return rounded < bytes ? 0 : rounded;
}

void *lstm__mem_alloc(size_t bytes)
{
    size_t rounded = lstm__align_up(bytes);
    if (rounded == 0 || lstm__fault_point())
        return NULL;
    /* C11 aligned_alloc wants a size that is a multiple of the alignment. */
    void *block = aligned_alloc(LSTM_ALIGNMENT, rounded);
    if (block != NULL) {
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
    }
    return block;
}

void lstm__mem_free(void *block)
{
    if (block != NULL)
        atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
    free(block);
}

size_t lstm__mem_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

size_t lstm__mem_live_count(void)
{
    return atomic_load_explicit(&live_count, memory_order_relaxed);
}
