/* The embedding layer: token ids to rows of a weight matrix, and back. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "check.h"
#include "embedding_internal.h"
#include "error.h"
#include "random.h"

/* The first published lstm_embedding_config ends after padding_idx; no
 * caller's struct is ever smaller than that. */
#define CONFIG_V1_SIZE (offsetof(lstm_embedding_config, padding_idx) + sizeof(int64_t))

struct lstm_embedding {
    lstm_embedding_config config; /* padding_idx made non-negative */
    size_t rows;                  /* V */
    size_t dim;                   /* E */
    size_t param_count;           /* V E */
    int64_t padding;              /* the padding row, or -1 for none */
    float *params;                /* W [V][E] */
    float *grads;                 /* same layout */
    /* The rows backward touched since the gradients were last zeroed
     * (lstm_embedding_touched_rows()): a bit per row, and the rows in the
     * order they were first touched. Both NULL until the first backward,
     * so that a layer only used for lookups never pays for them; the list
     * grows (doubling, at most V rows) only when a backward may touch more
     * rows than it holds, so a training loop's steady state allocates
     * nothing. */
    uint64_t *touched_bits;  /* [ceil(V / 64)] */
    uint32_t *touched;       /* [touched_capacity], the first touched_count used */
    size_t touched_count;    /* rows in the set */
    size_t touched_capacity; /* rows the list holds, <= V */
};

LSTM_API lstm_status lstm_embedding_config_init(lstm_embedding_config *config, size_t struct_size)
{
    if (config == NULL)
        return lstm__fail(LSTM_E_NULL, "config is NULL");
    static const lstm_embedding_config defaults = LSTM_EMBEDDING_CONFIG_INIT;
    return lstm__abi_struct_write(config, struct_size, &defaults, sizeof defaults, CONFIG_V1_SIZE,
                                  "config");
}

/* Checks a configuration; on success *padding is the padding row made
 * non-negative (PyTorch's V + padding_idx), or -1 for none. */
static lstm_status check_config(const lstm_embedding_config *c, int64_t *padding)
{
    if (c->num_embeddings == 0 || c->embedding_dim == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1",
                          c->num_embeddings == 0 ? "num_embeddings" : "embedding_dim");
    if (c->num_embeddings > LSTM_MAX_VOCAB)
        return lstm__fail(LSTM_E_SIZE, "num_embeddings is %zu; the limit is %zu", c->num_embeddings,
                          LSTM_MAX_VOCAB);
    if (c->embedding_dim > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "embedding_dim is %zu; the limit is %zu", c->embedding_dim,
                          LSTM_MAX_SIZE);
    if ((c->flags & ~LSTM_EMBEDDING_PADDING) != 0)
        return lstm__fail(LSTM_E_ARG, "flags 0x%x holds unknown bits", (unsigned)c->flags);
    /* V <= 2^31, so V and -V are exact in int64_t. */
    const int64_t V = (int64_t)c->num_embeddings;
    if (!(c->flags & LSTM_EMBEDDING_PADDING)) {
        if (c->padding_idx != 0)
            return lstm__fail(LSTM_E_ARG,
                              "padding_idx is %" PRId64 " without LSTM_EMBEDDING_PADDING in flags; "
                              "set the flag, or leave padding_idx at 0 for no padding row",
                              c->padding_idx);
        *padding = -1;
        return LSTM_OK;
    }
    if (c->padding_idx < -V || c->padding_idx >= V)
        return lstm__fail(LSTM_E_ARG,
                          "padding_idx is %" PRId64 "; it must be in [-%zu, %zu) "
                          "(num_embeddings %zu)",
                          c->padding_idx, c->num_embeddings, c->num_embeddings, c->num_embeddings);
    *padding = c->padding_idx < 0 ? V + c->padding_idx : c->padding_idx;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_create(const lstm_embedding_config *config,
                                           lstm_embedding **out)
{
    if (config == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", config == NULL ? "config" : "out");
    lstm_embedding_config known;
    int64_t padding = -1;
    lstm_status status;
    if ((status = lstm__abi_struct_read(config, &known, sizeof known, CONFIG_V1_SIZE, "config")) !=
            LSTM_OK ||
        (status = check_config(&known, &padding)) != LSTM_OK)
        return status;
    size_t count, bytes;
    if (!size_mul(known.num_embeddings, known.embedding_dim, &count) ||
        !size_mul(count, sizeof(float), &bytes) || lstm__align_up(bytes) == 0)
        return lstm__fail(LSTM_E_OVERFLOW,
                          "num_embeddings %zu x embedding_dim %zu give too many parameters",
                          known.num_embeddings, known.embedding_dim);

    lstm_embedding *embedding = lstm__mem_alloc(sizeof *embedding);
    float *params = lstm__mem_alloc(bytes);
    float *grads = lstm__mem_alloc(bytes);
    if (embedding == NULL || params == NULL || grads == NULL) {
        lstm__mem_free(embedding);
        lstm__mem_free(params);
        lstm__mem_free(grads);
        return lstm__fail(LSTM_E_NOMEM, "allocating an embedding of %zu parameters (2 x %zu bytes)",
                          count, bytes);
    }
    memset(params, 0, bytes);
    memset(grads, 0, bytes);
    known.padding_idx = padding < 0 ? 0 : padding;
    embedding->config = known;
    embedding->rows = known.num_embeddings;
    embedding->dim = known.embedding_dim;
    embedding->param_count = count;
    embedding->padding = padding;
    embedding->params = params;
    embedding->grads = grads;
    embedding->touched_bits = NULL; /* allocated by the first backward */
    embedding->touched = NULL;
    embedding->touched_count = 0;
    embedding->touched_capacity = 0;
    *out = embedding;
    return LSTM_OK;
}

LSTM_API void lstm_embedding_destroy(lstm_embedding *embedding)
{
    if (embedding == NULL)
        return;
    lstm__mem_free(embedding->params);
    lstm__mem_free(embedding->grads);
    lstm__mem_free(embedding->touched_bits);
    lstm__mem_free(embedding->touched);
    lstm__mem_free(embedding);
}

LSTM_API lstm_status lstm_embedding_get_config(const lstm_embedding *embedding,
                                               lstm_embedding_config *config)
{
    if (embedding == NULL || config == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", embedding == NULL ? "embedding" : "config");
    return lstm__abi_struct_write(config, config->struct_size, &embedding->config,
                                  sizeof embedding->config, CONFIG_V1_SIZE, "config");
}

LSTM_API size_t lstm_embedding_param_count(const lstm_embedding *embedding)
{
    return embedding == NULL ? 0 : embedding->param_count;
}

/* A double in [0, 1) from a word's top 53 bits, which double holds exactly. */
static double unit_double(uint64_t word)
{
    return (double)(word >> 11) * 0x1p-53;
}

LSTM_API lstm_status lstm_embedding_init(lstm_embedding *embedding, uint64_t seed)
{
    if (embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "embedding is NULL");
    /* nn.Embedding: W ~ N(0, 1), then the padding row zeroed. Box-Muller on
     * pairs of the stream of lstm_model_init() (random.h):
     *     r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2),
     * with u1 = 1 - a in (0, 1], so the logarithm is finite. */
    const double two_pi = 6.283185307179586476925286766559;
    float *W = embedding->params;
    const size_t count = embedding->param_count;
    uint64_t state = seed;
    for (size_t k = 0; k < count; k += 2) {
        const double u1 = 1.0 - unit_double(random_next(&state));
        const double u2 = unit_double(random_next(&state));
        const double r = sqrt(-2.0 * log(u1));
        W[k] = (float)(r * cos(two_pi * u2));
        if (k + 1 < count)
            W[k + 1] = (float)(r * sin(two_pi * u2));
    }
    if (embedding->padding >= 0)
        memset(W + (size_t)embedding->padding * embedding->dim, 0, embedding->dim * sizeof(float));
    return LSTM_OK;
}

static lstm_status buffer_view(const lstm_embedding *embedding, float *buffer, float **data,
                               size_t *count)
{
    if (data == NULL)
        return lstm__fail(LSTM_E_NULL, "data is NULL");
    *data = buffer;
    if (count != NULL)
        *count = embedding->param_count;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_params(lstm_embedding *embedding, float **data, size_t *count)
{
    if (embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "embedding is NULL");
    return buffer_view(embedding, embedding->params, data, count);
}

LSTM_API lstm_status lstm_embedding_grads(lstm_embedding *embedding, float **data, size_t *count)
{
    if (embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "embedding is NULL");
    return buffer_view(embedding, embedding->grads, data, count);
}

/* Empties the touched set: O(rows in it), the bits cleared one by one. */
static void clear_touched(lstm_embedding *embedding)
{
    for (size_t n = 0; n < embedding->touched_count; n++)
        embedding->touched_bits[embedding->touched[n] / 64] &=
            ~((uint64_t)1 << (embedding->touched[n] % 64));
    embedding->touched_count = 0;
}

static bool is_touched(const lstm_embedding *embedding, size_t row)
{
    return (embedding->touched_bits[row / 64] >> (row % 64)) & 1u;
}

/*
 * The rows a backward of ids may add to the touched set and are not in it
 * yet: an upper bound (a new row named twice counts twice), count when the
 * set has no bitmap yet.
 */
static size_t rows_to_add(const lstm_embedding *embedding, size_t count, const int64_t *ids)
{
    if (embedding->touched_bits == NULL)
        return count;
    size_t added = 0;
    for (size_t k = 0; k < count; k++)
        if (ids[k] != embedding->padding && !is_touched(embedding, (size_t)ids[k]))
            added++;
    return added;
}

/*
 * Makes room in the touched set for the rows a backward of ids may add,
 * before anything is written: on the first backward the bitmap (V bits) and
 * the list; afterwards the list only, and only when the ids name more rows
 * not yet in the set than it has room for. Everything is allocated before
 * anything is kept: LSTM_E_NOMEM leaves the layer as it was.
 */
lstm_status lstm__embedding_reserve_touched(lstm_embedding *embedding, size_t count,
                                            const int64_t *ids)
{
    const size_t V = embedding->rows;
    const size_t room = embedding->touched_capacity - embedding->touched_count;
    if (embedding->touched_bits != NULL && (count <= room || embedding->touched_capacity == V))
        return LSTM_OK;
    const size_t added = rows_to_add(embedding, count, ids);
    if (embedding->touched_bits != NULL && added <= room)
        return LSTM_OK;
    /* V <= 2^31 and touched_count + added <= V + count: no product or sum overflows */
    const size_t needed = embedding->touched_count + added;
    size_t capacity = 2 * embedding->touched_capacity;
    if (capacity < needed)
        capacity = needed;
    if (capacity > V)
        capacity = V;
    const size_t bits_bytes = (V + 63) / 64 * sizeof(uint64_t);
    uint64_t *bits = embedding->touched_bits == NULL ? lstm__mem_alloc(bits_bytes) : NULL;
    uint32_t *list = capacity > embedding->touched_capacity
                         ? lstm__mem_alloc(capacity * sizeof(uint32_t))
                         : NULL;
    const bool bits_failed = embedding->touched_bits == NULL && bits == NULL;
    const bool list_failed = capacity > embedding->touched_capacity && list == NULL;
    if (bits_failed || list_failed) {
        lstm__mem_free(bits);
        lstm__mem_free(list);
        return lstm__fail(LSTM_E_NOMEM, "allocating the touched-rows set of %zu rows (%s)", V,
                          bits_failed ? "its bitmap" : "its list");
    }
    if (bits != NULL) {
        memset(bits, 0, bits_bytes);
        embedding->touched_bits = bits;
    }
    if (list != NULL) {
        if (embedding->touched_count != 0)
            memcpy(list, embedding->touched, embedding->touched_count * sizeof(uint32_t));
        lstm__mem_free(embedding->touched);
        embedding->touched = list;
        embedding->touched_capacity = capacity;
    }
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_zero_grads(lstm_embedding *embedding)
{
    if (embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "embedding is NULL");
    memset(embedding->grads, 0, embedding->param_count * sizeof(float));
    clear_touched(embedding);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_zero_touched_grads(lstm_embedding *embedding)
{
    if (embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "embedding is NULL");
    const size_t E = embedding->dim;
    for (size_t n = 0; n < embedding->touched_count; n++)
        memset(embedding->grads + (size_t)embedding->touched[n] * E, 0, E * sizeof(float));
    clear_touched(embedding);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_touched_rows(const lstm_embedding *embedding,
                                                 const uint32_t **rows, size_t *count)
{
    if (embedding == NULL || rows == NULL || count == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          embedding == NULL ? "embedding"
                          : rows == NULL    ? "rows"
                                            : "count");
    *rows = embedding->touched;
    *count = embedding->touched_count;
    return LSTM_OK;
}

/* The checks forward and backward share, all before anything is written:
 * NULL pointers, count and its products, then every id. */
static lstm_status check_lookup(const lstm_embedding *embedding, size_t count, const int64_t *ids,
                                const void *rows, const char *rows_name)
{
    if (embedding == NULL || ids == NULL || rows == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          embedding == NULL ? "embedding"
                          : ids == NULL     ? "ids"
                                            : rows_name);
    if (count == 0)
        return lstm__fail(LSTM_E_SIZE, "count is 0; it must be at least 1");
    size_t bytes;
    if (!size_mul(count, sizeof(int64_t), &bytes) || !size_mul(count, embedding->dim, &bytes) ||
        !size_mul(bytes, sizeof(float), &bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "count %zu x embedding_dim %zu overflows size_t", count,
                          embedding->dim);
    /* V <= 2^31: exact in int64_t. */
    const int64_t V = (int64_t)embedding->rows;
    for (size_t k = 0; k < count; k++)
        if (ids[k] < 0 || ids[k] >= V)
            return lstm__fail(LSTM_E_ARG, "ids[%zu] is %" PRId64 "; it must be in [0, %zu)", k,
                              ids[k], embedding->rows);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_forward(const lstm_embedding *embedding, size_t count,
                                            const int64_t *ids, float *out)
{
    lstm_status status = check_lookup(embedding, count, ids, out, "out");
    if (status != LSTM_OK)
        return status;
    const size_t E = embedding->dim;
    /* out[k] = W[ids[k]] */
    for (size_t k = 0; k < count; k++)
        memcpy(out + k * E, embedding->params + (size_t)ids[k] * E, E * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_embedding_backward(lstm_embedding *embedding, size_t count,
                                             const int64_t *ids, const float *dout)
{
    lstm_status status = check_lookup(embedding, count, ids, dout, "dout");
    if (status != LSTM_OK ||
        (status = lstm__check_finite("dout", dout, count * embedding->dim)) != LSTM_OK)
        return status;
    if ((status = lstm__embedding_reserve_touched(embedding, count, ids)) != LSTM_OK)
        return status;
    const size_t E = embedding->dim;
    /* dW[ids[k]] += dout[k], in order of k; never into the padding row */
    for (size_t k = 0; k < count; k++) {
        if (ids[k] == embedding->padding)
            continue;
        const size_t row = (size_t)ids[k];
        if (!is_touched(embedding, row)) {
            embedding->touched_bits[row / 64] |= (uint64_t)1 << (row % 64);
            embedding->touched[embedding->touched_count++] = (uint32_t)row;
        }
        float *dW_row = embedding->grads + row * E;
        const float *dout_row = dout + k * E;
        for (size_t j = 0; j < E; j++)
            dW_row[j] += dout_row[j];
    }
    return LSTM_OK;
}
