/* A network's metadata: key -> value entries kept sorted by key. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "network_internal.h"

void lstm__meta_clear(meta_table *table)
{
    for (size_t k = 0; k < table->count; k++) {
        lstm__mem_free(table->entries[k].key);
        lstm__mem_free(table->entries[k].value);
    }
    lstm__mem_free(table->entries);
    memset(table, 0, sizeof *table);
}
