/* The network's private state, shared by network.c (the passes), metadata.c
 * (its key -> value entries) and io.c (its model file sections). */
#ifndef LSTM_NETWORK_INTERNAL_H
#define LSTM_NETWORK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lstm/network.h"

/* One metadata entry; key and value each end in a NUL that the lengths
 * do not count. */
typedef struct meta_entry {
    char *key;
    size_t key_length;
    uint32_t kind; /* lstm_meta_kind */
    unsigned char *value;
    size_t size;
} meta_entry;

/* The entries, kept sorted by the keys' bytes (the file's order). */
typedef struct meta_table {
    meta_entry *entries;
    size_t count;
    size_t capacity;
} meta_table;

/*
 * The int8 rows of a network's embedding (a row per vocabulary entry) or
 * head W (a row per output) as a quantized file stored them
 * (docs/model-format.md, EMBQ and HDQ ): q and one scale s per row. A row's
 * stored form is its int8 form while its float32 values are still q s
 * (network_lowp.h), whatever changed the others; bf16 needs no store, as
 * rounding a bf16 value to bf16 gives it back.
 */
typedef struct stored_rows {
    const int8_t *q;     /* [rows][cols], or NULL: none stored */
    const float *scales; /* [rows] */
} stored_rows;

struct lstm_network {
    lstm_network_config config;             /* embedding and lstm point at the copies below */
    lstm_embedding_config embedding_config; /* padding_idx in [0, V) */
    lstm_config lstm_config;
    lstm_embedding *embedding; /* NULL for a features network */
    lstm_model *model;
    lstm_dense *head;        /* NULL without a head */
    size_t output_size;      /* O: head_size with a head, else D R */
    size_t lstm_output_size; /* D R, the head's in_features */
    meta_table meta;
    stored_rows stored_embedding; /* from an int8 file's EMBQ, or none */
    stored_rows stored_head;      /* from an int8 file's HDQ , or none */
    void *stored_memory;          /* the q and scales of both */
};

/* Frees every entry. */
void lstm__meta_clear(meta_table *table);

/* Checks a key and a value as lstm_network_set_meta() does (the key's
 * length given, so that a file's keys, not NUL-terminated, are checked
 * the same way). */
lstm_status lstm__meta_check(const char *key, size_t key_length, uint32_t kind, const void *value,
                             size_t size);

/* Adds or replaces an entry, all or nothing (checked first). */
lstm_status lstm__meta_set(meta_table *table, const char *key, size_t key_length, uint32_t kind,
                           const void *value, size_t size);

#endif /* LSTM_NETWORK_INTERNAL_H */
