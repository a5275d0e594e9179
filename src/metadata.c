/*
 * A network's metadata: key -> value entries kept sorted by the keys' bytes
 * (the order of the model file's META sections), each key and value copied
 * with a NUL after it that the lengths do not count.
 */
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

/*
 * Where bytes[0 .. length) stop being UTF-8 without NUL (RFC 3629: no
 * overlong forms, no surrogates U+D800..DFFF, nothing above U+10FFFF, no
 * sequence cut short): the offset of the first NUL or of the first byte of
 * the first bad sequence, or length when there is none.
 */
static size_t utf8_end(const unsigned char *bytes, size_t length)
{
    size_t at = 0;
    while (at < length) {
        const unsigned lead = bytes[at];
        if (lead >= 0x01 && lead <= 0x7F) {
            at++;
            continue;
        }
        /* the sequence's length and the range of its second byte, which
         * rules out overlong forms, surrogates and code points past U+10FFFF */
        size_t count;
        unsigned low = 0x80, high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF)
            count = 2;
        else if (lead >= 0xE0 && lead <= 0xEF) {
            count = 3;
            low = lead == 0xE0 ? 0xA0 : 0x80;
            high = lead == 0xED ? 0x9F : 0xBF;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            count = 4;
            low = lead == 0xF0 ? 0x90 : 0x80;
            high = lead == 0xF4 ? 0x8F : 0xBF;
        } else /* NUL, a continuation byte, C0, C1, F5..FF */
            return at;
        if (length - at < count || bytes[at + 1] < low || bytes[at + 1] > high)
            return at;
        for (size_t k = 2; k < count; k++)
            if ((bytes[at + k] & 0xC0) != 0x80)
                return at;
        at += count;
    }
    return length;
}

/* LSTM_E_ARG naming what (the key, the value) when bytes are not UTF-8
 * without NUL. */
static lstm_status check_text(const char *what, const unsigned char *bytes, size_t length)
{
    const size_t end = utf8_end(bytes, length);
    if (end == length)
        return LSTM_OK;
    if (bytes[end] == 0)
        return lstm__fail(LSTM_E_ARG, "the %s holds a NUL byte at byte %zu", what, end);
    return lstm__fail(LSTM_E_ARG, "the %s is not valid UTF-8 at byte %zu (0x%02X)", what, end,
                      (unsigned)bytes[end]);
}

lstm_status lstm__meta_check(const char *key, size_t key_length, uint32_t kind, const void *value,
                             size_t size)
{
    if (kind != LSTM_META_TEXT && kind != LSTM_META_BYTES)
        return lstm__fail(LSTM_E_ARG, "kind is %u; it must be LSTM_META_TEXT or LSTM_META_BYTES",
                          (unsigned)kind);
    if (key_length == 0 || key_length > LSTM_META_MAX_KEY)
        return lstm__fail(LSTM_E_SIZE, "the key is %zu bytes; it must be 1 .. %zu", key_length,
                          LSTM_META_MAX_KEY);
    lstm_status status = check_text("key", (const unsigned char *)key, key_length);
    if (status != LSTM_OK)
        return status;
    if (size > LSTM_META_MAX_VALUE)
        return lstm__fail(LSTM_E_SIZE, "the value is %zu bytes; the limit is %zu", size,
                          LSTM_META_MAX_VALUE);
    if (value == NULL && size != 0)
        return lstm__fail(LSTM_E_NULL, "value is NULL and size is %zu", size);
    if (kind == LSTM_META_TEXT && size != 0)
        return check_text("text value", value, size);
    return LSTM_OK;
}

/* The keys' order: their bytes as unsigned, a prefix before what extends it. */
static int key_order(const char *a, size_t a_length, const char *b, size_t b_length)
{
    const int order = memcmp(a, b, a_length < b_length ? a_length : b_length);
    if (order != 0)
        return order;
    return a_length < b_length ? -1 : a_length > b_length;
}

/* The index of key in the table, or where it would go; *found says which. */
static size_t find(const meta_table *table, const char *key, size_t key_length, bool *found)
{
    size_t low = 0, high = table->count;
    while (low < high) {
        const size_t middle = low + (high - low) / 2;
        const meta_entry *entry = &table->entries[middle];
        const int order = key_order(entry->key, entry->key_length, key, key_length);
        if (order == 0) {
            *found = true;
            return middle;
        }
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    *found = false;
    return low;
}

/* A copy of bytes[0 .. length) and a NUL, or NULL. */
static void *copy_with_nul(const void *bytes, size_t length)
{
    unsigned char *copy = lstm__mem_alloc(length + 1);
    if (copy != NULL) {
        if (length != 0)
            memcpy(copy, bytes, length);
        copy[length] = 0;
    }
    return copy;
}

/* Room for one more entry: the table reallocated (doubled) when full. */
static lstm_status reserve_one(meta_table *table)
{
    if (table->count < table->capacity)
        return LSTM_OK;
    const size_t capacity = table->capacity == 0 ? 8 : 2 * table->capacity;
    meta_entry *entries = lstm__mem_alloc(capacity * sizeof *entries);
    if (entries == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating a table of %zu metadata entries", capacity);
    if (table->count != 0)
        memcpy(entries, table->entries, table->count * sizeof *entries);
    lstm__mem_free(table->entries);
    table->entries = entries;
    table->capacity = capacity;
    return LSTM_OK;
}

lstm_status lstm__meta_set(meta_table *table, const char *key, size_t key_length, uint32_t kind,
                           const void *value, size_t size)
{
    lstm_status status = lstm__meta_check(key, key_length, kind, value, size);
    if (status != LSTM_OK)
        return status;
    bool found;
    const size_t index = find(table, key, key_length, &found);
    if (!found && table->count >= LSTM_META_MAX_ENTRIES)
        return lstm__fail(LSTM_E_SIZE, "the network holds %zu metadata entries, the most it can",
                          table->count);
    unsigned char *value_copy = copy_with_nul(value, size);
    if (value_copy == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating a metadata value of %zu bytes", size);
    if (found) {
        meta_entry *entry = &table->entries[index];
        lstm__mem_free(entry->value);
        entry->value = value_copy;
        entry->size = size;
        entry->kind = kind;
        return LSTM_OK;
    }
    char *key_copy = copy_with_nul(key, key_length);
    if (key_copy == NULL || (status = reserve_one(table)) != LSTM_OK) {
        lstm__mem_free(key_copy);
        lstm__mem_free(value_copy);
        return key_copy == NULL ? lstm__fail(LSTM_E_NOMEM, "allocating a metadata key") : status;
    }
    meta_entry *entry = &table->entries[index];
    memmove(entry + 1, entry, (table->count - index) * sizeof *entry);
    entry->key = key_copy;
    entry->key_length = key_length;
    entry->kind = kind;
    entry->value = value_copy;
    entry->size = size;
    table->count++;
    return LSTM_OK;
}

/* A caller's key as the table keeps them: its length, LSTM_META_MAX_KEY + 1
 * for a longer one (which no entry has). */
static size_t key_length_of(const char *key)
{
    size_t length = 0;
    while (length <= LSTM_META_MAX_KEY && key[length] != '\0')
        length++;
    return length;
}

LSTM_API lstm_status lstm_network_set_meta(lstm_network *network, const char *key, uint32_t kind,
                                           const void *value, size_t size)
{
    if (network == NULL || key == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "key");
    const size_t key_length = key_length_of(key);
    if (key_length > LSTM_META_MAX_KEY)
        return lstm__fail(LSTM_E_SIZE, "the key is longer than %zu bytes", LSTM_META_MAX_KEY);
    return lstm__meta_set(&network->meta, key, key_length, kind, value, size);
}

/* The entry of key, or NULL with LSTM_E_NOT_FOUND recorded. */
static meta_entry *entry_of(const lstm_network *network, const char *key)
{
    const size_t key_length = key_length_of(key);
    bool found = false;
    size_t index = 0;
    if (key_length <= LSTM_META_MAX_KEY)
        index = find(&network->meta, key, key_length, &found);
    if (found)
        return &network->meta.entries[index];
    lstm__fail(LSTM_E_NOT_FOUND, "no metadata entry has the key \"%.64s\"%s", key,
               key_length > 64 ? "..." : "");
    return NULL;
}

LSTM_API lstm_status lstm_network_get_meta(const lstm_network *network, const char *key,
                                           uint32_t *kind, const void **value, size_t *size)
{
    if (network == NULL || key == NULL || value == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          network == NULL ? "network"
                          : key == NULL   ? "key"
                                          : "value");
    const meta_entry *entry = entry_of(network, key);
    if (entry == NULL)
        return LSTM_E_NOT_FOUND;
    if (kind != NULL)
        *kind = entry->kind;
    *value = entry->value;
    if (size != NULL)
        *size = entry->size;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_network_remove_meta(lstm_network *network, const char *key)
{
    if (network == NULL || key == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "key");
    meta_entry *entry = entry_of(network, key);
    if (entry == NULL)
        return LSTM_E_NOT_FOUND;
    meta_table *table = &network->meta;
    lstm__mem_free(entry->key);
    lstm__mem_free(entry->value);
    const size_t index = (size_t)(entry - table->entries);
    memmove(entry, entry + 1, (table->count - index - 1) * sizeof *entry);
    table->count--;
    return LSTM_OK;
}

LSTM_API size_t lstm_network_meta_count(const lstm_network *network)
{
    return network == NULL ? 0 : network->meta.count;
}

LSTM_API lstm_status lstm_network_meta_key(const lstm_network *network, size_t index,
                                           const char **key)
{
    if (network == NULL || key == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "key");
    if (index >= network->meta.count)
        return lstm__fail(LSTM_E_ARG, "index is %zu; the network has %zu metadata entries", index,
                          network->meta.count);
    *key = network->meta.entries[index].key;
    return LSTM_OK;
}
