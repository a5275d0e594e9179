/*
 * Fuzz target for the public API, called as a hostile FFI caller would.
 *
 * An input is a program. Each operation reads an opcode byte, then the bytes
 * its arguments need (a program that runs dry reads zeros). Operations
 * create, use and destroy two models, a workspace, a stream state, a dense
 * layer, an embedding layer, a network (with a workspace of its own) and an
 * optimizer, and call every public function with sizes that are
 * mostly small and sometimes huge (0, the documented limits and one past
 * them, the BLAS index range, values whose products overflow size_t), flags
 * with unknown bits, options that are NaN, infinite, negative or out of
 * range, lengths of 0 or past T, NULL or non-NULL pointers, and NaN or
 * infinity planted in inputs.
 *
 * For every call the harness works out, from the headers' documentation and
 * without asking the library, which rules the arguments break, and checks:
 *   - a call that breaks no rule returns LSTM_OK;
 *   - a call that breaks rules fails with the status of one of them (a few
 *     documented ambiguities are tolerated, each said where it is) and
 *     leaves a new, non-empty lstm_error_message();
 *   - a failed call writes none of its outputs (they keep a canary NaN),
 *     leaves the handles as they were and the out pointer of a create
 *     untouched;
 *   - a successful call writes every output it documents, and the values
 *     hold the invariants each operation lists (bounds, zero padding, y
 *     against hT, a stream against a whole-sequence call, a dense layer
 *     against a double-precision product, an embedding's lookups and
 *     gradients against a gather and a sum of its own, its touched rows
 *     against a list of its own, a lazy step (LSTM_OPTIM_LAZY_ROWS) that
 *     leaves the other rows alone, save/load round trips, ...).
 *
 * Non-NULL buffers always have the documented size. Sizes are capped so that
 * no valid call needs more than a few megabytes: a call whose sizes are
 * valid but above the caps is not made. A call whose sizes break a rule (0,
 * above a limit, an overflowing product) is made with one-float buffers,
 * which the library must refuse before it reads them.
 *
 * Built with -DLSTM_FUZZ_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer
 * target (tests/fuzz/run.sh). Built without, it is a plain program:
 *
 *     fuzz_api FILE|DIR...          run every file (every file of each DIR)
 *                                   once, as the fuzzer would
 *     fuzz_api --make-corpus DIR    write the seed corpus into DIR
 *
 * A check that fails is reported on stderr and abort()s, which libFuzzer
 * records as a crash.
 */
#define _POSIX_C_SOURCE 200809L /* dirent, stat */

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lstm/lstm.h"
#include "lstm/network.h"

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    LAST_STATUS = LSTM_E_NOT_FOUND,
    MAX_OPERATIONS = 64,
    SMALL_SIZE = 12, /* input, hidden and projection sizes, features, classes */
    SMALL_LAYERS = 3,
    SMALL_STEPS = 9, /* T */
    SMALL_BATCH = 5, /* B */
    MAX_ROWS = 64,   /* T B of a call that is made */
    MAX_BINDINGS = 8,
    SCRATCH_BLOCKS = 48
};

/* The caps of a call that is made (beyond them a valid call is skipped). */
#define MAX_PARAMS ((size_t)1 << 14) /* of a model or a dense layer */
#define MAX_FLOATS ((size_t)1 << 17) /* of any buffer */
#define MAX_BYTES ((size_t)32 << 20) /* of a workspace or a state */
/* Inputs are drawn from [-TAME, TAME]; parameters that stay within it keep
 * every forward output finite. */
#define TAME 4.0f
/* A signalling NaN no arithmetic produces: outputs are filled with it first. */
#define CANARY 0x7FA5A5A5u

/* The first published lstm_config ended after hidden_size (src/model.c). */
#define CONFIG_V1_SIZE (offsetof(lstm_config, hidden_size) + sizeof(size_t))
/* The first lstm_embedding_config ends after padding_idx (src/embedding.c). */
#define EMBEDDING_CONFIG_V1_SIZE (offsetof(lstm_embedding_config, padding_idx) + sizeof(int64_t))

#define BIT(status) (1u << (status))

/* ---- statuses ------------------------------------------------------------ */

static const char *status_name(lstm_status status)
{
    static const char *const names[] = {"OK",     "NULL",        "SIZE",     "OVERFLOW", "SHAPE",
                                        "ARG",    "NONFINITE",   "NOMEM",    "STATE",    "IO",
                                        "FORMAT", "UNSUPPORTED", "NOT_FOUND"};
    return (int)status >= LSTM_OK && (int)status <= LAST_STATUS ? names[status] : "?";
}

static const char *set_names(unsigned set, char *text, size_t capacity)
{
    size_t used = 0;
    text[0] = '\0';
    for (int status = 1; status <= LAST_STATUS; status++)
        if (set & BIT(status))
            used += (size_t)snprintf(text + used, used < capacity ? capacity - used : 0, "%s%s",
                                     used ? "|" : "", status_name((lstm_status)status));
    return used ? text : "OK";
}

/* What the arguments of a call deserve: the statuses of the rules they
 * break, and statuses allowed besides (a documented ambiguity, or a case the
 * harness does not model). */
typedef struct verdict {
    unsigned broken;
    unsigned tolerated;
} verdict;

/*
 * The detail message is per thread and a successful call keeps it, so each
 * checked call starts with a known message, which a failure must replace.
 */
static char sentinel_message[256];

static void arm_message(void)
{
    lstm_config config;
    lstm_status status = lstm_config_init(&config, 1);
    CHECK(status == LSTM_E_ARG, "lstm_config_init(1): %s", status_name(status));
    snprintf(sentinel_message, sizeof sentinel_message, "%s", lstm_error_message());
}

/* The plain program prints every checked call with LSTM_FUZZ_TRACE=1. */
static bool trace;

/* Checks a call's status against its verdict; true when it is LSTM_OK. */
static bool check_status(const char *call, lstm_status got, verdict v)
{
    char broken[128], allowed[128];
    if (trace)
        printf("  %-36s %-9s expected %s\n", call, status_name(got),
               set_names(v.broken, broken, sizeof broken));
    CHECK((int)got >= LSTM_OK && (int)got <= LAST_STATUS, "%s returned %d, not an lstm_status",
          call, (int)got);
    if (got == LSTM_OK) {
        CHECK(v.broken == 0, "%s returned OK for arguments that break rules of %s", call,
              set_names(v.broken, broken, sizeof broken));
        return true;
    }
    CHECK(((v.broken | v.tolerated) & BIT(got)) != 0, "%s returned %s; expected %s (tolerated: %s)",
          call, status_name(got), set_names(v.broken, broken, sizeof broken),
          set_names(v.tolerated, allowed, sizeof allowed));
    const char *message = lstm_error_message();
    CHECK(message != NULL && message[0] != '\0', "%s returned %s with an empty message", call,
          status_name(got));
    CHECK(strcmp(message, sentinel_message) != 0, "%s returned %s without a message of its own",
          call, status_name(got));
    CHECK(strcmp(lstm_strerror(got), "unknown status") != 0, "no text for %s", status_name(got));
    return false;
}

/* ---- the program's bytes ------------------------------------------------- */

typedef struct reader {
    const uint8_t *data;
    size_t size, at;
} reader;

static uint8_t take_u8(reader *r)
{
    return r->at < r->size ? r->data[r->at++] : 0;
}

static uint32_t take_u32(reader *r)
{
    uint32_t value = 0;
    for (int k = 0; k < 4; k++)
        value |= (uint32_t)take_u8(r) << (8 * k);
    return value;
}

static uint64_t take_u64(reader *r)
{
    uint64_t low = take_u32(r);
    return low | (uint64_t)take_u32(r) << 32;
}

/* Mostly 0 .. small; one byte value in 16 picks a huge size. */
static size_t take_size(reader *r, size_t small)
{
    static const size_t huge[16] = {
        LSTM_MAX_SIZE,    LSTM_MAX_SIZE + 1,   LSTM_MAX_LAYERS, LSTM_MAX_LAYERS + 1,
        (size_t)INT_MAX,  (size_t)INT_MAX + 1, (size_t)1 << 32, ((size_t)1 << 32) + 1,
        (size_t)1 << 40,  SIZE_MAX / 16 + 1,   SIZE_MAX / 4,    SIZE_MAX / 2,
        SIZE_MAX / 2 + 1, SIZE_MAX - 1,        SIZE_MAX,        65537};
    uint8_t b = take_u8(r);
    return b < 0xF0 ? b % (small + 1) : huge[b - 0xF0];
}

/* Mostly a value in [lo, hi]; one byte value in 16 picks a special one. */
static double take_real(reader *r, double lo, double hi)
{
    static const double special[16] = {NAN,
                                       INFINITY,
                                       -INFINITY,
                                       -0.0,
                                       -1.0,
                                       1.0,
                                       2.0,
                                       0.5,
                                       1e-300,
                                       1e300,
                                       DBL_MAX,
                                       -DBL_MIN,
                                       0x1.fffffffffffffp-1 /* below 1 */,
                                       1.0 + DBL_EPSILON,
                                       1e-8,
                                       -1e-8};
    uint8_t b = take_u8(r);
    return b < 0xF0 ? lo + (hi - lo) * b / 239.0 : special[b - 0xF0];
}

/* -1 (none) most of the time, else which of `count` pointers to make NULL. */
static int take_null(reader *r, int count)
{
    uint8_t b = take_u8(r);
    return b < 0xF0 ? -1 : (b - 0xF0) % count;
}

/* ---- buffers: a per-operation scratch list, canaries, random fills --------- */

typedef struct scratch {
    void *blocks[SCRATCH_BLOCKS];
    size_t count;
} scratch;

static void *scratch_alloc(scratch *sc, size_t bytes)
{
    CHECK(sc->count < SCRATCH_BLOCKS, "too many scratch buffers");
    void *block = malloc(bytes != 0 ? bytes : 1);
    CHECK(block != NULL, "out of memory (%zu bytes)", bytes);
    sc->blocks[sc->count++] = block;
    return block;
}

static void scratch_free(scratch *sc)
{
    for (size_t n = 0; n < sc->count; n++)
        free(sc->blocks[n]);
    sc->count = 0;
}

static float canary_value(void)
{
    uint32_t bits = CANARY;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static bool is_canary(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits == CANARY;
}

/* An output of count floats (a one-float stand-in when count is 0), filled
 * with the canary. */
static float *new_output(scratch *sc, size_t count)
{
    float *out = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof(float));
    for (size_t k = 0; k < (count != 0 ? count : 1); k++)
        out[k] = canary_value();
    return out;
}

static bool all_canary(const float *values, size_t count)
{
    for (size_t k = 0; values != NULL && k < count; k++)
        if (!is_canary(values[k]))
            return false;
    return true;
}

static bool none_canary(const float *values, size_t count)
{
    for (size_t k = 0; values != NULL && k < count; k++)
        if (is_canary(values[k]))
            return false;
    return true;
}

static bool all_finite(const float *values, size_t count)
{
    for (size_t k = 0; values != NULL && k < count; k++)
        if (!isfinite(values[k]))
            return false;
    return true;
}

static float max_abs(const float *values, size_t count)
{
    float largest = 0.0f;
    for (size_t k = 0; k < count; k++) {
        if (!isfinite(values[k]))
            return INFINITY;
        largest = fabsf(values[k]) > largest ? fabsf(values[k]) : largest;
    }
    return largest;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* count values in [-scale, scale], from a stream seeded by one input byte. */
static void fill_values(reader *r, float *values, size_t count, float scale)
{
    uint64_t state = take_u8(r);
    for (size_t k = 0; k < count; k++)
        values[k] = scale * (2.0f * (float)(splitmix64(&state) >> 40) * 0x1p-24f - 1.0f);
}

/* One time in 16, a NaN or an infinity at a chosen index: returns that
 * index, or SIZE_MAX. */
static size_t poison(reader *r, float *values, size_t count)
{
    static const float bad[3] = {NAN, INFINITY, -INFINITY};
    uint8_t b = take_u8(r);
    if (count == 0 || b < 0xF0)
        return SIZE_MAX;
    size_t at = take_u32(r) % count;
    values[at] = bad[b % 3];
    return at;
}

/* An input of count floats, NULL one time in 8 when NULL is allowed. */
typedef struct input {
    float *data;     /* NULL or count values */
    size_t poisoned; /* the index of a planted NaN or infinity, or SIZE_MAX */
} input;

static input take_input(reader *r, scratch *sc, size_t count, bool nullable)
{
    input in = {NULL, SIZE_MAX};
    if (nullable && take_u8(r) % 8 == 0)
        return in;
    in.data = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof(float));
    fill_values(r, in.data, count, TAME);
    in.poisoned = poison(r, in.data, count);
    return in;
}

/* An output of count floats, NULL one time in 4. */
static float *take_output(reader *r, scratch *sc, size_t count)
{
    return take_u8(r) % 4 == 0 ? NULL : new_output(sc, count);
}

/* ---- products with overflow ---------------------------------------------- */

static bool mul3(size_t a, size_t b, size_t c, size_t *product)
{
    size_t ab;
    return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, product);
}

/* count floats fit the caps (and count * 4 bytes does not overflow). */
static bool floats_fit(size_t count)
{
    return count <= MAX_FLOATS;
}

/* A byte count of count floats overflows size_t: no caller can own that. */
static bool floats_absurd(size_t count)
{
    return count > SIZE_MAX / sizeof(float);
}

/* ---- configurations ---------------------------------------------------------- */

#define KNOWN_FLAGS (LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE)

/* A caller's lstm_config, possibly from a newer library with more fields. */
typedef struct caller_config {
    lstm_config config;
    unsigned char newer[16];
} caller_config;

typedef struct config_case {
    caller_config caller;
    lstm_config effective; /* what the library must read: the first struct_size bytes */
    verdict v;             /* of lstm_model_create() */
    size_t param_count;    /* when v.broken is 0 */
} config_case;

static size_t layers_of(const lstm_config *c)
{
    return c->num_layers == 0 ? 1 : c->num_layers;
}

static size_t directions_of(const lstm_config *c)
{
    return (c->flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
}

static size_t state_size_of(const lstm_config *c)
{
    return c->proj_size != 0 ? c->proj_size : c->hidden_size;
}

/*
 * The parameter count of the layout lstm/model.h documents (W, b, W_hr, p
 * per layer and direction), false when it overflows size_t, its byte count
 * overflows, or a dimension leaves the BLAS index range.
 */
static bool layout_count(const lstm_config *c, size_t *count)
{
    const size_t H = c->hidden_size, P = c->proj_size, R = state_size_of(c);
    const size_t D = directions_of(c), G = 4 * H;
    size_t total = 0;
    for (size_t layer = 0; layer < layers_of(c); layer++) {
        const size_t layer_input = layer == 0 ? c->input_size : D * R;
        size_t K, weights, block;
        if (__builtin_add_overflow(R, layer_input, &K) || K > (size_t)INT_MAX ||
            G > (size_t)INT_MAX || __builtin_mul_overflow(G, K, &weights) ||
            __builtin_add_overflow(weights, G + P * H + ((c->flags & LSTM_PEEPHOLE) ? 3 * H : 0),
                                   &block))
            return false;
        for (size_t d = 0; d < D; d++)
            if (__builtin_add_overflow(total, block, &total))
                return false;
    }
    *count = total;
    return total <= (SIZE_MAX - 63) / sizeof(float);
}

/* The verdict of lstm_model_create() for a configuration the library reads as c. */
static verdict config_verdict(const lstm_config *c, size_t *param_count)
{
    verdict v = {0, 0};
    if (c->input_size == 0 || c->input_size > LSTM_MAX_SIZE || c->hidden_size == 0 ||
        c->hidden_size > LSTM_MAX_SIZE || c->num_layers > LSTM_MAX_LAYERS ||
        (c->proj_size != 0 && c->proj_size >= c->hidden_size))
        v.broken |= BIT(LSTM_E_SIZE);
    if ((c->flags & ~KNOWN_FLAGS) != 0 || !(c->dropout >= 0.0 && c->dropout < 1.0))
        v.broken |= BIT(LSTM_E_ARG);
    if (v.broken == 0 && !layout_count(c, param_count))
        v.broken |= BIT(LSTM_E_OVERFLOW);
    return v;
}

/* The struct_size of a caller's versioned struct: mostly its own size,
 * sometimes a newer caller's (zero or non-zero extra bytes) or an older or
 * bogus one. */
static size_t take_struct_size(reader *r, size_t own, unsigned char *newer, size_t newer_size)
{
    static const size_t older[8] = {0, 2, 8, 23, 24, 32, 36, 40};
    uint8_t b = take_u8(r);
    switch (b % 16) {
    case 12: return own + 8; /* newer, extra bytes zero */
    case 13: newer[(b >> 4) % newer_size] = (unsigned char)(1 + (b >> 4)); return own + newer_size;
    case 14: {
        size_t size = older[(b >> 4) % 8];
        return size < own ? size : own;
    }
    default: return own;
    }
}

static bool newer_bytes_zero(const unsigned char *caller, size_t own, size_t struct_size)
{
    for (size_t k = own; k < struct_size; k++)
        if (caller[k] != 0)
            return false;
    return true;
}

static void take_config(reader *r, config_case *cc)
{
    memset(cc, 0, sizeof *cc);
    lstm_config *c = &cc->caller.config;
    CHECK(lstm_config_init(c, sizeof *c) == LSTM_OK, "lstm_config_init");
    c->input_size = take_size(r, SMALL_SIZE);
    c->hidden_size = take_size(r, SMALL_SIZE);
    c->num_layers = take_size(r, SMALL_LAYERS);
    uint8_t b = take_u8(r);
    c->proj_size = b < 0x80 ? 0 : take_size(r, SMALL_SIZE);
    b = take_u8(r);
    c->flags = b < 0xF0 ? (uint32_t)(b & KNOWN_FLAGS) : take_u32(r);
    b = take_u8(r);
    c->dropout = b < 0xC0 ? 0.0 : take_real(r, 0.0, 0.9);
    c->struct_size = take_struct_size(r, sizeof *c, cc->caller.newer, sizeof cc->caller.newer);

    /* The library reads the first struct_size bytes; fields past them are 0. */
    const size_t struct_size = c->struct_size;
    memset(&cc->effective, 0, sizeof cc->effective);
    memcpy(&cc->effective, c, struct_size < sizeof *c ? struct_size : sizeof *c);
    if (struct_size < CONFIG_V1_SIZE ||
        !newer_bytes_zero((const unsigned char *)&cc->caller, sizeof *c, struct_size)) {
        cc->v.broken = BIT(LSTM_E_ARG);
        return;
    }
    cc->v = config_verdict(&cc->effective, &cc->param_count);
    cc->effective.struct_size = sizeof cc->effective;
    cc->effective.num_layers = layers_of(&cc->effective);
}

/* The fields a workspace is shaped by (src/workspace.c same_shape). */
static bool same_sizes(const lstm_config *a, const lstm_config *b)
{
    return a->input_size == b->input_size && a->hidden_size == b->hidden_size &&
           layers_of(a) == layers_of(b) && a->proj_size == b->proj_size &&
           directions_of(a) == directions_of(b);
}

static bool same_config(const lstm_config *a, const lstm_config *b)
{
    return same_sizes(a, b) && a->flags == b->flags &&
           memcmp(&a->dropout, &b->dropout, sizeof a->dropout) == 0;
}

/* ---- the session: the handles an input has made ----------------------------- */

typedef struct model_slot {
    lstm_model *model;
    lstm_config config; /* as created, num_layers 0 made 1 */
    size_t param_count;
} model_slot;

/* A buffer pair bound to the optimizer, and who owns it: model slot 0 or 1,
 * the dense layer or the embedding layer. */
enum { OWNER_DENSE = 2, OWNER_EMBEDDING = 3 };

typedef struct binding {
    float *params, *grads;
    size_t count;
    int owner;
    bool embedding; /* by lstm_optim_add_embedding(): zeroing empties the touched set */
    bool lazy;      /* ... with LSTM_OPTIM_LAZY_ROWS: a step moves the touched rows only */
} binding;

/* What the workspace holds for a backward pass. */
typedef enum train_state {
    TRAIN_NONE,  /* nothing: backward must return LSTM_E_STATE */
    TRAIN_HELD,  /* the training forward described below */
    TRAIN_MAYBE, /* that forward, or nothing (a failed call whose effect on the
                    training state lstm/model.h does not pin down) */
    TRAIN_STALE  /* that forward, on a model since destroyed: not used */
} train_state;

typedef struct training {
    train_state state;
    const lstm_model *model;
    lstm_config config;
    size_t T, B;
    bool batch_first; /* the forward's layout, which backward's dy and dx follow */
    bool has_lengths;
    size_t lengths[MAX_ROWS];
} training;

/* A network, its workspace, and the training forward that workspace holds. */
typedef struct network_slot {
    lstm_network *network;
    lstm_workspace *workspace;
    bool tokens;
    size_t V, I, O; /* O: the output's width (head_size, or D R without a head) */
    uint32_t head, loss;
    lstm_config lstm;         /* as created */
    lstm_precision precision; /* of its workspace */
    bool trained;             /* the workspace holds the network's training forward: */
    size_t T, B;              /* its shape */
    bool batch_first;
    bool has_lengths;
    size_t lengths[MAX_ROWS];
} network_slot;

typedef struct session {
    model_slot slots[2];
    lstm_workspace *workspace;
    lstm_config workspace_config;
    training train;
    lstm_state *state;
    lstm_config state_config;
    size_t state_batch;
    /* each inference context's precision and kept packing; `unnoticed`: a
     * step of an optimizer bound by lstm_optim_add_buffer() may have changed
     * a model's parameters since the packing was kept, which lstm/model.h
     * says goes unnoticed (then the packing may be stale) */
    lstm_precision workspace_precision, state_precision;
    bool workspace_keeps, workspace_unnoticed, state_keeps, state_unnoticed;
    lstm_dense *dense;
    size_t dense_in, dense_out;
    lstm_embedding *embedding;
    size_t vocab, embedding_dim; /* V and E */
    int64_t padding_row;         /* in [0, V), or -1 for none */
    /* the rows backward touched since the gradients were zeroed, in the
     * order first touched (lstm_embedding_touched_rows()), kept here */
    uint32_t touched[MAX_PARAMS];
    bool in_touched[MAX_PARAMS];
    size_t touched_count;
    lstm_optim *optim;
    uint32_t optim_flags; /* its options.flags */
    binding bindings[MAX_BINDINGS];
    size_t binding_count;
    network_slot net;
} session;

static void drop_optim(session *s)
{
    lstm_optim_destroy(s->optim);
    s->optim = NULL;
    s->binding_count = 0;
}

static bool optim_binds(const session *s, int owner)
{
    for (size_t n = 0; n < s->binding_count; n++)
        if (s->bindings[n].owner == owner)
            return true;
    return false;
}

/* A model's optimizer goes with it; a training state on it becomes stale. */
static void drop_model(session *s, int slot)
{
    lstm_model *model = s->slots[slot].model;
    if (model == NULL)
        return;
    if (optim_binds(s, slot))
        drop_optim(s);
    if (s->train.state != TRAIN_NONE && s->train.model == model)
        s->train.state = TRAIN_STALE;
    lstm_model_destroy(model);
    s->slots[slot].model = NULL;
}

static void drop_dense(session *s)
{
    if (optim_binds(s, OWNER_DENSE))
        drop_optim(s);
    lstm_dense_destroy(s->dense);
    s->dense = NULL;
}

static void touched_clear(session *s)
{
    for (size_t n = 0; n < s->touched_count; n++)
        s->in_touched[s->touched[n]] = false;
    s->touched_count = 0;
}

/* The layer's touched rows are the ones kept here, in the same order. */
static void check_touched(const session *s)
{
    if (s->embedding == NULL)
        return;
    const uint32_t *rows = NULL;
    size_t count = SIZE_MAX;
    CHECK(lstm_embedding_touched_rows(s->embedding, &rows, &count) == LSTM_OK,
          "lstm_embedding_touched_rows");
    CHECK(count == s->touched_count, "%zu touched rows, %zu expected", count, s->touched_count);
    CHECK(count == 0 || memcmp(rows, s->touched, count * sizeof(uint32_t)) == 0,
          "the touched rows differ");
}

static void drop_embedding(session *s)
{
    if (optim_binds(s, OWNER_EMBEDDING))
        drop_optim(s);
    lstm_embedding_destroy(s->embedding);
    s->embedding = NULL;
    touched_clear(s);
}

static void drop_network(session *s)
{
    lstm_network_destroy(s->net.network);
    lstm_workspace_destroy(s->net.workspace);
    memset(&s->net, 0, sizeof s->net);
}

static void session_end(session *s)
{
    drop_network(s);
    drop_optim(s);
    drop_model(s, 0);
    drop_model(s, 1);
    drop_dense(s);
    drop_embedding(s);
    lstm_workspace_destroy(s->workspace);
    lstm_state_destroy(s->state);
    memset(s, 0, sizeof *s);
}

static float *model_params(lstm_model *model, size_t *count)
{
    float *data = NULL;
    CHECK(lstm_model_params(model, &data, count) == LSTM_OK && data != NULL, "lstm_model_params");
    return data;
}

static float *model_grads(lstm_model *model, size_t *count)
{
    float *data = NULL;
    CHECK(lstm_model_grads(model, &data, count) == LSTM_OK && data != NULL, "lstm_model_grads");
    return data;
}

/* A copy of the parameters, by lstm_model_get_params(): reading them through
 * lstm_model_params() would mark them changed (a kept packing repacked, a
 * quantized file's stored weights dropped), which the harness's own reads
 * must not do. The caller frees it. */
static float *params_copy(const lstm_model *model, size_t *count)
{
    *count = lstm_model_param_count(model);
    float *copy = malloc((*count != 0 ? *count : 1) * sizeof *copy);
    CHECK(copy != NULL, "out of memory");
    CHECK(lstm_model_get_params(model, copy, *count) == LSTM_OK, "lstm_model_get_params");
    return copy;
}

static bool model_tame(const lstm_model *model)
{
    size_t count;
    float *params = params_copy(model, &count);
    const bool tame = max_abs(params, count) <= TAME;
    free(params);
    return tame;
}

static float *copy_floats(scratch *sc, const float *values, size_t count)
{
    float *copy = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof(float));
    if (count != 0)
        memcpy(copy, values, count * sizeof(float));
    return copy;
}

static bool same_floats(const float *a, const float *b, size_t count)
{
    return count == 0 || memcmp(a, b, count * sizeof(float)) == 0;
}

/* ---- models ---------------------------------------------------------------------- */

/* Where each tensor of block (layer, direction) starts, by lstm/model.h's layout. */
static void documented_offsets(const lstm_config *c, size_t layer, size_t direction,
                               size_t offsets[4], size_t *K)
{
    const size_t H = c->hidden_size, P = c->proj_size, R = state_size_of(c);
    const size_t D = directions_of(c), G = 4 * H;
    size_t at = 0;
    for (size_t l = 0; l <= layer; l++) {
        const size_t width = R + (l == 0 ? c->input_size : D * R);
        for (size_t d = 0; d < D; d++) {
            if (l == layer && d == direction) {
                offsets[LSTM_TENSOR_WEIGHT] = at;
                offsets[LSTM_TENSOR_BIAS] = at + G * width;
                offsets[LSTM_TENSOR_PROJECTION] = at + G * width + G;
                offsets[LSTM_TENSOR_PEEPHOLE] = at + G * width + G + P * H;
                *K = width;
                return;
            }
            at += G * width + G + P * H + ((c->flags & LSTM_PEEPHOLE) ? 3 * H : 0);
        }
    }
}

static void op_model_create(session *s, reader *r, scratch *sc)
{
    (void)sc;
    const int slot = take_u8(r) & 1;
    config_case cc;
    take_config(r, &cc);
    const int null = take_null(r, 2);
    verdict v = cc.v;
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    /* A valid configuration above the cap would really be allocated. */
    if (v.broken == 0 && cc.param_count > MAX_PARAMS)
        return;
    drop_model(s, slot);
    lstm_model *const sentinel = (lstm_model *)&cc, *model = sentinel;
    arm_message();
    lstm_status status =
        lstm_model_create(null == 0 ? NULL : &cc.caller.config, null == 1 ? NULL : &model);
    if (!check_status("lstm_model_create", status, v)) {
        CHECK(model == sentinel, "a failed lstm_model_create wrote its out pointer");
        return;
    }
    CHECK(model != NULL && model != sentinel, "lstm_model_create gave no model");
    CHECK(lstm_model_param_count(model) == cc.param_count,
          "param count %zu, the documented layout gives %zu", lstm_model_param_count(model),
          cc.param_count);
    lstm_config got;
    CHECK(lstm_config_init(&got, sizeof got) == LSTM_OK, "lstm_config_init");
    CHECK(lstm_model_get_config(model, &got) == LSTM_OK, "lstm_model_get_config");
    CHECK(same_config(&got, &cc.effective), "lstm_model_get_config differs from the configuration");
    size_t count;
    const float *params = model_params(model, &count), *grads = model_grads(model, NULL);
    for (size_t k = 0; k < count; k++)
        CHECK(params[k] == 0.0f && grads[k] == 0.0f, "a new model's value %zu is not 0", k);
    s->slots[slot] = (model_slot){model, cc.effective, cc.param_count};
}

/* lstm_model_tensor() against the documented layout. */
static void call_tensor(const model_slot *slot, reader *r)
{
    const lstm_config *c = &slot->config;
    const size_t layer = take_size(r, SMALL_LAYERS), direction = take_size(r, 2);
    uint8_t b = take_u8(r);
    const int tensor = b < 0xF0 ? b % 4 : (int[]){-1, 4, 7, INT_MAX}[b % 4];
    const int null = take_null(r, 4); /* model, offset, rows, cols */
    verdict v = {0, 0};
    if (slot->model == NULL || null == 0 || null == 1)
        v.broken |= BIT(LSTM_E_NULL);
    else if (layer >= layers_of(c) || direction >= directions_of(c) || tensor < 0 || tensor > 3 ||
             (tensor == LSTM_TENSOR_PROJECTION && c->proj_size == 0) ||
             (tensor == LSTM_TENSOR_PEEPHOLE && !(c->flags & LSTM_PEEPHOLE)))
        v.broken |= BIT(LSTM_E_ARG);
    size_t offset = SIZE_MAX, rows = SIZE_MAX, cols = SIZE_MAX;
    arm_message();
    lstm_status status = lstm_model_tensor(null == 0 ? NULL : slot->model, layer, direction,
                                           (lstm_tensor)tensor, null == 1 ? NULL : &offset,
                                           null == 2 ? NULL : &rows, null == 3 ? NULL : &cols);
    if (!check_status("lstm_model_tensor", status, v)) {
        CHECK(offset == SIZE_MAX && rows == SIZE_MAX && cols == SIZE_MAX,
              "a failed lstm_model_tensor wrote an output");
        return;
    }
    size_t offsets[4], K;
    documented_offsets(c, layer, direction, offsets, &K);
    const size_t H = c->hidden_size;
    const size_t shapes[4][2] = {{4 * H, K}, {4 * H, 1}, {c->proj_size, H}, {3, H}};
    CHECK(offset == offsets[tensor], "tensor %d of (%zu, %zu) at %zu; documented %zu", tensor,
          layer, direction, offset, offsets[tensor]);
    CHECK(null == 2 || rows == shapes[tensor][0], "tensor %d: %zu rows", tensor, rows);
    CHECK(null == 3 || cols == shapes[tensor][1], "tensor %d: %zu cols", tensor, cols);
    CHECK(offset + shapes[tensor][0] * shapes[tensor][1] <= slot->param_count,
          "tensor %d ends past the buffer", tensor);
}

/* A count argument: the right one, mostly, else off by one, 0 or huge. */
static size_t take_count(reader *r, size_t right)
{
    uint8_t b = take_u8(r);
    switch (b < 0xE0 ? 0 : b % 4) {
    case 1: return right + 1;
    case 2: return right - 1;
    case 3: return b & 0x10 ? 0 : SIZE_MAX;
    default: return right;
    }
}

/* After lstm_model_init(): PyTorch's bounds, forget biases of 1 with the flag,
 * the same values from the same seed. */
static void check_init(const model_slot *slot, uint64_t seed, uint32_t flags, scratch *sc)
{
    const lstm_config *c = &slot->config;
    const size_t H = c->hidden_size, count = slot->param_count;
    const float bound = (float)(1.0 / sqrt((double)H));
    const float *params = model_params(slot->model, NULL);
    for (size_t layer = 0; layer < layers_of(c); layer++) {
        for (size_t d = 0; d < directions_of(c); d++) {
            size_t offsets[4], K;
            documented_offsets(c, layer, d, offsets, &K);
            const size_t forget = offsets[LSTM_TENSOR_BIAS] + H;
            for (size_t k = forget; (flags & LSTM_INIT_FORGET_BIAS_ONE) && k < forget + H; k++)
                CHECK(params[k] == 1.0f, "forget bias %zu is %g", k, (double)params[k]);
        }
    }
    for (size_t k = 0; k < count; k++)
        CHECK(fabsf(params[k]) <= bound || params[k] == 1.0f, "parameter %zu is %g, bound %g", k,
              (double)params[k], (double)bound);
    float *first = copy_floats(sc, params, count);
    CHECK(lstm_model_init(slot->model, seed, flags) == LSTM_OK, "lstm_model_init again");
    CHECK(same_floats(params, first, count), "lstm_model_init is not reproducible");
}

/* lstm_model_get_config() with the caller's struct_size: never past its end. */
static void call_get_config(const model_slot *slot, reader *r, const lstm_model *given, verdict v)
{
    caller_config out;
    memset(&out, 0xCC, sizeof out);
    unsigned char newer[16] = {0};
    const size_t struct_size = take_struct_size(r, sizeof out.config, newer, sizeof newer);
    out.config.struct_size = struct_size;
    const bool null_config = take_null(r, 1) >= 0;
    if (null_config)
        v.broken |= BIT(LSTM_E_NULL);
    if (struct_size < CONFIG_V1_SIZE)
        v.broken |= BIT(LSTM_E_ARG);
    arm_message();
    lstm_status status = lstm_model_get_config(given, null_config ? NULL : &out.config);
    const unsigned char *bytes = (const unsigned char *)&out;
    for (size_t k = struct_size > sizeof(size_t) ? struct_size : sizeof(size_t); k < sizeof out;
         k++)
        CHECK(bytes[k] == 0xCC, "lstm_model_get_config wrote byte %zu past struct_size %zu", k,
              struct_size);
    if (!check_status("lstm_model_get_config", status, v))
        return;
    CHECK(out.config.struct_size == struct_size, "struct_size became %zu", out.config.struct_size);
    /* the first struct_size bytes of the configuration, zeros past them */
    const size_t known = struct_size < sizeof(lstm_config) ? struct_size : sizeof(lstm_config);
    lstm_config got, expected;
    memset(&got, 0, sizeof got);
    memset(&expected, 0, sizeof expected);
    memcpy(&got, &out.config, known);
    memcpy(&expected, &slot->config, known);
    CHECK(same_config(&got, &expected), "lstm_model_get_config gave another configuration");
    for (size_t k = sizeof out.config; k < struct_size; k++)
        CHECK(bytes[k] == 0, "lstm_model_get_config left newer byte %zu at %u", k, bytes[k]);
}

static void op_model_use(session *s, reader *r, scratch *sc)
{
    model_slot *slot = &s->slots[take_u8(r) & 1];
    lstm_model *model = slot->model;
    const size_t count = slot->param_count;
    const uint8_t what = take_u8(r) % 7;
    if (what == 0) {
        call_tensor(slot, r);
        return;
    }
    const bool null_model = take_null(r, 1) >= 0;
    lstm_model *given = null_model ? NULL : model;
    const float *params = model != NULL ? model_params(model, NULL) : NULL;
    const float *grads = model != NULL ? model_grads(model, NULL) : NULL;
    const float *params_before = model != NULL ? copy_floats(sc, params, count) : NULL;
    const float *grads_before = model != NULL ? copy_floats(sc, grads, count) : NULL;
    verdict v = {given == NULL ? BIT(LSTM_E_NULL) : 0, 0};
    lstm_status status;
    switch (what) {
    case 1: { /* init: PyTorch's bounds, forget bias 1 with the flag, reproducible */
        const uint64_t seed = take_u64(r);
        uint8_t b = take_u8(r);
        const uint32_t flags = b < 0xF0 ? (uint32_t)(b & 1) : take_u32(r);
        if (flags & ~LSTM_INIT_FORGET_BIAS_ONE)
            v.broken |= BIT(LSTM_E_ARG);
        arm_message();
        status = lstm_model_init(given, seed, flags);
        if (!check_status("lstm_model_init", status, v)) {
            CHECK(model == NULL || same_floats(params, params_before, count),
                  "a failed lstm_model_init changed the parameters");
            return;
        }
        CHECK(same_floats(grads, grads_before, count), "lstm_model_init changed the gradients");
        check_init(slot, seed, flags, sc);
        return;
    }
    case 2: { /* set_params: all or nothing */
        const size_t given_count = take_count(r, count);
        const bool null_src = take_null(r, 1) >= 0;
        input src = {NULL, SIZE_MAX};
        if (!null_src) {
            src.data = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof(float));
            fill_values(r, src.data, count, 2.0f);
            src.poisoned = poison(r, src.data, count);
        }
        if (null_src)
            v.broken |= BIT(LSTM_E_NULL);
        if (model != NULL && given_count != count)
            v.broken |= BIT(LSTM_E_SHAPE);
        if (src.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        arm_message();
        status = lstm_model_set_params(given, src.data, given_count);
        if (!check_status("lstm_model_set_params", status, v)) {
            CHECK(model == NULL || same_floats(params, params_before, count),
                  "a failed lstm_model_set_params changed the parameters");
            return;
        }
        CHECK(same_floats(params, src.data, count), "lstm_model_set_params stored other values");
        return;
    }
    case 3: { /* get_params, get_grads */
        const bool want_grads = take_u8(r) & 1;
        const size_t given_count = take_count(r, count);
        const bool null_dst = take_null(r, 1) >= 0;
        float *dst = null_dst ? NULL : new_output(sc, count);
        if (null_dst)
            v.broken |= BIT(LSTM_E_NULL);
        if (model != NULL && given_count != count)
            v.broken |= BIT(LSTM_E_SHAPE);
        arm_message();
        status = want_grads ? lstm_model_get_grads(given, dst, given_count)
                            : lstm_model_get_params(given, dst, given_count);
        if (!check_status(want_grads ? "lstm_model_get_grads" : "lstm_model_get_params", status,
                          v)) {
            CHECK(all_canary(dst, count), "a failed get wrote its output");
            return;
        }
        CHECK(same_floats(dst, want_grads ? grads : params, count), "get copied other values");
        return;
    }
    case 4: /* zero_grads */
        arm_message();
        status = lstm_model_zero_grads(given);
        if (check_status("lstm_model_zero_grads", status, v))
            for (size_t k = 0; k < count; k++)
                CHECK(grads[k] == 0.0f, "gradient %zu is %g after zero_grads", k, (double)grads[k]);
        return;
    case 5: { /* write through the views, as a caller (or a bad optimizer step) may */
        if (model == NULL)
            return;
        float *target = (take_u8(r) & 1) ? model_grads(model, NULL) : model_params(model, NULL);
        static const float values[8] = {NAN,  INFINITY, -INFINITY, 0.0f,
                                        1.0f, -3.0f,    1e30f,     -1e-30f};
        const size_t at = take_u32(r) % count;
        target[at] = values[take_u8(r) % 8];
        return;
    }
    default: call_get_config(slot, r, given, v); return;
    }
}

/* ---- workspaces ---------------------------------------------------------------- */

/* The verdict of a model against the workspace's configuration. */
static void workspace_match(const session *s, const lstm_model *model, const lstm_config *c,
                            verdict *v)
{
    if (model == NULL || s->workspace == NULL)
        return;
    if (!same_sizes(c, &s->workspace_config))
        v->broken |= BIT(LSTM_E_SHAPE);
    else if (!same_config(c, &s->workspace_config))
        v->tolerated |= BIT(LSTM_E_SHAPE); /* "of the same configuration": flags and dropout */
}

/* T and B: 0 is SIZE, T B past the BLAS index range OVERFLOW. */
static void shape_verdict(size_t T, size_t B, verdict *v, bool *absurd)
{
    size_t rows;
    *absurd = true;
    if (T == 0 || B == 0)
        v->broken |= BIT(LSTM_E_SIZE);
    else if (__builtin_mul_overflow(T, B, &rows) || rows > (size_t)INT_MAX)
        v->broken |= BIT(LSTM_E_OVERFLOW);
    else
        *absurd = false;
}

static lstm_mode take_mode(reader *r)
{
    uint8_t b = take_u8(r);
    return (lstm_mode)(b < 0xF0 ? (int)(b & 1) : (int[]){2, -1, 0x7fffffff, 1000}[b % 4]);
}

static void op_workspace(session *s, reader *r, scratch *sc)
{
    (void)sc;
    const model_slot *slot = &s->slots[take_u8(r) & 1];
    const uint8_t what = take_u8(r) % 5;
    const int null = take_null(r, 2);
    verdict v = {0, 0};
    lstm_status status;
    switch (what) {
    case 0: { /* create, replacing the session's workspace */
        lstm_workspace *const sentinel = (lstm_workspace *)&v, *ws = sentinel;
        if (slot->model == NULL || null >= 0)
            v.broken |= BIT(LSTM_E_NULL);
        arm_message();
        status = lstm_workspace_create(null == 0 ? NULL : slot->model, null == 1 ? NULL : &ws);
        if (!check_status("lstm_workspace_create", status, v)) {
            CHECK(ws == sentinel, "a failed lstm_workspace_create wrote its out pointer");
            return;
        }
        lstm_workspace_destroy(s->workspace);
        s->workspace = ws;
        s->workspace_config = slot->config;
        s->train.state = TRAIN_NONE;
        s->workspace_precision = LSTM_PRECISION_FP32; /* a new workspace's default */
        s->workspace_keeps = s->workspace_unnoticed = false;
        return;
    }
    case 1:
        lstm_workspace_destroy(s->workspace);
        s->workspace = NULL;
        s->train.state = TRAIN_NONE;
        return;
    case 2:
        if (s->workspace == NULL || null >= 0)
            v.broken |= BIT(LSTM_E_NULL);
        arm_message();
        status = lstm_workspace_set_seed(null >= 0 ? NULL : s->workspace, take_u64(r));
        check_status("lstm_workspace_set_seed", status, v);
        return;
    default: { /* size, or reserve (which allocates what size gives) */
        const lstm_mode mode = take_mode(r);
        const size_t T = take_size(r, SMALL_STEPS), B = take_size(r, SMALL_BATCH);
        bool absurd;
        shape_verdict(T, B, &v, &absurd);
        if (mode != LSTM_MODE_INFER && mode != LSTM_MODE_TRAIN)
            v.broken |= BIT(LSTM_E_ARG);
        /* Every region's size fits size_t for T B within the BLAS range
         * only when the model is small; the harness does not model it. */
        v.tolerated |= BIT(LSTM_E_OVERFLOW);
        size_t bytes = SIZE_MAX;
        if (what == 3) {
            if (slot->model == NULL || null >= 0)
                v.broken |= BIT(LSTM_E_NULL);
            arm_message();
            status = lstm_workspace_size(null == 0 ? NULL : slot->model, mode, T, B,
                                         null == 1 ? NULL : &bytes);
            if (check_status("lstm_workspace_size", status, v))
                CHECK(bytes > 0 && bytes != SIZE_MAX, "lstm_workspace_size gave %zu", bytes);
            else
                CHECK(bytes == SIZE_MAX, "a failed lstm_workspace_size wrote its output");
            return;
        }
        if (s->workspace == NULL || null >= 0)
            v.broken |= BIT(LSTM_E_NULL);
        /* A valid reserve allocates: made only when a model of the
         * workspace's configuration tells its size and that fits. */
        if (v.broken == 0) {
            const model_slot *same = NULL;
            for (int n = 0; n < 2; n++)
                if (s->slots[n].model != NULL &&
                    same_sizes(&s->slots[n].config, &s->workspace_config))
                    same = &s->slots[n];
            if (same == NULL || lstm_workspace_size(same->model, mode, T, B, &bytes) != LSTM_OK ||
                bytes > MAX_BYTES)
                return;
        }
        arm_message();
        status = lstm_workspace_reserve(null >= 0 ? NULL : s->workspace, mode, T, B);
        if (check_status("lstm_workspace_reserve", status, v))
            s->train.state = TRAIN_NONE;
        else if (s->train.state == TRAIN_HELD)
            s->train.state = TRAIN_MAYBE; /* "discarded" is not said of a failed reserve */
        return;
    }
    }
}

/* ---- the argument structs of the sequence calls (LSTM_1.2) ----------------------- */

/* lstm_sequences, lstm_inputs, lstm_outputs, lstm_output_grads and
 * lstm_input_grads are new in LSTM_1.2: their first version, the smallest
 * struct_size a caller may have, is the one in the headers. */

/* A caller's argument struct as bytes: the struct its header has, then what
 * a newer caller's fields past it would hold. */
typedef union caller_args {
    max_align_t align;
    unsigned char bytes[64];
} caller_args;

/*
 * Lays out a caller's struct of `own` bytes with a struct_size that is
 * mostly its own, sometimes a newer caller's (its extra fields zero, or
 * one of them set), an older or bogus one, or one
 * past the 64 KiB limit; returns what to give the library. `broken` gains
 * LSTM_E_ARG when the library must refuse the struct: a struct_size below
 * the first version or above 64 KiB, or a field set that this version does
 * not know.
 */
static const void *take_args(reader *r, caller_args *a, const void *args, size_t own,
                             unsigned *broken)
{
    static const size_t bogus[8] = {0, 1, 8, 16, 24, 31, ((size_t)64 << 10) + 1, SIZE_MAX};
    CHECK(own >= 32 && own + 16 <= sizeof a->bytes, "an argument struct of %zu bytes", own);
    memset(a, 0, sizeof *a);
    memcpy(a->bytes, args, own);
    const uint8_t b = take_u8(r);
    size_t struct_size = own;
    switch (b % 16u) {
    case 12: struct_size = own + 8; break;
    case 13:
        struct_size = own + 16;
        a->bytes[own + (b >> 4)] = (unsigned char)(1 + (b >> 4));
        *broken |= BIT(LSTM_E_ARG);
        break;
    case 14:
        struct_size = bogus[(b >> 4) % 8]; /* every one below 32 or above 64 KiB */
        *broken |= BIT(LSTM_E_ARG);
        break;
    default: break;
    }
    memcpy(a->bytes, &struct_size, sizeof struct_size);
    return a->bytes;
}

/* lstm_sequences.layout: mostly one of the three, one time in 16 an unknown value. */
static uint32_t take_layout(reader *r)
{
    const uint8_t b = take_u8(r);
    return b < 0xF0 ? b % 3u : (uint32_t[]){3, 4, 0x80000000u, UINT32_MAX}[b % 4];
}

static bool layout_known(uint32_t layout)
{
    return layout == LSTM_LAYOUT_MODEL || layout == LSTM_LAYOUT_TIME_MAJOR ||
           layout == LSTM_LAYOUT_BATCH_MAJOR;
}

/* Whether a call's x, y, dx and dy are [B][T][...]: its layout says, or the model's flags. */
static bool call_batch_first(uint32_t layout, const lstm_config *c)
{
    return layout == LSTM_LAYOUT_MODEL ? (c->flags & LSTM_BATCH_FIRST) != 0
                                       : layout == LSTM_LAYOUT_BATCH_MAJOR;
}

/* ---- forward, training forward, backward ------------------------------------------- */

/* Row of (step t, sequence b) in a [T][B][...] or [B][T][...] buffer. */
static size_t sequence_row(bool batch_first, size_t T, size_t B, size_t t, size_t b)
{
    return batch_first ? b * T + t : t * B + b;
}

/* Whether element `index` of a [T][B][width] buffer (or batch-first) is in a
 * step a sequence runs, and so is read. */
static bool element_runs(size_t index, size_t width, size_t T, size_t B, bool batch_first,
                         const size_t *lengths)
{
    const size_t row = index / width;
    const size_t t = batch_first ? row % T : row / B, b = batch_first ? row / T : row % B;
    return lengths == NULL || t < lengths[b];
}

/* B lengths, NULL one time in 4; each mostly in [1, T], sometimes 0, T + 1
 * or huge (LSTM_E_ARG). */
static size_t *take_lengths(reader *r, scratch *sc, size_t T, size_t B, verdict *v)
{
    if (take_u8(r) % 4 == 0)
        return NULL;
    size_t *lengths = scratch_alloc(sc, B * sizeof *lengths);
    for (size_t b = 0; b < B; b++) {
        uint8_t byte = take_u8(r);
        lengths[b] = byte < 0xF8 ? 1 + byte % T : (size_t[]){0, T + 1, SIZE_MAX, T}[byte % 4];
        if (lengths[b] == 0 || lengths[b] > T)
            v->broken |= BIT(LSTM_E_ARG);
    }
    return lengths;
}

typedef struct forward_call {
    const lstm_config *c;
    size_t T, B;
    const size_t *lengths;
    const float *h0, *c0;
    float *y, *hT, *cT;
    bool batch_first; /* the call's layout */
} forward_call;

/* The invariants of a successful forward (lstm/model.h): y zero past each
 * sequence's end; with tame parameters and inputs, finite outputs, |h| <= 1
 * without a projection, |c_T| <= max |c_0| + T; y at each sequence's last
 * step (first, for the reverse direction) equals the last layer's h_T. */
static void check_forward_outputs(const forward_call *f, bool tame)
{
    const lstm_config *c = f->c;
    const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c), H = c->hidden_size,
                 T = f->T, B = f->B, width = D * R;
    const bool batch_first = f->batch_first;
    const size_t states = L * D * B;
    CHECK(none_canary(f->y, T * B * width) && none_canary(f->hT, states * R) &&
              none_canary(f->cT, states * H),
          "a successful forward left an output unwritten");
    for (size_t t = 0; f->y != NULL && t < T; t++) {
        for (size_t b = 0; b < B; b++) {
            const float *row = f->y + sequence_row(batch_first, T, B, t, b) * width;
            const bool runs = f->lengths == NULL || t < f->lengths[b];
            for (size_t j = 0; j < width; j++) {
                CHECK(runs || row[j] == 0.0f, "y[t %zu][b %zu][%zu] = %g past the sequence's end",
                      t, b, j, (double)row[j]);
                CHECK(!tame || (isfinite(row[j]) && (c->proj_size != 0 || fabsf(row[j]) <= 1.0f)),
                      "y[t %zu][b %zu][%zu] = %g", t, b, j, (double)row[j]);
            }
        }
    }
    if (!tame)
        return;
    const float c0_max = f->c0 != NULL ? max_abs(f->c0, states * H) : 0.0f;
    for (size_t k = 0; f->hT != NULL && k < states * R; k++)
        CHECK(isfinite(f->hT[k]) && (c->proj_size != 0 || fabsf(f->hT[k]) <= 1.0f), "hT[%zu] = %g",
              k, (double)f->hT[k]);
    for (size_t k = 0; f->cT != NULL && k < states * H; k++)
        CHECK(isfinite(f->cT[k]) && fabsf(f->cT[k]) <= c0_max + (float)T, "cT[%zu] = %g", k,
              (double)f->cT[k]);
    if (f->y == NULL || f->hT == NULL)
        return;
    for (size_t d = 0; d < D; d++) {
        for (size_t b = 0; b < B; b++) {
            const size_t last = f->lengths != NULL ? f->lengths[b] - 1 : T - 1;
            const size_t t = d == 0 ? last : 0;
            const float *y_part = f->y + sequence_row(batch_first, T, B, t, b) * width + d * R;
            const float *h_part = f->hT + (((L - 1) * D + d) * B + b) * R;
            CHECK(same_floats(y_part, h_part, R),
                  "y at step %zu of sequence %zu, direction %zu, is not the last layer's h_T", t, b,
                  d);
        }
    }
}

/* What a struct-form forward's `null` (take_null()) makes NULL besides the
 * model (0), the workspace (1) and x (2). */
enum { NULL_SEQUENCES = 3, NULL_INPUTS = 4 };

/*
 * lstm_model_infer() or lstm_model_train_forward(): f's arrays in the
 * argument structs, laid out with fuzzed struct_sizes; the sequences or the
 * inputs NULL as `null` says, the outputs NULL one time in 8 (then f's
 * outputs become NULL: the library sees none).
 */
static lstm_status forward_structs(reader *r, const lstm_model *model, lstm_workspace *workspace,
                                   bool train, int null, uint32_t layout, const float *x,
                                   forward_call *f, verdict *v)
{
    const bool no_outputs = take_u8(r) % 8 == 0;
    if (no_outputs)
        f->y = f->hT = f->cT = NULL;
    const lstm_sequences sequences = {sizeof sequences, f->T, f->B, layout, f->lengths};
    const lstm_inputs inputs = {sizeof inputs, x, f->h0, f->c0};
    const lstm_outputs outputs = {sizeof outputs, f->y, f->hT, f->cT};
    caller_args laid[3];
    unsigned unread = 0; /* the verdict of a struct the library is not given */
    const lstm_sequences *sequences_arg = take_args(r, &laid[0], &sequences, sizeof sequences,
                                                    null == NULL_SEQUENCES ? &unread : &v->broken);
    const lstm_inputs *inputs_arg =
        take_args(r, &laid[1], &inputs, sizeof inputs, null == NULL_INPUTS ? &unread : &v->broken);
    const lstm_outputs *outputs_arg =
        take_args(r, &laid[2], &outputs, sizeof outputs, no_outputs ? &unread : &v->broken);
    if (null == NULL_SEQUENCES)
        sequences_arg = NULL;
    if (null == NULL_INPUTS)
        inputs_arg = NULL;
    if (no_outputs)
        outputs_arg = NULL;
    arm_message();
    return (train ? lstm_model_train_forward
                  : lstm_model_infer)(null == 0 ? NULL : model, null == 1 ? NULL : workspace,
                                      sequences_arg, inputs_arg, outputs_arg);
}

/*
 * An inference's outputs are, bit for bit, those of the same call on a new
 * workspace in the same precision: whether the session's workspace kept
 * its packing, and whatever it ran before (a model stored from a quantized
 * file, another precision, another model), must not show (lstm/model.h,
 * lstm_workspace_keep_weights(): "the same to the bit either way"). A
 * failed lstm_workspace_set_precision() that changed the precision shows
 * here too.
 */
static void check_fresh_forward(const lstm_model *model, lstm_precision precision, bool structs,
                                uint32_t layout, const forward_call *f, const float *x, scratch *sc)
{
    const lstm_config *c = f->c;
    const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c), H = c->hidden_size,
                 T = f->T, B = f->B, states = L * D * B;
    if (f->y == NULL && f->hT == NULL && f->cT == NULL)
        return;
    float *y = f->y != NULL ? new_output(sc, T * B * D * R) : NULL;
    float *hT = f->hT != NULL ? new_output(sc, states * R) : NULL;
    float *cT = f->cT != NULL ? new_output(sc, states * H) : NULL;
    lstm_workspace *ws = NULL;
    CHECK(lstm_workspace_create(model, &ws) == LSTM_OK, "lstm_workspace_create");
    CHECK(lstm_workspace_set_precision(ws, precision) == LSTM_OK, "lstm_workspace_set_precision");
    const lstm_sequences sequences = {sizeof sequences, T, B, layout, f->lengths};
    const lstm_inputs inputs = {sizeof inputs, x, f->h0, f->c0};
    const lstm_outputs outputs = {sizeof outputs, y, hT, cT};
    const lstm_status status =
        structs ? lstm_model_infer(model, ws, &sequences, &inputs, &outputs)
                : lstm_model_forward(model, ws, T, B, f->lengths, x, f->h0, f->c0, y, hT, cT);
    lstm_workspace_destroy(ws);
    CHECK(status == LSTM_OK, "the same inference on a new workspace: %s", status_name(status));
    CHECK((y == NULL || same_floats(y, f->y, T * B * D * R)) &&
              (hT == NULL || same_floats(hT, f->hT, states * R)) &&
              (cT == NULL || same_floats(cT, f->cT, states * H)),
          "an inference in precision %d differs from the same call on a new workspace",
          (int)precision);
}

static void op_forward(session *s, reader *r, scratch *sc, bool train)
{
    /* bit 0: the model's slot; bit 1: the argument-struct form (LSTM_1.2) */
    const uint8_t form = take_u8(r);
    const model_slot *slot = &s->slots[form & 1];
    const bool structs = (form & 2) != 0;
    const lstm_model *model = slot->model;
    const lstm_config *c = &slot->config;
    const size_t T = take_size(r, SMALL_STEPS), B = take_size(r, SMALL_BATCH);
    /* model, workspace, x; and in the struct form the sequences, the inputs */
    const int null = take_null(r, structs ? NULL_INPUTS + 1 : 3);
    const uint32_t layout = structs ? take_layout(r) : LSTM_LAYOUT_MODEL;
    verdict v = {0, 0};
    if (model == NULL || s->workspace == NULL || null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (null != NULL_SEQUENCES && !layout_known(layout))
        v.broken |= BIT(LSTM_E_ARG);
    workspace_match(s, model, c, &v);
    bool absurd;
    shape_verdict(T, B, &v, &absurd);

    forward_call f = {.c = c, .T = T, .B = B, .batch_first = call_batch_first(layout, c)};
    const float *x = NULL;
    float dummy[1] = {0.0f};
    if ((v.broken & BIT(LSTM_E_NULL)) || absurd) {
        /* refused before anything is read */
        x = dummy;
    } else {
        const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c),
                     H = c->hidden_size, I = c->input_size, states = L * D * B;
        if (T * B > MAX_ROWS || !floats_fit(T * B * I) || !floats_fit(states * H) ||
            !floats_fit(T * B * D * R))
            return;
        size_t bytes;
        if (lstm_workspace_size(model, train ? LSTM_MODE_TRAIN : LSTM_MODE_INFER, T, B, &bytes) !=
                LSTM_OK ||
            bytes > MAX_BYTES)
            return;
        f.lengths = take_lengths(r, sc, T, B, &v);
        input in = take_input(r, sc, T * B * I, false);
        if (in.poisoned != SIZE_MAX &&
            element_runs(in.poisoned, I, T, B, f.batch_first,
                         (v.broken & BIT(LSTM_E_ARG)) ? NULL : f.lengths))
            v.broken |= BIT(LSTM_E_NONFINITE);
        input h0 = take_input(r, sc, states * R, true), c0 = take_input(r, sc, states * H, true);
        if (h0.poisoned != SIZE_MAX || c0.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        x = in.data;
        f.h0 = h0.data;
        f.c0 = c0.data;
        f.y = take_output(r, sc, T * B * D * R);
        f.hT = take_output(r, sc, states * R);
        f.cT = take_output(r, sc, states * H);
    }
    const bool tame = model != NULL && model_tame((lstm_model *)model);
    if (s->workspace != NULL && null != 1)
        s->train.state = TRAIN_NONE; /* discarded, "even when the call fails" */
    lstm_status status;
    const char *call;
    if (structs) {
        status = forward_structs(r, model, s->workspace, train, null, layout, null == 2 ? NULL : x,
                                 &f, &v);
        call = train ? "lstm_model_train_forward" : "lstm_model_infer";
    } else {
        arm_message();
        status = (train ? lstm_model_forward_train : lstm_model_forward)(
            null == 0 ? NULL : model, null == 1 ? NULL : s->workspace, T, B, f.lengths,
            null == 2 ? NULL : x, f.h0, f.c0, f.y, f.hT, f.cT);
        call = train ? "lstm_model_forward_train" : "lstm_model_forward";
    }
    if (!check_status(call, status, v)) {
        const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c);
        CHECK(f.y == NULL || all_canary(f.y, T * B * D * R), "a failed forward wrote y");
        CHECK(all_canary(f.hT, L * D * B * R) && all_canary(f.cT, L * D * B * c->hidden_size),
              "a failed forward wrote hT or cT");
        return;
    }
    check_forward_outputs(&f, tame);
    if (!train && !(s->workspace_keeps && s->workspace_unnoticed))
        check_fresh_forward(model, s->workspace_precision, structs, layout, &f, x, sc);
    if (train) {
        training *held = &s->train;
        held->state = TRAIN_HELD;
        held->model = model;
        held->config = *c;
        held->T = T;
        held->B = B;
        held->batch_first = f.batch_first;
        held->has_lengths = f.lengths != NULL;
        if (f.lengths != NULL)
            memcpy(held->lengths, f.lengths, B * sizeof *f.lengths);
    }
}

/*
 * lstm_model_train_backward(): the gradients in the argument structs, laid
 * out with fuzzed struct_sizes, each struct NULL one time in 8 (then its
 * arrays become NULL: the library sees none). `bad_grads` is the verdict
 * of the output gradients' values, which count only when they are given.
 */
static lstm_status backward_structs(reader *r, lstm_model *model, lstm_workspace *workspace,
                                    const float **dy, const float **dhT, const float **dcT,
                                    float **dx, float **dh0, float **dc0, unsigned bad_grads,
                                    verdict *v)
{
    const bool no_output_grads = take_u8(r) % 8 == 0, no_input_grads = take_u8(r) % 8 == 0;
    if (no_output_grads)
        *dy = *dhT = *dcT = NULL;
    else
        v->broken |= bad_grads;
    if (no_input_grads)
        *dx = *dh0 = *dc0 = NULL;
    const lstm_output_grads output_grads = {sizeof output_grads, *dy, *dhT, *dcT};
    const lstm_input_grads input_grads = {sizeof input_grads, *dx, *dh0, *dc0};
    caller_args laid[2];
    unsigned unread = 0;
    const lstm_output_grads *output_grads_arg = take_args(
        r, &laid[0], &output_grads, sizeof output_grads, no_output_grads ? &unread : &v->broken);
    const lstm_input_grads *input_grads_arg = take_args(
        r, &laid[1], &input_grads, sizeof input_grads, no_input_grads ? &unread : &v->broken);
    arm_message();
    return lstm_model_train_backward(model, workspace, no_output_grads ? NULL : output_grads_arg,
                                     no_input_grads ? NULL : input_grads_arg);
}

static void op_backward(session *s, reader *r, scratch *sc)
{
    /* bit 0: the model's slot; bit 1: the argument-struct form (LSTM_1.2) */
    const uint8_t form = take_u8(r);
    const model_slot *slot = &s->slots[form & 1];
    const bool structs = (form & 2) != 0;
    lstm_model *model = slot->model;
    const int null = take_null(r, 2); /* model, workspace */
    training *held = &s->train;
    verdict v = {0, 0};
    if (model == NULL || s->workspace == NULL || null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    else if (held->state == TRAIN_STALE)
        return; /* its model's address may have been reused */
    else if (held->state == TRAIN_NONE || held->model != model)
        v.broken |= BIT(LSTM_E_STATE);
    else if (held->state == TRAIN_MAYBE)
        v.tolerated |= BIT(LSTM_E_STATE);

    const bool sized = v.broken == 0;
    const lstm_config *c = sized ? &held->config : &slot->config;
    const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c), H = c->hidden_size,
                 I = c->input_size, T = sized ? held->T : 0, B = sized ? held->B : 0,
                 states = L * D * B;
    const size_t *lengths = sized && held->has_lengths ? held->lengths : NULL;
    const bool batch_first = sized && held->batch_first;
    float dummy[1] = {0.0f};
    const float *dy = dummy, *dhT = dummy, *dcT = dummy;
    float *dx = NULL, *dh0 = NULL, *dc0 = NULL;
    unsigned bad_grads = 0;
    if (sized) {
        input in = take_input(r, sc, T * B * D * R, true);
        if (in.poisoned != SIZE_MAX && element_runs(in.poisoned, D * R, T, B, batch_first, lengths))
            bad_grads |= BIT(LSTM_E_NONFINITE);
        input h = take_input(r, sc, states * R, true), cell = take_input(r, sc, states * H, true);
        if (h.poisoned != SIZE_MAX || cell.poisoned != SIZE_MAX)
            bad_grads |= BIT(LSTM_E_NONFINITE);
        dy = in.data;
        dhT = h.data;
        dcT = cell.data;
        dx = take_output(r, sc, T * B * I);
        dh0 = take_output(r, sc, states * R);
        dc0 = take_output(r, sc, states * H);
    }
    const size_t count = slot->param_count;
    const float *grads = model != NULL ? model_grads(model, NULL) : NULL;
    const float *before = model != NULL ? copy_floats(sc, grads, count) : NULL;
    lstm_status status;
    if (structs) {
        status = backward_structs(r, null == 0 ? NULL : model, null == 1 ? NULL : s->workspace, &dy,
                                  &dhT, &dcT, &dx, &dh0, &dc0, bad_grads, &v);
    } else {
        v.broken |= bad_grads;
        arm_message();
        status = lstm_model_backward(null == 0 ? NULL : model, null == 1 ? NULL : s->workspace, dy,
                                     dhT, dcT, dx, dh0, dc0);
    }
    if (!check_status(structs ? "lstm_model_train_backward" : "lstm_model_backward", status, v)) {
        CHECK(model == NULL || same_floats(grads, before, count),
              "a failed backward changed the gradients");
        CHECK(all_canary(dx, T * B * I) && all_canary(dh0, states * R) &&
                  all_canary(dc0, states * H),
              "a failed backward wrote an output");
        if (held->state == TRAIN_HELD)
            held->state = TRAIN_MAYBE;
        return;
    }
    held->state = TRAIN_NONE; /* consumed */
    CHECK(none_canary(dx, T * B * I) && none_canary(dh0, states * R) &&
              none_canary(dc0, states * H),
          "a successful backward left an output unwritten");
    for (size_t k = 0; dx != NULL && k < T * B * I; k++)
        CHECK(element_runs(k, I, T, B, batch_first, lengths) || dx[k] == 0.0f,
              "dx[%zu] = %g in the padding", k, (double)dx[k]);
}

/* ---- streams --------------------------------------------------------------------- */

/* The fields a state is shaped by (lstm/model.h: sizes, layers, projection, peepholes). */
static bool state_fits(const lstm_config *a, const lstm_config *b)
{
    return same_sizes(a, b) && (a->flags & LSTM_PEEPHOLE) == (b->flags & LSTM_PEEPHOLE);
}

/* A chunk through a state computes exactly what one whole-sequence call
 * from the same states computes (lstm/model.h), with the same lengths and
 * layout: lstm_model_infer() for a struct-form chunk, lstm_model_forward()
 * for a positional one. */
static void check_stream_exact(const lstm_model *model, const lstm_config *c,
                               lstm_precision precision, const lstm_sequences *sequences,
                               bool structs, const float *x, const float *h_before,
                               const float *c_before, const float *y, const float *h_after,
                               const float *c_after, scratch *sc)
{
    const size_t L = layers_of(c), R = state_size_of(c), H = c->hidden_size;
    const size_t steps = sequences->steps, B = sequences->batch;
    lstm_workspace *ws = NULL;
    CHECK(lstm_workspace_create(model, &ws) == LSTM_OK, "lstm_workspace_create");
    /* "A stream run chunk by chunk in a precision gives what one
     * whole-sequence call in it gives, bit for bit." */
    CHECK(lstm_workspace_set_precision(ws, precision) == LSTM_OK, "lstm_workspace_set_precision");
    float *y_whole = new_output(sc, steps * B * R), *h_whole = new_output(sc, L * B * R),
          *c_whole = new_output(sc, L * B * H);
    const lstm_inputs inputs = {sizeof inputs, x, h_before, c_before};
    const lstm_outputs outputs = {sizeof outputs, y_whole, h_whole, c_whole};
    lstm_status status = structs ? lstm_model_infer(model, ws, sequences, &inputs, &outputs)
                                 : lstm_model_forward(model, ws, steps, B, NULL, x, h_before,
                                                      c_before, y_whole, h_whole, c_whole);
    lstm_workspace_destroy(ws);
    CHECK(status == LSTM_OK, "the whole-sequence forward of a chunk: %s", status_name(status));
    CHECK(y == NULL || same_floats(y, y_whole, steps * B * R),
          "a stream's y differs from the whole-sequence forward's");
    CHECK(same_floats(h_after, h_whole, L * B * R) && same_floats(c_after, c_whole, L * B * H),
          "a stream's state differs from the whole-sequence forward's final states");
}

static void state_get(const session *s, scratch *sc, float **h, float **c)
{
    const lstm_config *cfg = &s->state_config;
    const size_t L = layers_of(cfg), B = s->state_batch;
    *h = new_output(sc, L * B * state_size_of(cfg));
    *c = new_output(sc, L * B * cfg->hidden_size);
    CHECK(lstm_state_get(s->state, *h, *c) == LSTM_OK, "lstm_state_get");
}

static void state_create(session *s, const model_slot *slot, reader *r, scratch *sc)
{
    verdict v = {0, 0};
    lstm_status status;
    const size_t B = take_size(r, SMALL_BATCH);
    const int null = take_null(r, 2);
    const lstm_config *c = &slot->config;
    if (slot->model == NULL || null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    else if (directions_of(c) != 1)
        v.broken |= BIT(LSTM_E_ARG);
    size_t h_count = 0, c_count = 0;
    if (B == 0)
        v.broken |= BIT(LSTM_E_SIZE);
    else if (slot->model != NULL &&
             (!mul3(layers_of(c), B, state_size_of(c), &h_count) ||
              !mul3(layers_of(c), B, c->hidden_size, &c_count) || h_count > SIZE_MAX / 8 - c_count))
        v.broken |= BIT(LSTM_E_OVERFLOW);
    if (v.broken == 0 && (B > MAX_ROWS || !floats_fit(h_count + c_count)))
        return;
    lstm_state *const sentinel = (lstm_state *)&v, *state = sentinel;
    arm_message();
    status = lstm_state_create(null == 0 ? NULL : slot->model, B, null == 1 ? NULL : &state);
    if (!check_status("lstm_state_create", status, v)) {
        CHECK(state == sentinel, "a failed lstm_state_create wrote its out pointer");
        return;
    }
    lstm_state_destroy(s->state);
    s->state = state;
    s->state_config = *c;
    s->state_batch = B;
    s->state_precision = LSTM_PRECISION_FP32;
    s->state_keeps = s->state_unnoticed = false;
    float *h, *cell;
    state_get(s, sc, &h, &cell);
    CHECK(max_abs(h, h_count) == 0.0f && max_abs(cell, c_count) == 0.0f, "a new state is not zero");
}

/*
 * lstm_model_infer_stream() or lstm_model_train_chunk() on the session's
 * state: the arrays in the argument structs, laid out with fuzzed
 * struct_sizes; the sequences or the inputs NULL as `null` says, the outputs
 * NULL one time in 8 (then *y, *hT and *cT become NULL).
 */
static lstm_status chunk_structs(session *s, reader *r, const lstm_model *model, bool chunk,
                                 int null, const lstm_sequences *sequences, const float *x,
                                 const float *h0, const float *c0, float **y, float **hT,
                                 float **cT, verdict *v)
{
    const int null_sequences = chunk ? 3 : 2, null_inputs = null_sequences + 1;
    const bool no_outputs = take_u8(r) % 8 == 0;
    if (no_outputs)
        *y = *hT = *cT = NULL;
    const lstm_inputs inputs = {sizeof inputs, null == 1 ? NULL : x, h0, c0};
    const lstm_outputs outputs = {sizeof outputs, *y, *hT, *cT};
    caller_args laid[3];
    unsigned unread = 0;
    const lstm_sequences *sequences_arg = take_args(r, &laid[0], sequences, sizeof *sequences,
                                                    null == null_sequences ? &unread : &v->broken);
    const lstm_inputs *inputs_arg =
        take_args(r, &laid[1], &inputs, sizeof inputs, null == null_inputs ? &unread : &v->broken);
    const lstm_outputs *outputs_arg =
        take_args(r, &laid[2], &outputs, sizeof outputs, no_outputs ? &unread : &v->broken);
    if (null == null_sequences)
        sequences_arg = NULL;
    if (null == null_inputs)
        inputs_arg = NULL;
    if (no_outputs)
        outputs_arg = NULL;
    if (null == 0)
        model = NULL;
    arm_message();
    if (chunk)
        return lstm_model_train_chunk(model, null == 2 ? NULL : s->workspace, s->state,
                                      sequences_arg, inputs_arg, outputs_arg);
    return lstm_model_infer_stream(model, s->state, sequences_arg, inputs_arg, outputs_arg);
}

/* A stream chunk, or a truncated-BPTT training chunk, in the positional
 * form or (`structs`) the argument-struct form; h_before and c_before hold
 * the state before it. */
static void state_chunk(session *s, const model_slot *slot, reader *r, scratch *sc, bool chunk,
                        bool structs, const float *h_before, const float *c_before)
{
    const lstm_config *sc_cfg = &s->state_config;
    const size_t L = layers_of(sc_cfg), B = s->state_batch, R = state_size_of(sc_cfg),
                 H = sc_cfg->hidden_size;
    verdict v = {0, 0};
    lstm_status status;
    const lstm_model *model = slot->model;
    const lstm_config *c = &slot->config;
    const size_t steps = take_size(r, SMALL_STEPS);
    /* model, x, workspace (chunks only); and in the struct form the
     * sequences, the inputs */
    const int null_sequences = chunk ? 3 : 2;
    const int null = take_null(r, structs ? null_sequences + 2 : null_sequences);
    /* The struct form names the layout and the batch, mostly the state's. */
    const uint32_t layout = structs ? take_layout(r) : LSTM_LAYOUT_MODEL;
    const size_t batch = structs ? take_count(r, B) : B;
    if (model == NULL || null >= 0 || (chunk && s->workspace == NULL))
        v.broken |= BIT(LSTM_E_NULL);
    if (model != NULL && !state_fits(c, sc_cfg))
        v.broken |= BIT(LSTM_E_SHAPE);
    if (null != null_sequences && !layout_known(layout))
        v.broken |= BIT(LSTM_E_ARG);
    if (null != null_sequences && batch != B)
        v.broken |= BIT(LSTM_E_SHAPE); /* "batch, the state's B" */
    if (chunk)
        workspace_match(s, model, c, &v);
    /* A state made non-finite by a model with NaN parameters is refused as
     * the chunk's initial state. */
    if (!all_finite(h_before, L * B * R) || !all_finite(c_before, L * B * H))
        v.broken |= BIT(LSTM_E_NONFINITE);
    bool absurd;
    shape_verdict(steps, batch, &v, &absurd);
    float dummy[1] = {0.0f};
    const float *x = dummy;
    float *y = NULL, *hT = NULL, *cT = NULL;
    const size_t *lengths = NULL;
    const size_t I = sc_cfg->input_size;
    const bool batch_first = call_batch_first(layout, c);
    if (!(v.broken & (BIT(LSTM_E_NULL) | BIT(LSTM_E_SHAPE))) && !absurd) {
        if (steps * B > MAX_ROWS)
            return;
        if (structs)
            lengths = take_lengths(r, sc, steps, B, &v);
        input in = take_input(r, sc, steps * B * I, false);
        if (in.poisoned != SIZE_MAX && element_runs(in.poisoned, I, steps, B, batch_first,
                                                    (v.broken & BIT(LSTM_E_ARG)) ? NULL : lengths))
            v.broken |= BIT(LSTM_E_NONFINITE);
        x = in.data;
        y = take_output(r, sc, steps * B * R);
        if (structs) {
            hT = take_output(r, sc, L * B * R);
            cT = take_output(r, sc, L * B * H);
        }
    }
    /* The struct form's inputs must leave h0 and c0 NULL: the state holds them. */
    const float *h0 = NULL, *c0 = NULL;
    if (structs) {
        const uint8_t b = take_u8(r);
        h0 = b == 0xF0 ? h_before : NULL;
        c0 = b == 0xF1 ? c_before : NULL;
        if ((h0 != NULL || c0 != NULL) && null != null_sequences + 1)
            v.broken |= BIT(LSTM_E_ARG);
    }
    const bool tame = model != NULL && model_tame((lstm_model *)model);
    /* A failed chunk may or may not have discarded the training state. */
    if (chunk && s->train.state == TRAIN_HELD)
        s->train.state = TRAIN_MAYBE;
    const lstm_sequences sequences = {sizeof sequences, steps, batch, layout, lengths};
    const char *call;
    if (structs) {
        status = chunk_structs(s, r, model, chunk, null, &sequences, x, h0, c0, &y, &hT, &cT, &v);
        call = chunk ? "lstm_model_train_chunk" : "lstm_model_infer_stream";
    } else {
        arm_message();
        status = chunk ? lstm_model_forward_train_chunk(null == 0 ? NULL : model,
                                                        null == 2 ? NULL : s->workspace, s->state,
                                                        steps, null == 1 ? NULL : x, y)
                       : lstm_model_stream(null == 0 ? NULL : model, s->state, steps,
                                           null == 1 ? NULL : x, y);
        call = chunk ? "lstm_model_forward_train_chunk" : "lstm_model_stream";
    }
    float *h_after, *c_after;
    state_get(s, sc, &h_after, &c_after);
    if (!check_status(call, status, v)) {
        CHECK(same_floats(h_after, h_before, L * B * R) &&
                  same_floats(c_after, c_before, L * B * H),
              "a failed chunk changed the state");
        CHECK(all_canary(y, steps * B * R) && all_canary(hT, L * B * R) &&
                  all_canary(cT, L * B * H),
              "a failed chunk wrote an output");
        return;
    }
    forward_call f = {.c = c,
                      .T = steps,
                      .B = B,
                      .lengths = lengths,
                      .h0 = h_before,
                      .c0 = c_before,
                      .y = y,
                      .hT = h_after,
                      .cT = c_after,
                      .batch_first = batch_first};
    check_forward_outputs(&f, tame && max_abs(h_before, L * B * R) <= 1e3f &&
                                  max_abs(c_before, L * B * H) <= 1e6f);
    CHECK((hT == NULL || same_floats(hT, h_after, L * B * R)) &&
              (cT == NULL || same_floats(cT, c_after, L * B * H)),
          "a chunk's hT and cT are not the state after it");
    if (!chunk) {
        if (!(s->state_keeps && s->state_unnoticed))
            check_stream_exact(model, c, s->state_precision, &sequences, structs, x, h_before,
                               c_before, y, h_after, c_after, sc);
        return;
    }
    training *held = &s->train;
    held->state = TRAIN_HELD;
    held->model = model;
    held->config = *c;
    held->T = steps;
    held->B = B;
    held->batch_first = batch_first;
    held->has_lengths = lengths != NULL;
    if (lengths != NULL)
        memcpy(held->lengths, lengths, B * sizeof *lengths);
}

static void op_state(session *s, reader *r, scratch *sc)
{
    /* bit 0: the model's slot; bit 1: chunks in the argument-struct form (LSTM_1.2) */
    const uint8_t form = take_u8(r);
    const model_slot *slot = &s->slots[form & 1];
    const bool structs = (form & 2) != 0;
    const uint8_t what = take_u8(r) % 7;
    verdict v = {0, 0};
    lstm_status status;
    if (what == 0) {
        state_create(s, slot, r, sc);
        return;
    }
    if (what == 1) {
        lstm_state_destroy(s->state);
        s->state = NULL;
        return;
    }
    const bool null_state = take_null(r, 1) >= 0 || s->state == NULL;
    if (null_state) {
        float dummy[1] = {0.0f};
        const lstm_sequences one_step = {sizeof one_step, 1, 1, LSTM_LAYOUT_MODEL, NULL};
        const lstm_inputs inputs = {sizeof inputs, dummy, NULL, NULL};
        v.broken |= BIT(LSTM_E_NULL);
        arm_message();
        switch (what) {
        case 2: status = lstm_state_reset(NULL); break;
        case 3: status = lstm_state_get(NULL, NULL, NULL); break;
        case 4: status = lstm_state_set(NULL, NULL, NULL); break;
        case 5:
            status = structs ? lstm_model_infer_stream(slot->model, NULL, &one_step, &inputs, NULL)
                             : lstm_model_stream(slot->model, NULL, 1, dummy, NULL);
            break;
        default:
            status = structs ? lstm_model_train_chunk(slot->model, s->workspace, NULL, &one_step,
                                                      &inputs, NULL)
                             : lstm_model_forward_train_chunk(slot->model, s->workspace, NULL, 1,
                                                              dummy, NULL);
            break;
        }
        check_status("a state call with a NULL state", status, v);
        return;
    }
    const lstm_config *sc_cfg = &s->state_config;
    const size_t L = layers_of(sc_cfg), B = s->state_batch, R = state_size_of(sc_cfg),
                 H = sc_cfg->hidden_size;
    float *h_before, *c_before;
    state_get(s, sc, &h_before, &c_before);
    switch (what) {
    case 2:
        arm_message();
        status = lstm_state_reset(s->state);
        if (check_status("lstm_state_reset", status, v)) {
            float *h, *cell;
            state_get(s, sc, &h, &cell);
            CHECK(max_abs(h, L * B * R) == 0.0f && max_abs(cell, L * B * H) == 0.0f,
                  "a reset state is not zero");
        }
        return;
    case 3: {
        float *h = take_output(r, sc, L * B * R), *cell = take_output(r, sc, L * B * H);
        arm_message();
        status = lstm_state_get(s->state, h, cell);
        if (check_status("lstm_state_get", status, v))
            CHECK((h == NULL || same_floats(h, h_before, L * B * R)) &&
                      (cell == NULL || same_floats(cell, c_before, L * B * H)),
                  "lstm_state_get gave other values");
        return;
    }
    case 4: {
        input h = take_input(r, sc, L * B * R, true), cell = take_input(r, sc, L * B * H, true);
        if (h.poisoned != SIZE_MAX || cell.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        arm_message();
        status = lstm_state_set(s->state, h.data, cell.data);
        float *h_after, *c_after;
        state_get(s, sc, &h_after, &c_after);
        if (!check_status("lstm_state_set", status, v)) {
            CHECK(same_floats(h_after, h_before, L * B * R) &&
                      same_floats(c_after, c_before, L * B * H),
                  "a failed lstm_state_set changed the state");
            return;
        }
        for (size_t k = 0; k < L * B * R; k++)
            CHECK(h_after[k] == (h.data != NULL ? h.data[k] : 0.0f), "h[%zu] not set", k);
        for (size_t k = 0; k < L * B * H; k++)
            CHECK(c_after[k] == (cell.data != NULL ? cell.data[k] : 0.0f), "c[%zu] not set", k);
        return;
    }
    default: state_chunk(s, slot, r, sc, what == 6, structs, h_before, c_before); return;
    }
}

/* ---- the dense head, the last-step gather, the losses ------------------------------ */

/* z = x W^T + b;  dx = dz W;  dW += dz^T x;  db += sum_r dz  (in double, against the
 * layer's float results) */
static void check_dense_products(bool backward, size_t rows, size_t I, size_t O,
                                 const float *params, const float *grads_before, const float *grads,
                                 const float *x, const float *z, const float *dz, const float *dx)
{
    const float *W = params, *bias = params + O * I;
    for (size_t row = 0; row < rows; row++) {
        for (size_t j = 0; !backward && j < O; j++) {
            double sum = bias[j], scale = fabs(bias[j]);
            for (size_t i = 0; i < I; i++) {
                sum += (double)x[row * I + i] * W[j * I + i];
                scale += fabs((double)x[row * I + i] * W[j * I + i]);
            }
            CHECK(fabs(z[row * O + j] - sum) <= 1e-5 * scale + 1e-30, "z[%zu][%zu] = %g, not %g",
                  row, j, (double)z[row * O + j], sum);
        }
        for (size_t i = 0; backward && dx != NULL && i < I; i++) {
            double sum = 0.0, scale = 0.0;
            for (size_t j = 0; j < O; j++) {
                sum += (double)dz[row * O + j] * W[j * I + i];
                scale += fabs((double)dz[row * O + j] * W[j * I + i]);
            }
            CHECK(fabs(dx[row * I + i] - sum) <= 1e-5 * scale + 1e-30, "dx[%zu][%zu] = %g, not %g",
                  row, i, (double)dx[row * I + i], sum);
        }
    }
    for (size_t j = 0; backward && j < O; j++) {
        for (size_t i = 0; i <= I; i++) { /* i == I: the bias */
            const size_t at = i < I ? j * I + i : O * I + j;
            double sum = grads_before[at], scale = fabs(grads_before[at]);
            for (size_t row = 0; row < rows; row++) {
                const double term = (double)dz[row * O + j] * (i < I ? x[row * I + i] : 1.0f);
                sum += term;
                scale += fabs(term);
            }
            CHECK(fabs(grads[at] - sum) <= 1e-5 * scale + 1e-30, "dense gradient %zu = %g, not %g",
                  at, (double)grads[at], sum);
        }
    }
}

static void op_dense(session *s, reader *r, scratch *sc)
{
    const uint8_t what = take_u8(r) % 6;
    verdict v = {0, 0};
    lstm_status status;
    if (what == 0) {
        const size_t in = take_size(r, SMALL_SIZE), out = take_size(r, SMALL_SIZE);
        const bool null_out = take_null(r, 1) >= 0;
        if (null_out)
            v.broken |= BIT(LSTM_E_NULL);
        if (in == 0 || in > LSTM_MAX_SIZE || out == 0 || out > LSTM_MAX_SIZE)
            v.broken |= BIT(LSTM_E_SIZE);
        if (v.broken == 0 && (in > MAX_PARAMS || out > MAX_PARAMS || in * out + out > MAX_PARAMS))
            return;
        lstm_dense *const sentinel = (lstm_dense *)&v, *dense = sentinel;
        arm_message();
        status = lstm_dense_create(in, out, null_out ? NULL : &dense);
        if (!check_status("lstm_dense_create", status, v)) {
            CHECK(dense == sentinel, "a failed lstm_dense_create wrote its out pointer");
            return;
        }
        CHECK(lstm_dense_param_count(dense) == in * out + out, "dense param count %zu",
              lstm_dense_param_count(dense));
        drop_dense(s);
        s->dense = dense;
        s->dense_in = in;
        s->dense_out = out;
        return;
    }
    if (what == 1) {
        drop_dense(s);
        return;
    }
    const bool null_dense = take_null(r, 1) >= 0;
    lstm_dense *dense = null_dense ? NULL : s->dense;
    if (dense == NULL)
        v.broken |= BIT(LSTM_E_NULL);
    const size_t I = s->dense_in, O = s->dense_out, count = I * O + O;
    float *params = NULL, *grads = NULL;
    if (s->dense != NULL) {
        CHECK(lstm_dense_params(s->dense, &params, NULL) == LSTM_OK, "lstm_dense_params");
        CHECK(lstm_dense_grads(s->dense, &grads, NULL) == LSTM_OK, "lstm_dense_grads");
    }
    if (what == 2) {
        const uint64_t seed = take_u64(r);
        arm_message();
        if (check_status("lstm_dense_init", lstm_dense_init(dense, seed), v))
            CHECK(max_abs(params, count) <= (float)(1.0 / sqrt((double)I)),
                  "lstm_dense_init out of nn.Linear's bounds");
        return;
    }
    if (what == 3) {
        arm_message();
        if (check_status("lstm_dense_zero_grads", lstm_dense_zero_grads(dense), v))
            CHECK(max_abs(grads, count) == 0.0f, "lstm_dense_zero_grads left a gradient");
        return;
    }
    /* forward, backward: against a double-precision product */
    const bool backward = what == 5;
    const size_t rows = take_size(r, MAX_ROWS);
    const int null = take_null(r, 2); /* x, and z or dz */
    bool absurd = true;
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (rows == 0)
        v.broken |= BIT(LSTM_E_SIZE);
    else if (rows > (size_t)INT_MAX) /* the BLAS range; rows * features cannot overflow */
        v.broken |= BIT(LSTM_E_OVERFLOW);
    else
        absurd = false;
    float dummy[1] = {0.0f};
    const float *x = dummy, *dz = dummy;
    float *z = dummy, *dx = NULL;
    if (s->dense != NULL && !absurd && !(v.broken & BIT(LSTM_E_NULL))) {
        if (rows > MAX_ROWS || !floats_fit(rows * I) || !floats_fit(rows * O))
            return;
        input xin = take_input(r, sc, rows * I, false);
        if (xin.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        x = xin.data;
        if (backward) {
            input dzin = take_input(r, sc, rows * O, false);
            if (dzin.poisoned != SIZE_MAX)
                v.broken |= BIT(LSTM_E_NONFINITE);
            dz = dzin.data;
            dx = take_output(r, sc, rows * I);
        } else {
            z = new_output(sc, rows * O);
        }
    }
    const float *grads_before = s->dense != NULL ? copy_floats(sc, grads, count) : NULL;
    const bool tame =
        s->dense != NULL && max_abs(params, count) <= 1e3f && max_abs(grads, count) <= 1e3f;
    arm_message();
    if (backward)
        status = lstm_dense_backward(dense, rows, null == 0 ? NULL : x, null == 1 ? NULL : dz, dx);
    else
        status = lstm_dense_forward(dense, rows, null == 0 ? NULL : x, null == 1 ? NULL : z);
    if (!check_status(backward ? "lstm_dense_backward" : "lstm_dense_forward", status, v)) {
        CHECK(s->dense == NULL || same_floats(grads, grads_before, count),
              "a failed dense call changed the gradients");
        CHECK(backward ? all_canary(dx, absurd ? 0 : rows * I)
                       : z == dummy || all_canary(z, rows * O),
              "a failed dense call wrote its output");
        return;
    }
    if (tame)
        check_dense_products(backward, rows, I, O, params, grads_before, grads, x, z, dz, dx);
}

static void op_sequence_last(session *s, reader *r, scratch *sc)
{
    (void)s;
    const bool backward = take_u8(r) & 1;
    const size_t T = take_size(r, SMALL_STEPS), B = take_size(r, SMALL_BATCH),
                 features = take_size(r, SMALL_SIZE);
    uint8_t b = take_u8(r);
    const uint32_t flags = b < 0xF0 ? (uint32_t)(b & LSTM_BATCH_FIRST) : take_u32(r);
    const int null = take_null(r, 2);
    verdict v = {0, 0};
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (T == 0 || B == 0 || features == 0 || features > LSTM_MAX_SIZE)
        v.broken |= BIT(LSTM_E_SIZE);
    size_t elements;
    bool absurd = v.broken != 0;
    if (!mul3(T, B, features, &elements) || floats_absurd(elements)) {
        v.broken |= BIT(LSTM_E_OVERFLOW);
        absurd = true;
    }
    if (flags & ~LSTM_BATCH_FIRST)
        v.broken |= BIT(LSTM_E_ARG);
    float dummy[1] = {0.0f};
    const size_t *lengths = NULL;
    const float *src = dummy;
    float *dst = dummy;
    if (!absurd) {
        if (T * B > MAX_ROWS || !floats_fit(elements))
            return;
        lengths = take_lengths(r, sc, T, B, &v);
        input in = take_input(r, sc, backward ? B * features : elements, false);
        if (backward && in.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        /* the gather checks the rows it takes: refused if the poison is in one */
        if (!backward && in.poisoned != SIZE_MAX)
            v.tolerated |= BIT(LSTM_E_NONFINITE);
        src = in.data;
        dst = new_output(sc, backward ? elements : B * features);
    }
    arm_message();
    lstm_status status =
        backward ? lstm_sequence_last_backward(T, B, features, flags, lengths,
                                               null == 0 ? NULL : src, null == 1 ? NULL : dst)
                 : lstm_sequence_last(T, B, features, flags, lengths, null == 0 ? NULL : src,
                                      null == 1 ? NULL : dst);
    const size_t dst_count = absurd ? 1 : backward ? elements : B * features;
    if (!check_status(backward ? "lstm_sequence_last_backward" : "lstm_sequence_last", status, v)) {
        CHECK(all_canary(dst, absurd ? 0 : dst_count), "a failed gather wrote its output");
        return;
    }
    const bool batch_first = (flags & LSTM_BATCH_FIRST) != 0;
    for (size_t seq = 0; seq < B; seq++) {
        const size_t last = (lengths != NULL ? lengths[seq] : T) - 1;
        for (size_t t = 0; t < T; t++) {
            const size_t row = sequence_row(batch_first, T, B, t, seq);
            for (size_t j = 0; j < features; j++) {
                if (!backward && t == last)
                    CHECK(memcmp(&dst[seq * features + j], &src[row * features + j],
                                 sizeof(float)) == 0,
                          "last[%zu][%zu] is not y at step %zu", seq, j, t);
                if (backward)
                    CHECK(t == last ? memcmp(&dst[row * features + j], &src[seq * features + j],
                                             sizeof(float)) == 0
                                    : dst[row * features + j] == 0.0f,
                          "dy at step %zu of sequence %zu, feature %zu", t, seq, j);
            }
        }
    }
}

static void op_loss(session *s, reader *r, scratch *sc)
{
    (void)s;
    const uint8_t kind = take_u8(r) % 3;
    const size_t rows = take_size(r, 8), classes = kind == 0 ? take_size(r, SMALL_SIZE) : 1;
    const int null = take_null(r, 3); /* logits or predictions, targets, loss */
    verdict v = {0, 0};
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (rows == 0 || classes == 0 || (kind == 0 && classes > LSTM_MAX_SIZE))
        v.broken |= BIT(LSTM_E_SIZE);
    size_t count;
    bool absurd = v.broken & BIT(LSTM_E_SIZE);
    if (__builtin_mul_overflow(rows, classes, &count) || floats_absurd(count)) {
        v.broken |= BIT(LSTM_E_OVERFLOW);
        absurd = true;
    }
    if (!absurd && (v.broken & BIT(LSTM_E_NULL)))
        absurd = true; /* nothing is read */
    if (!absurd && !floats_fit(count))
        return;
    float dummy_f[1] = {0.0f};
    int32_t dummy_t[1] = {0};
    const float *logits = dummy_f, *targets_f = dummy_f;
    const int32_t *targets = dummy_t;
    float *grad = NULL;
    int32_t ignore_index = -100;
    if (!absurd) {
        input in = take_input(r, sc, count, false);
        if (in.poisoned != SIZE_MAX)
            v.broken |= BIT(LSTM_E_NONFINITE);
        logits = in.data;
        if (kind == 0) {
            uint8_t b = take_u8(r);
            ignore_index = b < 0x80 ? -100 : (int32_t)take_u32(r);
            int32_t *t = scratch_alloc(sc, rows * sizeof *t);
            for (size_t row = 0; row < rows; row++) {
                b = take_u8(r);
                t[row] = b < 0xE0 ? (int32_t)(b % classes) : (int32_t[]){-1,
                                                                         (int32_t)classes,
                                                                         ignore_index,
                                                                         INT32_MIN,
                                                                         INT32_MAX,
                                                                         -100,
                                                                         0,
                                                                         1}[b % 8];
                if (t[row] != ignore_index && (t[row] < 0 || (size_t)t[row] >= classes))
                    v.broken |= BIT(LSTM_E_ARG);
            }
            targets = t;
        } else {
            float *t = scratch_alloc(sc, count * sizeof *t);
            uint8_t b = take_u8(r);
            /* BCE targets in [0, 1] (sometimes not); MSE targets anywhere */
            fill_values(r, t, count, kind == 1 ? (b < 0xE0 ? 1.0f : 1.5f) : TAME);
            for (size_t k = 0; kind == 1 && k < count; k++) {
                if (b < 0xE0)
                    t[k] = fabsf(t[k]);
                if (!(t[k] >= 0.0f && t[k] <= 1.0f))
                    v.broken |= BIT(LSTM_E_ARG);
            }
            if (poison(r, t, count) != SIZE_MAX)
                v.broken |= BIT(LSTM_E_NONFINITE);
            targets_f = t;
        }
        grad = take_output(r, sc, count);
    }
    double loss = NAN;
    arm_message();
    lstm_status status;
    const char *name;
    switch (kind) {
    case 0:
        name = "lstm_loss_cross_entropy";
        status = lstm_loss_cross_entropy(rows, classes, null == 0 ? NULL : logits,
                                         null == 1 ? NULL : targets, ignore_index,
                                         null == 2 ? NULL : &loss, grad);
        break;
    case 1:
        name = "lstm_loss_bce_with_logits";
        status =
            lstm_loss_bce_with_logits(rows, null == 0 ? NULL : logits, null == 1 ? NULL : targets_f,
                                      null == 2 ? NULL : &loss, grad);
        break;
    default:
        name = "lstm_loss_mse";
        status = lstm_loss_mse(rows, null == 0 ? NULL : logits, null == 1 ? NULL : targets_f,
                               null == 2 ? NULL : &loss, grad);
        break;
    }
    if (!check_status(name, status, v)) {
        CHECK(isnan(loss) && all_canary(grad, absurd ? 0 : count), "a failed %s wrote an output",
              name);
        return;
    }
    /* Each loss is >= 0 (cross-entropy: log-sum-exp >= max >= z_target). */
    CHECK(isfinite(loss) && loss >= 0.0, "%s = %g", name, loss);
    CHECK(none_canary(grad, count), "%s left its gradient unwritten", name);
    for (size_t row = 0; kind == 0 && grad != NULL && row < rows; row++) {
        double sum = 0.0;
        for (size_t k = 0; k < classes; k++)
            sum += grad[row * classes + k];
        /* softmax - one-hot sums to 0; an ignored row is 0 */
        CHECK(fabs(sum) <= 1e-5, "cross-entropy gradient row %zu sums to %g", row, sum);
    }
}

/* ---- the optimizer ----------------------------------------------------------------- */

typedef struct options_case {
    struct {
        lstm_optim_options options;
        unsigned char newer[16];
    } caller;
    verdict v;
} options_case;

/* A real option: NaN or below lo (or at or above an open hi) breaks the rule;
 * +inf above a closed-infinite range is tolerated (PyTorch takes it, the
 * library refuses it: "finite" is only said of some). */
static void check_real(double value, double lo, double hi, bool used, verdict *v)
{
    if (!used)
        return;
    if (isnan(value) || value < lo || value >= hi)
        v->broken |= BIT(LSTM_E_ARG);
    else if (isinf(value))
        v->tolerated |= BIT(LSTM_E_ARG);
}

static void take_options(reader *r, options_case *oc)
{
    memset(oc, 0, sizeof *oc);
    lstm_optim_options *o = &oc->caller.options;
    uint8_t b = take_u8(r);
    const int kind = b < 0xF0 ? b % 5 : (int[]){5, -1, 100, INT_MAX}[b % 4];
    const lstm_optim_kind known = (lstm_optim_kind)(kind >= 0 && kind <= 4 ? kind : 0);
    CHECK(lstm_optim_options_init(o, sizeof *o, known) == LSTM_OK, "lstm_optim_options_init");
    o->kind = (lstm_optim_kind)kind;
    b = take_u8(r);
    o->flags =
        b < 0xE0 ? (uint32_t)(b & 0xF) | (b >= 0xD0 ? LSTM_OPTIM_LAZY_ROWS : 0u) : take_u32(r);
    double *fields[] = {
        &o->lr,    &o->weight_decay, &o->momentum, &o->dampening, &o->alpha,
        &o->beta1, &o->beta2,        &o->eps,      &o->lr_decay,  &o->initial_accumulator_value};
    for (size_t n = 0; n < sizeof fields / sizeof fields[0]; n++)
        if (take_u8(r) >= 0xC0)
            *fields[n] = take_real(r, 0.0, 1.0);
    b = take_u8(r);
    o->threads = b < 0xF0 ? (uint32_t)(b % 4) : take_u32(r);
    o->struct_size = take_struct_size(r, sizeof *o, oc->caller.newer, sizeof oc->caller.newer);

    verdict *v = &oc->v;
    /* Every older size take_struct_size() makes is below the first version. */
    if (o->struct_size < sizeof *o ||
        !newer_bytes_zero((const unsigned char *)&oc->caller, sizeof *o, o->struct_size)) {
        v->broken |= BIT(LSTM_E_ARG);
        return;
    }
    /* lstm/optim.h: ranges by field; "fields a kind does not use are ignored" */
    const bool sgd = kind == LSTM_OPTIM_SGD, adagrad = kind == LSTM_OPTIM_ADAGRAD,
               rmsprop = kind == LSTM_OPTIM_RMSPROP,
               adam = kind == LSTM_OPTIM_ADAM || kind == LSTM_OPTIM_ADAMW;
    if (kind < 0 || kind > 4 || (o->flags & ~0x1Fu) != 0) {
        v->broken |= BIT(LSTM_E_ARG);
        return;
    }
    check_real(o->lr, 0.0, INFINITY, true, v);
    check_real(o->weight_decay, 0.0, INFINITY, true, v);
    check_real(o->momentum, 0.0, INFINITY, sgd || rmsprop, v);
    /* dampening: ">= 0" says the header; PyTorch and the library take any finite value */
    if (sgd && (isnan(o->dampening) || o->dampening == -INFINITY))
        v->broken |= BIT(LSTM_E_ARG);
    else if (sgd && (o->dampening < 0.0 || isinf(o->dampening)))
        v->tolerated |= BIT(LSTM_E_ARG);
    check_real(o->alpha, 0.0, INFINITY, rmsprop, v);
    check_real(o->beta1, 0.0, 1.0, adam, v);
    check_real(o->beta2, 0.0, 1.0, adam, v);
    check_real(o->eps, 0.0, INFINITY, adagrad || rmsprop || adam, v);
    check_real(o->lr_decay, 0.0, INFINITY, adagrad, v);
    check_real(o->initial_accumulator_value, 0.0, INFINITY, adagrad, v);
    if (sgd && (o->flags & LSTM_OPTIM_NESTEROV) && !(o->momentum > 0.0 && o->dampening == 0.0))
        v->broken |= BIT(LSTM_E_ARG);
    /* LSTM_OPTIM_LAZY_ROWS: SGD without momentum and weight decay, Adam
     * without weight decay and AMSGrad, no other kind */
    if ((o->flags & LSTM_OPTIM_LAZY_ROWS) &&
        (sgd                       ? o->momentum != 0.0 || o->weight_decay != 0.0
         : kind == LSTM_OPTIM_ADAM ? o->weight_decay != 0.0 || (o->flags & LSTM_OPTIM_AMSGRAD) != 0
                                   : true))
        v->broken |= BIT(LSTM_E_ARG);
}

static bool overlaps(const float *a, size_t a_count, const float *b, size_t b_count)
{
    return (uintptr_t)a < (uintptr_t)(b + b_count) && (uintptr_t)b < (uintptr_t)(a + a_count);
}

static bool bound_grads_finite(const session *s)
{
    for (size_t n = 0; n < s->binding_count; n++)
        if (!all_finite(s->bindings[n].grads, s->bindings[n].count))
            return false;
    return true;
}

static double bound_grad_norm(const session *s)
{
    double sum = 0.0;
    for (size_t n = 0; n < s->binding_count; n++)
        for (size_t k = 0; k < s->bindings[n].count; k++)
            sum += (double)s->bindings[n].grads[k] * s->bindings[n].grads[k];
    return sqrt(sum);
}

/* The optimizer's state and every bound parameter, to tell "unchanged". */
static void *optim_snapshot(const session *s, scratch *sc, size_t *bytes)
{
    size_t state_bytes;
    CHECK(lstm_optim_state_size(s->optim, &state_bytes) == LSTM_OK, "lstm_optim_state_size");
    size_t total = state_bytes;
    for (size_t n = 0; n < s->binding_count; n++)
        total += s->bindings[n].count * sizeof(float);
    unsigned char *snapshot = scratch_alloc(sc, total);
    /* a state holding NaN or infinity cannot be saved (lstm/common.h); then
     * only the bound parameters are compared */
    const lstm_status saved = lstm_optim_save_state(s->optim, snapshot, state_bytes);
    CHECK(saved == LSTM_OK || saved == LSTM_E_NONFINITE, "lstm_optim_save_state");
    if (saved != LSTM_OK)
        memset(snapshot, 0, state_bytes);
    size_t at = state_bytes;
    for (size_t n = 0; n < s->binding_count; n++) {
        memcpy(snapshot + at, s->bindings[n].params, s->bindings[n].count * sizeof(float));
        at += s->bindings[n].count * sizeof(float);
    }
    *bytes = total;
    return snapshot;
}

/* Whether every value of the optimizer's state is finite (a state with an
 * infinity, from huge gradients, is refused by every load). */
static bool optim_state_finite(const session *s, scratch *sc)
{
    size_t bytes;
    CHECK(lstm_optim_state_size(s->optim, &bytes) == LSTM_OK, "lstm_optim_state_size");
    unsigned char *state = scratch_alloc(sc, bytes);
    const lstm_status saved = lstm_optim_save_state(s->optim, state, bytes);
    if (saved == LSTM_E_NONFINITE) /* saving refuses such a state */
        return false;
    CHECK(saved == LSTM_OK, "lstm_optim_save_state");
    /* the values are little-endian on every host (lstm/optim.h) */
    for (size_t at = 40; at + sizeof(float) <= bytes; at += sizeof(float)) {
        const uint32_t bits = (uint32_t)state[at] | (uint32_t)state[at + 1] << 8 |
                              (uint32_t)state[at + 2] << 16 | (uint32_t)state[at + 3] << 24;
        float value;
        memcpy(&value, &bits, sizeof value);
        if (!isfinite(value))
            return false;
    }
    return true;
}

static void check_unchanged(const session *s, scratch *sc, const void *before, size_t bytes,
                            const char *call)
{
    size_t now_bytes;
    const void *now = optim_snapshot(s, sc, &now_bytes);
    CHECK(now_bytes == bytes && memcmp(now, before, bytes) == 0,
          "a failed %s changed the optimizer or a parameter", call);
}

static void call_bind(session *s, reader *r, float *params, float *grads, size_t count, int owner)
{
    const int null = take_null(r, 3);
    const size_t given = take_count(r, count);
    verdict v = {0, 0};
    uint64_t steps = 0;
    if (s->optim == NULL || null >= 0 || params == NULL)
        v.broken |= BIT(LSTM_E_NULL);
    else {
        CHECK(lstm_optim_step_count(s->optim, &steps) == LSTM_OK, "lstm_optim_step_count");
        if (given == 0)
            v.broken |= BIT(LSTM_E_SIZE);
        if (steps != 0)
            v.broken |= BIT(LSTM_E_STATE);
        if (given > count) /* a count the buffers do not have: refused or never read */
            return;
        if (given != 0 && overlaps(params, given, grads, given))
            v.broken |= BIT(LSTM_E_ARG);
        for (size_t n = 0; given != 0 && n < s->binding_count; n++) {
            const binding *b = &s->bindings[n];
            if (overlaps(params, given, b->params, b->count) ||
                overlaps(params, given, b->grads, b->count) ||
                overlaps(grads, given, b->params, b->count) ||
                overlaps(grads, given, b->grads, b->count))
                v.broken |= BIT(LSTM_E_ARG);
        }
    }
    const size_t before = lstm_optim_param_count(s->optim);
    arm_message();
    lstm_status status = lstm_optim_add_buffer(
        null == 0 ? NULL : s->optim, null == 1 ? NULL : params, null == 2 ? NULL : grads, given);
    if (!check_status("lstm_optim_add_buffer", status, v)) {
        CHECK(lstm_optim_param_count(s->optim) == before, "a failed bind changed the count");
        return;
    }
    CHECK(lstm_optim_param_count(s->optim) == before + given, "bound %zu + %zu gives %zu", before,
          given, lstm_optim_param_count(s->optim));
    CHECK(s->binding_count < MAX_BINDINGS, "too many bindings");
    s->bindings[s->binding_count++] = (binding){params, grads, given, owner, false, false};
}

static void optim_create(session *s, reader *r)
{
    options_case oc;
    take_options(r, &oc);
    const int null = take_null(r, 2);
    verdict v = oc.v;
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    lstm_optim *const sentinel = (lstm_optim *)&oc, *optim = sentinel;
    arm_message();
    lstm_status status =
        lstm_optim_create(null == 0 ? NULL : &oc.caller.options, null == 1 ? NULL : &optim);
    if (!check_status("lstm_optim_create", status, v)) {
        CHECK(optim == sentinel, "a failed lstm_optim_create wrote its out pointer");
        return;
    }
    drop_optim(s);
    s->optim = optim;
    s->optim_flags = oc.caller.options.flags;
    CHECK(lstm_optim_param_count(optim) == 0, "a new optimizer has parameters");
}

/* Binds a model's buffers (lstm_optim_add_model() or _add_buffer()), or the dense layer's. */
static void optim_bind(session *s, reader *r, bool dense)
{
    if (dense) {
        float *params = NULL, *grads = NULL;
        if (s->dense != NULL) {
            lstm_dense_params(s->dense, &params, NULL);
            lstm_dense_grads(s->dense, &grads, NULL);
        }
        if (take_u8(r) >= 0xF0)
            grads = params; /* the same buffer twice: they overlap */
        call_bind(s, r, params, grads, s->dense_in * s->dense_out + s->dense_out, OWNER_DENSE);
        return;
    }
    const int slot = take_u8(r) & 1;
    lstm_model *model = s->slots[slot].model;
    if (!(take_u8(r) & 1)) {
        call_bind(s, r, model != NULL ? model_params(model, NULL) : NULL,
                  model != NULL ? model_grads(model, NULL) : NULL, s->slots[slot].param_count,
                  slot);
        return;
    }
    verdict v = {0, 0};
    if (s->optim == NULL || model == NULL)
        v.broken |= BIT(LSTM_E_NULL);
    else {
        uint64_t steps;
        CHECK(lstm_optim_step_count(s->optim, &steps) == LSTM_OK, "lstm_optim_step_count");
        if (steps != 0)
            v.broken |= BIT(LSTM_E_STATE);
        if (optim_binds(s, slot))
            v.broken |= BIT(LSTM_E_ARG);
    }
    arm_message();
    if (check_status("lstm_optim_add_model", lstm_optim_add_model(s->optim, model), v))
        s->bindings[s->binding_count++] = (binding){model_params(model, NULL),
                                                    model_grads(model, NULL),
                                                    s->slots[slot].param_count,
                                                    slot,
                                                    false,
                                                    false};
}

/* clip_grad_norm: torch's rule, the norm before clipping; clip_grad_value. */
static bool optim_clip(session *s, reader *r, lstm_optim *optim, bool by_norm, verdict v)
{
    const double limit = take_real(r, 0.0, by_norm ? 10.0 : 2.0);
    const bool null_total = by_norm && (take_u8(r) & 1);
    if (!(isfinite(limit) && (by_norm ? limit > 0.0 : limit >= 0.0)))
        v.broken |= BIT(LSTM_E_ARG);
    const bool finite = optim != NULL && bound_grads_finite(s);
    if (optim != NULL && !finite)
        v.broken |= BIT(LSTM_E_NONFINITE);
    const double norm = finite ? bound_grad_norm(s) : NAN;
    double total = -1.0;
    arm_message();
    if (!by_norm) {
        if (!check_status("lstm_optim_clip_grad_value", lstm_optim_clip_grad_value(optim, limit),
                          v))
            return false;
        for (size_t n = 0; n < s->binding_count; n++)
            CHECK(max_abs(s->bindings[n].grads, s->bindings[n].count) <= (float)limit,
                  "a gradient above %g after clip_grad_value", limit);
        return true;
    }
    lstm_status status = lstm_optim_clip_grad_norm(optim, limit, null_total ? NULL : &total);
    if (!check_status("lstm_optim_clip_grad_norm", status, v)) {
        CHECK(total == -1.0, "a failed clip wrote total_norm");
        return false;
    }
    CHECK(null_total || fabs(total - norm) <= 1e-9 * norm, "total_norm %g, computed %g", total,
          norm);
    const double after = bound_grad_norm(s);
    CHECK(after <= limit * (1.0 + 1e-5) + 1e-30 || after <= norm * (1.0 + 1e-6),
          "norm %g after clipping to %g (was %g)", after, limit, norm);
    return true;
}

/* set_lr, then get_lr: the new rate, or the old one after a failure. */
static void optim_lr(reader *r, lstm_optim *optim, verdict v)
{
    const double lr = take_real(r, 0.0, 1.0);
    if (!(isfinite(lr) && lr >= 0.0))
        v.broken |= BIT(LSTM_E_ARG);
    double before = NAN, now = NAN;
    if (optim != NULL)
        CHECK(lstm_optim_get_lr(optim, &before) == LSTM_OK, "lstm_optim_get_lr");
    arm_message();
    lstm_status status = lstm_optim_set_lr(optim, lr);
    lstm_status got = lstm_optim_get_lr(optim, &now);
    if (check_status("lstm_optim_set_lr", status, v))
        CHECK(got == LSTM_OK && now == lr, "lr %g after set_lr(%g)", now, lr);
    else if (optim != NULL)
        CHECK(got == LSTM_OK && memcmp(&now, &before, sizeof now) == 0,
              "a failed set_lr changed lr");
    arm_message();
    check_status("lstm_optim_get_lr(NULL)", lstm_optim_get_lr(optim, NULL),
                 (verdict){BIT(LSTM_E_NULL), 0});
}

/* Saves the state, maybe damages it, loads it back; false when the load failed. */
static bool optim_state_round_trip(session *s, reader *r, scratch *sc, lstm_optim *optim, verdict v)
{
    const bool null_bytes = take_null(r, 1) >= 0;
    size_t bytes = 0;
    if (null_bytes)
        v.broken |= BIT(LSTM_E_NULL);
    arm_message();
    lstm_status status = lstm_optim_state_size(optim, null_bytes ? NULL : &bytes);
    if (!check_status("lstm_optim_state_size", status, v))
        return true;
    const size_t count = lstm_optim_param_count(optim);
    CHECK(bytes >= 40 && (bytes - 40) % (4 * (count != 0 ? count : 1)) == 0,
          "an optimizer state of %zu bytes for %zu parameters", bytes, count);
    const size_t given = take_count(r, bytes);
    if (given > bytes + 1)
        return true;
    unsigned char *state = scratch_alloc(sc, bytes + 1);
    memset(state, 0xCC, bytes + 1);
    arm_message();
    const bool finite_state = optim_state_finite(s, sc);
    arm_message();
    status = lstm_optim_save_state(optim, state, given);
    if (!check_status("lstm_optim_save_state", status,
                      (verdict){(given != bytes ? BIT(LSTM_E_SHAPE) : 0) |
                                    (finite_state ? 0 : BIT(LSTM_E_NONFINITE)),
                                0})) {
        for (size_t k = 0; k <= bytes; k++)
            CHECK(state[k] == 0xCC, "a failed save_state wrote byte %zu", k);
        return true;
    }
    /* damage: a flipped byte, or a shorter length */
    const uint8_t b = take_u8(r);
    size_t length = bytes;
    verdict load_v = {0, 0};
    if (b >= 0xC0) {
        if (b & 1) {
            state[take_u32(r) % bytes] ^= (uint8_t)(take_u8(r) | 1);
        } else {
            length = take_u32(r) % bytes;
            if (length < 40)
                load_v.broken |= BIT(LSTM_E_SHAPE);
        }
        load_v.tolerated |= BIT(LSTM_E_ARG) | BIT(LSTM_E_SHAPE) | BIT(LSTM_E_NONFINITE);
    }
    if (!optim_state_finite(s, sc))
        load_v.tolerated |= BIT(LSTM_E_NONFINITE);
    arm_message();
    if (!check_status("lstm_optim_load_state", lstm_optim_load_state(optim, state, length), load_v))
        return false;
    /* what was taken is what is saved again */
    CHECK(length == bytes, "load_state took %zu of %zu bytes", length, bytes);
    unsigned char *again = scratch_alloc(sc, bytes);
    CHECK(lstm_optim_save_state(optim, again, bytes) == LSTM_OK, "save_state again");
    CHECK(memcmp(again, state, bytes) == 0, "a loaded state saves differently");
    return true;
}

static void op_optim(session *s, reader *r, scratch *sc)
{
    const uint8_t what = take_u8(r) % 11; /* 9 and 10: the state */
    switch (what) {
    case 0: optim_create(s, r); return;
    case 1: drop_optim(s); return;
    case 2:
    case 3: optim_bind(s, r, what == 3); return;
    default: break;
    }
    const bool null_optim = take_null(r, 1) >= 0 || s->optim == NULL;
    lstm_optim *optim = null_optim ? NULL : s->optim;
    verdict v = {null_optim ? BIT(LSTM_E_NULL) : 0, 0};
    size_t snapshot_bytes = 0;
    const void *snapshot = optim != NULL ? optim_snapshot(s, sc, &snapshot_bytes) : NULL;
    uint64_t steps_before = 0, steps = 0;
    if (optim != NULL)
        CHECK(lstm_optim_step_count(optim, &steps_before) == LSTM_OK, "lstm_optim_step_count");
    bool ok;
    switch (what) {
    case 4: /* step: all or nothing, one more in the count */
        if (optim != NULL && (s->binding_count == 0 || steps_before >= LSTM_OPTIM_MAX_STEPS))
            v.broken |= BIT(LSTM_E_STATE);
        else if (optim != NULL && !bound_grads_finite(s))
            v.broken |= BIT(LSTM_E_NONFINITE);
        else if (optim != NULL) /* finite values that would overflow, a NaN parameter */
            v.tolerated |= BIT(LSTM_E_NONFINITE);
        const binding *lazy = NULL;
        for (size_t n = 0; n < s->binding_count; n++)
            if (s->bindings[n].lazy)
                lazy = &s->bindings[n];
        const float *lazy_before = lazy != NULL ? copy_floats(sc, lazy->params, lazy->count) : NULL;
        arm_message();
        ok = check_status("lstm_optim_step", lstm_optim_step(optim), v);
        if (ok && (optim_binds(s, 0) || optim_binds(s, 1))) {
            /* (a model bound by lstm_optim_add_model() is known to change;
             * the harness does not tell the two bindings apart) */
            s->workspace_unnoticed = true;
            s->state_unnoticed = true;
        }
        if (ok) {
            CHECK(lstm_optim_step_count(optim, &steps) == LSTM_OK && steps == steps_before + 1,
                  "the step count went from %llu to %llu", (unsigned long long)steps_before,
                  (unsigned long long)steps);
            CHECK(optim_state_finite(s, sc), "a step left NaN or infinity in the state");
            /* a lazy step moves the touched rows only (the padding row never) */
            const size_t E = s->embedding_dim;
            for (size_t row = 0; lazy != NULL && row < s->vocab; row++)
                CHECK(s->in_touched[row] ||
                          same_floats(lazy->params + row * E, lazy_before + row * E, E),
                      "a lazy step moved row %zu, which no backward touched", row);
        }
        break;
    case 5:
        arm_message();
        ok = check_status("lstm_optim_zero_grads", lstm_optim_zero_grads(optim), v);
        if (ok) {
            CHECK(bound_grad_norm(s) == 0.0, "lstm_optim_zero_grads left a gradient");
            for (size_t n = 0; n < s->binding_count; n++)
                if (s->bindings[n].embedding)
                    touched_clear(s);
            check_touched(s);
        }
        break;
    case 6:
    case 7: ok = optim_clip(s, r, optim, what == 6, v); break;
    case 8: optim_lr(r, optim, v); return;
    default: ok = optim_state_round_trip(s, r, sc, optim, v); break;
    }
    if (!ok && optim != NULL)
        check_unchanged(s, sc, snapshot, snapshot_bytes, "an optimizer call");
}

/* ---- the embedding layer ------------------------------------------------------------ */

/* A padding_idx: mostly in [-V - 1, V] for a small V, sometimes extreme. */
static int64_t take_padding_idx(reader *r, size_t V)
{
    static const int64_t special[8] = {INT64_MIN,
                                       INT64_MAX,
                                       -1,
                                       0,
                                       (int64_t)1 << 31,
                                       -((int64_t)1 << 31),
                                       -((int64_t)1 << 31) - 1,
                                       ((int64_t)1 << 31) - 1};
    const uint8_t b = take_u8(r);
    if (b >= 0xF0 || V == 0 || V > SMALL_SIZE)
        return special[b % 8];
    return (int64_t)(b % (2 * V + 3)) - (int64_t)V - 1;
}

/* The verdict of lstm_embedding_create() for the configuration it reads;
 * *padding_row receives the padding row when it is accepted. */
static verdict embedding_config_verdict(const lstm_embedding_config *c, int64_t *padding_row)
{
    verdict v = {0, 0};
    const size_t V = c->num_embeddings, E = c->embedding_dim;
    if (V == 0 || V > LSTM_MAX_VOCAB || E == 0 || E > LSTM_MAX_SIZE)
        v.broken |= BIT(LSTM_E_SIZE);
    if ((c->flags & ~LSTM_EMBEDDING_PADDING) != 0)
        v.broken |= BIT(LSTM_E_ARG);
    *padding_row = -1;
    if (!(c->flags & LSTM_EMBEDDING_PADDING)) {
        if (c->padding_idx != 0)
            v.broken |= BIT(LSTM_E_ARG);
    } else if (V <= LSTM_MAX_VOCAB) {
        const int64_t rows = (int64_t)V;
        if (c->padding_idx < -rows || c->padding_idx >= rows)
            v.broken |= BIT(LSTM_E_ARG);
        else
            *padding_row = c->padding_idx < 0 ? rows + c->padding_idx : c->padding_idx;
    }
    size_t count;
    if (v.broken == 0 && !mul3(V, E, sizeof(float), &count))
        v.broken |= BIT(LSTM_E_OVERFLOW);
    return v;
}

static void embedding_create(session *s, reader *r)
{
    struct {
        lstm_embedding_config config;
        unsigned char newer[16];
    } caller;
    memset(&caller, 0, sizeof caller);
    lstm_embedding_config *c = &caller.config;
    CHECK(lstm_embedding_config_init(c, sizeof *c) == LSTM_OK, "lstm_embedding_config_init");
    c->num_embeddings = take_size(r, SMALL_SIZE);
    c->embedding_dim = take_size(r, SMALL_SIZE);
    uint8_t b = take_u8(r);
    c->flags = b < 0xF0 ? (uint32_t)(b & LSTM_EMBEDDING_PADDING) : take_u32(r);
    b = take_u8(r);
    c->padding_idx =
        (b & 1) || (c->flags & LSTM_EMBEDDING_PADDING) ? take_padding_idx(r, c->num_embeddings) : 0;
    c->struct_size = take_struct_size(r, sizeof *c, caller.newer, sizeof caller.newer);
    const int null = take_null(r, 2); /* config, out */

    verdict v = {0, 0};
    int64_t padding_row = -1;
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (c->struct_size < EMBEDDING_CONFIG_V1_SIZE ||
        !newer_bytes_zero((const unsigned char *)&caller, sizeof *c, c->struct_size))
        v.broken |= BIT(LSTM_E_ARG);
    else {
        const verdict config = embedding_config_verdict(c, &padding_row);
        v.broken |= config.broken;
    }
    const size_t V = c->num_embeddings, E = c->embedding_dim;
    if (v.broken == 0 && (V > MAX_PARAMS || E > MAX_PARAMS || V * E > MAX_PARAMS))
        return;
    lstm_embedding *const sentinel = (lstm_embedding *)&v, *embedding = sentinel;
    arm_message();
    lstm_status status = lstm_embedding_create(null == 0 ? NULL : c, null == 1 ? NULL : &embedding);
    if (!check_status("lstm_embedding_create", status, v)) {
        CHECK(embedding == sentinel, "a failed lstm_embedding_create wrote its out pointer");
        return;
    }
    CHECK(lstm_embedding_param_count(embedding) == V * E, "embedding param count %zu",
          lstm_embedding_param_count(embedding));
    float *params = NULL, *grads = NULL;
    CHECK(lstm_embedding_params(embedding, &params, NULL) == LSTM_OK &&
              lstm_embedding_grads(embedding, &grads, NULL) == LSTM_OK,
          "lstm_embedding_params, _grads");
    CHECK(max_abs(params, V * E) == 0.0f && max_abs(grads, V * E) == 0.0f,
          "a new embedding is not zero");
    drop_embedding(s);
    s->embedding = embedding;
    s->vocab = V;
    s->embedding_dim = E;
    s->padding_row = padding_row;
}

/* lstm_embedding_get_config() and lstm_embedding_config_init() with a
 * caller's struct_size: never past its end, the configuration as created. */
static void embedding_config_calls(session *s, reader *r, bool get)
{
    unsigned char bytes[sizeof(lstm_embedding_config) + 16];
    memset(bytes, 0xCC, sizeof bytes);
    unsigned char newer[16] = {0};
    size_t struct_size = take_struct_size(r, sizeof(lstm_embedding_config), newer, sizeof newer);
    const bool null_config = take_null(r, 1) >= 0, null_embedding = get && take_u8(r) >= 0xF0;
    verdict v = {0, 0};
    if (null_config || (get && (null_embedding || s->embedding == NULL)))
        v.broken |= BIT(LSTM_E_NULL);
    if (struct_size < EMBEDDING_CONFIG_V1_SIZE)
        v.broken |= BIT(LSTM_E_ARG);
    memcpy(bytes, &struct_size, sizeof struct_size);
    lstm_embedding_config *config = null_config ? NULL : (lstm_embedding_config *)(void *)bytes;
    arm_message();
    const lstm_status status =
        get ? lstm_embedding_get_config(null_embedding ? NULL : s->embedding, config)
            : lstm_embedding_config_init(config, struct_size);
    for (size_t k = status == LSTM_OK ? struct_size : sizeof struct_size; k < sizeof bytes; k++)
        CHECK(bytes[k] == 0xCC, "a %s of struct_size %zu wrote byte %zu",
              get ? "lstm_embedding_get_config" : "lstm_embedding_config_init", struct_size, k);
    if (!check_status(get ? "lstm_embedding_get_config" : "lstm_embedding_config_init", status, v))
        return;
    lstm_embedding_config expected;
    memset(&expected, 0, sizeof expected);
    if (get) {
        expected.num_embeddings = s->vocab;
        expected.embedding_dim = s->embedding_dim;
        expected.flags = s->padding_row >= 0 ? LSTM_EMBEDDING_PADDING : 0;
        expected.padding_idx = s->padding_row >= 0 ? s->padding_row : 0;
    }
    lstm_embedding_config got;
    memcpy(&got, bytes, sizeof got);
    CHECK(got.struct_size == struct_size && got.num_embeddings == expected.num_embeddings &&
              got.embedding_dim == expected.embedding_dim && got.flags == expected.flags &&
              got.padding_idx == expected.padding_idx,
          "the embedding configuration read back differs");
    for (size_t k = sizeof got; k < struct_size; k++)
        CHECK(bytes[k] == 0, "a newer caller's byte %zu is not zero", k);
}

/* count ids for the session's layer: mostly valid, sometimes one bad at a
 * chosen place (*bad set). */
static int64_t *take_ids(reader *r, scratch *sc, size_t count, size_t V, bool *bad)
{
    int64_t *ids = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof *ids);
    uint64_t state = take_u8(r);
    for (size_t k = 0; k < count; k++)
        ids[k] = V != 0 ? (int64_t)(splitmix64(&state) % V) : 0;
    *bad = false;
    const uint8_t b = take_u8(r);
    if (count != 0 && b >= 0xE0) {
        static const int64_t offsets[4] = {0, 1, 1000, INT64_MAX};
        const size_t at = take_u32(r) % count;
        const int64_t rows = (int64_t)V;
        switch (b % 4) {
        case 0: ids[at] = rows + offsets[(b >> 2) % 3]; break; /* V, V + 1, V + 1000 */
        case 1: ids[at] = -1 - offsets[(b >> 2) % 3]; break;
        case 2: ids[at] = INT64_MIN; break;
        default: ids[at] = INT64_MAX; break;
        }
        *bad = true;
    }
    return ids;
}

/* lstm_embedding_forward() and _backward(): a gather, and a sum in order of
 * k, computed here in float as the header documents (the same bits). */
static void embedding_lookup(session *s, reader *r, scratch *sc, bool backward)
{
    const size_t count = take_size(r, MAX_ROWS);
    const int null = take_null(r, 3); /* embedding, ids, out or dout */
    const size_t V = s->vocab, E = s->embedding != NULL ? s->embedding_dim : 1;
    verdict v = {0, 0};
    bool absurd = true;
    if (null >= 0 || s->embedding == NULL)
        v.broken |= BIT(LSTM_E_NULL);
    size_t floats;
    if (count == 0)
        v.broken |= BIT(LSTM_E_SIZE);
    else if (!mul3(count, E, sizeof(float), &floats) || count > SIZE_MAX / sizeof(int64_t))
        v.broken |= BIT(LSTM_E_OVERFLOW);
    else
        absurd = false;
    int64_t one_id[1] = {0};
    float dummy[1] = {0.0f};
    const int64_t *ids = one_id;
    const float *dout = dummy;
    float *out = dummy;
    const bool real = s->embedding != NULL && !absurd && null < 0;
    if (real) {
        if (count > MAX_ROWS || !floats_fit(count * E))
            return;
        bool bad;
        ids = take_ids(r, sc, count, V, &bad);
        if (bad)
            v.broken |= BIT(LSTM_E_ARG);
        if (backward) {
            input din = take_input(r, sc, count * E, false);
            if (din.poisoned != SIZE_MAX && !bad) /* the ids are checked first */
                v.broken |= BIT(LSTM_E_NONFINITE);
            dout = din.data;
        } else {
            out = new_output(sc, count * E);
        }
    } else if (v.broken == 0) {
        return; /* valid but above the caps */
    }
    float *params = NULL, *grads = NULL;
    const size_t param_count = s->embedding != NULL ? V * E : 0;
    if (s->embedding != NULL) {
        CHECK(lstm_embedding_params(s->embedding, &params, NULL) == LSTM_OK &&
                  lstm_embedding_grads(s->embedding, &grads, NULL) == LSTM_OK,
              "lstm_embedding_params, _grads");
    }
    const float *grads_before = copy_floats(sc, grads, param_count);
    lstm_embedding *embedding = null == 0 ? NULL : s->embedding;
    const int64_t *ids_given = null == 1 ? NULL : ids;
    lstm_status status;
    arm_message();
    if (backward)
        status = lstm_embedding_backward(embedding, count, ids_given, null == 2 ? NULL : dout);
    else
        status = lstm_embedding_forward(embedding, count, ids_given, null == 2 ? NULL : out);
    const char *call = backward ? "lstm_embedding_backward" : "lstm_embedding_forward";
    if (!check_status(call, status, v)) {
        CHECK(same_floats(grads, grads_before, param_count), "a failed %s changed the gradients",
              call);
        CHECK(backward || !real || all_canary(out, count * E), "a failed %s wrote its output",
              call);
        check_touched(s);
        return;
    }
    if (!backward) {
        for (size_t k = 0; k < count; k++)
            CHECK(memcmp(out + k * E, params + (size_t)ids[k] * E, E * sizeof(float)) == 0,
                  "out[%zu] is not row %lld", k, (long long)ids[k]);
        CHECK(same_floats(grads, grads_before, param_count), "forward changed the gradients");
        return;
    }
    float *expected = copy_floats(sc, grads_before, param_count);
    for (size_t k = 0; k < count; k++) {
        if (ids[k] == s->padding_row)
            continue;
        for (size_t j = 0; j < E; j++)
            expected[(size_t)ids[k] * E + j] += dout[k * E + j];
        if (!s->in_touched[ids[k]]) { /* first touched: at the end of the list */
            s->in_touched[ids[k]] = true;
            s->touched[s->touched_count++] = (uint32_t)ids[k];
        }
    }
    check_touched(s);
    /* memcmp: NaN from infinities summed must match bit for bit too */
    CHECK(same_floats(grads, expected, param_count), "embedding gradients differ from the sum");
}

/* lstm_optim_add_embedding(): lazy with LSTM_OPTIM_LAZY_ROWS, else as add_buffer. */
static void embedding_bind(session *s, reader *r)
{
    const int null = take_null(r, 2); /* optim, embedding */
    lstm_optim *optim = null == 0 ? NULL : s->optim;
    lstm_embedding *embedding = null == 1 ? NULL : s->embedding;
    verdict v = {0, 0};
    if (optim == NULL || embedding == NULL) {
        v.broken |= BIT(LSTM_E_NULL);
    } else {
        uint64_t steps;
        CHECK(lstm_optim_step_count(optim, &steps) == LSTM_OK, "lstm_optim_step_count");
        if (steps != 0)
            v.broken |= BIT(LSTM_E_STATE);
        if (optim_binds(s, OWNER_EMBEDDING)) /* its buffers are bound already */
            v.broken |= BIT(LSTM_E_ARG);
    }
    const size_t before = lstm_optim_param_count(s->optim), count = s->vocab * s->embedding_dim;
    arm_message();
    if (!check_status("lstm_optim_add_embedding", lstm_optim_add_embedding(optim, embedding), v)) {
        CHECK(lstm_optim_param_count(s->optim) == before, "a failed bind changed the count");
        return;
    }
    CHECK(lstm_optim_param_count(s->optim) == before + count, "bound %zu + %zu gives %zu", before,
          count, lstm_optim_param_count(s->optim));
    CHECK(s->binding_count < MAX_BINDINGS, "too many bindings");
    float *params = NULL, *grads = NULL;
    lstm_embedding_params(s->embedding, &params, NULL);
    lstm_embedding_grads(s->embedding, &grads, NULL);
    s->bindings[s->binding_count++] = (binding){
        params, grads, count, OWNER_EMBEDDING, true, (s->optim_flags & LSTM_OPTIM_LAZY_ROWS) != 0};
}

/* lstm_embedding_touched_rows() with NULLs, lstm_embedding_zero_touched_grads(). */
static void embedding_touched(session *s, reader *r, scratch *sc)
{
    const int null = take_null(r, 3); /* embedding, rows, count */
    const uint32_t *rows = NULL;
    size_t count = SIZE_MAX;
    verdict v = {null >= 0 || s->embedding == NULL ? BIT(LSTM_E_NULL) : 0, 0};
    arm_message();
    const lstm_status status = lstm_embedding_touched_rows(
        null == 0 ? NULL : s->embedding, null == 1 ? NULL : &rows, null == 2 ? NULL : &count);
    if (check_status("lstm_embedding_touched_rows", status, v))
        check_touched(s);
    else
        CHECK(count == SIZE_MAX && rows == NULL, "a failed lstm_embedding_touched_rows wrote");
    if (!(take_u8(r) & 1))
        return;
    const bool null_zero = take_null(r, 1) >= 0 || s->embedding == NULL;
    float *grads = NULL;
    const size_t param_count = s->embedding != NULL ? s->vocab * s->embedding_dim : 0;
    if (s->embedding != NULL)
        lstm_embedding_grads(s->embedding, &grads, NULL);
    float *expected = copy_floats(sc, grads, param_count);
    for (size_t n = 0; n < s->touched_count; n++)
        memset(expected + (size_t)s->touched[n] * s->embedding_dim, 0,
               s->embedding_dim * sizeof(float));
    arm_message();
    if (!check_status("lstm_embedding_zero_touched_grads",
                      lstm_embedding_zero_touched_grads(null_zero ? NULL : s->embedding),
                      (verdict){null_zero ? BIT(LSTM_E_NULL) : 0, 0}))
        return;
    CHECK(same_floats(grads, expected, param_count),
          "lstm_embedding_zero_touched_grads: not the touched rows alone zeroed");
    touched_clear(s);
    check_touched(s);
}

static void op_embedding(session *s, reader *r, scratch *sc)
{
    const uint8_t what = take_u8(r) % 11;
    switch (what) {
    case 0: embedding_create(s, r); return;
    case 1:
        drop_embedding(s);
        lstm_embedding_destroy(NULL);
        CHECK(lstm_embedding_param_count(NULL) == 0, "a count of NULL is not 0");
        return;
    case 2:
    case 3: embedding_config_calls(s, r, what == 2); return;
    case 4:
    case 5: embedding_lookup(s, r, sc, what == 5); return;
    case 9: embedding_bind(s, r); return;
    case 10: embedding_touched(s, r, sc); return;
    case 8: {
        float *params = NULL, *grads = NULL;
        if (s->embedding != NULL) {
            lstm_embedding_params(s->embedding, &params, NULL);
            lstm_embedding_grads(s->embedding, &grads, NULL);
        }
        if (take_u8(r) >= 0xF0)
            grads = params; /* the same buffer twice: they overlap */
        call_bind(s, r, params, grads, s->embedding != NULL ? s->vocab * s->embedding_dim : 0,
                  OWNER_EMBEDDING);
        return;
    }
    default: break;
    }
    /* 6: init, 7: zero the gradients */
    const bool null = take_null(r, 1) >= 0 || s->embedding == NULL;
    verdict v = {null ? BIT(LSTM_E_NULL) : 0, 0};
    lstm_embedding *embedding = null ? NULL : s->embedding;
    const size_t count = s->embedding != NULL ? s->vocab * s->embedding_dim : 0;
    float *params = NULL, *grads = NULL;
    if (s->embedding != NULL) {
        lstm_embedding_params(s->embedding, &params, NULL);
        lstm_embedding_grads(s->embedding, &grads, NULL);
    }
    if (what == 7) {
        arm_message();
        if (check_status("lstm_embedding_zero_grads", lstm_embedding_zero_grads(embedding), v)) {
            CHECK(max_abs(grads, count) == 0.0f, "lstm_embedding_zero_grads left a gradient");
            touched_clear(s);
        }
        check_touched(s);
        return;
    }
    const uint64_t seed = take_u64(r);
    const float *grads_before = copy_floats(sc, grads, count);
    arm_message();
    if (!check_status("lstm_embedding_init", lstm_embedding_init(embedding, seed), v))
        return;
    /* N(0, 1) by Box-Muller in double: |value| < 8.6; the padding row zero */
    CHECK(max_abs(params, count) < 8.6f, "lstm_embedding_init gave %g",
          (double)max_abs(params, count));
    const size_t E = s->embedding_dim;
    for (size_t j = 0; s->padding_row >= 0 && j < E; j++)
        CHECK(params[(size_t)s->padding_row * E + j] == 0.0f, "padding row value %zu is %g", j,
              (double)params[(size_t)s->padding_row * E + j]);
    CHECK(same_floats(grads, grads_before, count), "lstm_embedding_init changed the gradients");
    float *first = copy_floats(sc, params, count);
    CHECK(lstm_embedding_init(embedding, seed) == LSTM_OK, "lstm_embedding_init again");
    CHECK(same_floats(params, first, count), "lstm_embedding_init is not reproducible");
}

/* ---- networks ------------------------------------------------------------------------- */

/* The first lstm_network_config ends after head_size (src/network.c). */
#define NETWORK_CONFIG_V1_SIZE (offsetof(lstm_network_config, head_size) + sizeof(size_t))

/* A head or loss value: mostly a known one (below `known`), sometimes not. */
static uint32_t take_kind(reader *r, uint32_t known)
{
    const uint8_t b = take_u8(r);
    return b < 0xF0 ? b % known : (uint32_t[]){known, known + 1, 0x80000000u, UINT32_MAX}[b % 4];
}

/* The verdict of how a network's parts are joined (checked before any part
 * is created). */
static verdict joints_verdict(uint32_t head, uint32_t loss, size_t head_size)
{
    verdict v = {0, 0};
    if (head > LSTM_HEAD_LAST_STEP || loss > LSTM_LOSS_MSE)
        v.broken |= BIT(LSTM_E_ARG);
    else if (head == LSTM_HEAD_NONE) {
        if (head_size != 0 || loss == LSTM_LOSS_CROSS_ENTROPY)
            v.broken |= BIT(LSTM_E_ARG);
    } else if (head_size == 0 || head_size > LSTM_MAX_SIZE)
        v.broken |= BIT(LSTM_E_SIZE);
    else if (loss == LSTM_LOSS_CROSS_ENTROPY && head_size < 2)
        v.broken |= BIT(LSTM_E_ARG);
    return v;
}

static void network_create(session *s, reader *r)
{
    lstm_config lc;
    CHECK(lstm_config_init(&lc, sizeof lc) == LSTM_OK, "lstm_config_init");
    lc.input_size = take_size(r, SMALL_SIZE);
    lc.hidden_size = take_size(r, SMALL_SIZE);
    lc.num_layers = 1 + take_u8(r) % 2;
    const uint8_t f = take_u8(r);
    lc.flags = f & (LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST);
    lc.proj_size =
        (f & 0x80) && lc.hidden_size > 1 && lc.hidden_size <= SMALL_SIZE ? lc.hidden_size - 1 : 0;
    const bool tokens = take_u8(r) & 1;
    lstm_embedding_config ec;
    CHECK(lstm_embedding_config_init(&ec, sizeof ec) == LSTM_OK, "lstm_embedding_config_init");
    ec.num_embeddings = take_size(r, SMALL_SIZE);
    ec.embedding_dim = take_u8(r) >= 0xF0 ? lc.input_size + 1 : lc.input_size;
    struct {
        lstm_network_config config;
        unsigned char newer[16];
    } caller;
    memset(&caller, 0, sizeof caller);
    lstm_network_config *c = &caller.config;
    CHECK(lstm_network_config_init(c, sizeof *c) == LSTM_OK, "lstm_network_config_init");
    c->embedding = tokens ? &ec : NULL;
    c->lstm = &lc;
    c->head = take_kind(r, 3);
    c->loss = take_kind(r, 4);
    c->head_size = take_size(r, SMALL_SIZE);
    c->struct_size = take_struct_size(r, sizeof *c, caller.newer, sizeof caller.newer);
    const int null = take_null(r, 2); /* config, out */

    verdict v = {0, 0};
    size_t param_count = 0, dense_in = 0;
    bool early = false, big = false; /* refused before any part exists; parts above the caps */
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (c->struct_size < NETWORK_CONFIG_V1_SIZE ||
        !newer_bytes_zero((const unsigned char *)&caller, sizeof *c, c->struct_size))
        v.broken |= BIT(LSTM_E_ARG);
    early = v.broken != 0;
    if (!early) {
        v.broken |= joints_verdict(c->head, c->loss, c->head_size).broken;
        const verdict model = config_verdict(&lc, &param_count);
        v.broken |= model.broken;
        early = v.broken != 0; /* the model checks its configuration before allocating */
        big = param_count > MAX_PARAMS;
        dense_in = directions_of(&lc) * state_size_of(&lc);
        big |= c->head != LSTM_HEAD_NONE && dense_in * c->head_size > MAX_PARAMS;
    }
    if (!early && tokens) {
        int64_t padding_row;
        const verdict embedding = embedding_config_verdict(&ec, &padding_row);
        v.broken |= embedding.broken;
        if (embedding.broken == 0) {
            big |= ec.num_embeddings * ec.embedding_dim > MAX_PARAMS;
            if (ec.embedding_dim != lc.input_size)
                v.broken |= BIT(LSTM_E_SHAPE);
        }
    }
    if (!early && big)
        return; /* parts above the caps would be created */
    lstm_network *const sentinel = (lstm_network *)&v;
    lstm_network *network = sentinel;
    arm_message();
    lstm_status status = lstm_network_create(null == 0 ? NULL : c, null == 1 ? NULL : &network);
    if (!check_status("lstm_network_create", status, v)) {
        CHECK(network == sentinel, "a failed lstm_network_create wrote its out pointer");
        return;
    }
    const size_t V = tokens ? ec.num_embeddings : 0;
    CHECK(lstm_network_param_count(network) ==
              V * lc.input_size + param_count +
                  (c->head != LSTM_HEAD_NONE ? dense_in * c->head_size + c->head_size : 0),
          "network param count %zu", lstm_network_param_count(network));
    lstm_network_config back;
    CHECK(lstm_network_config_init(&back, sizeof back) == LSTM_OK &&
              lstm_network_get_config(network, &back) == LSTM_OK,
          "lstm_network_get_config");
    CHECK(back.head == c->head && back.loss == c->loss && back.head_size == c->head_size &&
              (back.embedding != NULL) == tokens && back.lstm != NULL,
          "the network configuration read back differs");
    drop_network(s);
    network_slot *n = &s->net;
    n->network = network;
    n->tokens = tokens;
    n->V = V;
    n->I = lc.input_size;
    n->O = c->head != LSTM_HEAD_NONE ? c->head_size : dense_in;
    n->head = c->head;
    n->loss = c->loss;
    n->lstm = lc;
    CHECK(lstm_network_init(network, take_u8(r), 0) == LSTM_OK, "lstm_network_init");
    CHECK(lstm_workspace_create(lstm_network_model(network), &n->workspace) == LSTM_OK,
          "lstm_workspace_create of a network's model");
}

/* Rows of a network's output for T and B. */
static size_t network_rows(const network_slot *n, size_t T, size_t B)
{
    return n->head == LSTM_HEAD_LAST_STEP ? B : T * B;
}

/* T B token ids in [0, V); sometimes one out of range at *bad_at (else SIZE_MAX). */
static int64_t *take_tokens(reader *r, scratch *sc, size_t count, size_t V, size_t *bad_at)
{
    int64_t *ids = scratch_alloc(sc, (count != 0 ? count : 1) * sizeof *ids);
    uint64_t state = take_u8(r);
    for (size_t k = 0; k < count; k++)
        ids[k] = V != 0 ? (int64_t)(splitmix64(&state) % V) : 0;
    *bad_at = SIZE_MAX;
    const uint8_t b = take_u8(r);
    if (count != 0 && b >= 0xE0) {
        *bad_at = take_u32(r) % count;
        ids[*bad_at] = (int64_t[]){(int64_t)V, -1, INT64_MIN, INT64_MAX}[b % 4];
    }
    return ids;
}

/* lstm_network_infer() or lstm_network_train_forward() with hostile
 * sizes, layouts, lengths, ids and features. */
static void network_forward(session *s, reader *r, scratch *sc, bool train)
{
    network_slot *n = &s->net;
    const size_t T = take_size(r, SMALL_STEPS), B = take_size(r, SMALL_BATCH);
    const uint32_t layout = take_layout(r);
    const int null = take_null(r, 4); /* network, workspace, sequences, inputs */
    const uint8_t b = take_u8(r);     /* mostly the right input; else the other, both or none */
    const int mode = b < 0xF0 ? 0 : 1 + b % 3;
    verdict v = {0, 0};
    if (null >= 0 || n->network == NULL)
        v.broken |= BIT(LSTM_E_NULL);
    if (!layout_known(layout))
        v.broken |= BIT(LSTM_E_ARG);
    const bool give_tokens = (mode == 0 && n->tokens) || (mode == 1 && !n->tokens) || mode == 2;
    const bool give_features = (mode == 0 && !n->tokens) || (mode == 1 && n->tokens) || mode == 2;
    if (n->network != NULL && (mode == 1 || mode == 3))
        v.broken |= BIT(LSTM_E_NULL);
    else if (n->network != NULL && mode == 2)
        v.broken |= BIT(LSTM_E_ARG);
    const bool early = v.broken != 0;
    size_t rows = 0;
    const bool sized = T != 0 && B != 0 && !__builtin_mul_overflow(T, B, &rows);
    if (T == 0 || B == 0)
        v.broken |= BIT(LSTM_E_SIZE);
    else if (!sized)
        v.broken |= BIT(LSTM_E_OVERFLOW);
    const bool real = sized && rows <= MAX_ROWS && n->network != NULL;
    if (sized && !real && !early)
        return; /* valid sizes above the caps */

    const lstm_config *c = &n->lstm;
    const bool batch_first = call_batch_first(layout, c);
    const size_t L = layers_of(c), D = directions_of(c), R = state_size_of(c), H = c->hidden_size;
    size_t *lengths = NULL;
    int64_t one_id[1] = {0};
    float dummy[1] = {0.0f};
    const int64_t *tokens = one_id;
    const float *features = dummy;
    float *output = NULL, *hT = NULL, *cT = NULL;
    if (real) {
        verdict lv = {0, 0};
        lengths = take_lengths(r, sc, T, B, &lv);
        v.broken |= lv.broken;
        const bool lengths_ok = lv.broken == 0; /* else nothing past them is read */
        if (give_tokens) {
            size_t bad_at;
            tokens = take_tokens(r, sc, rows, n->V != 0 ? n->V : 1, &bad_at);
            if (n->tokens && bad_at != SIZE_MAX && lengths_ok &&
                element_runs(bad_at, 1, T, B, batch_first, lengths))
                v.broken |= BIT(LSTM_E_ARG);
        }
        if (give_features) {
            const input x = take_input(r, sc, rows * n->I, false);
            features = x.data;
            if (!n->tokens && x.poisoned != SIZE_MAX && lengths_ok &&
                element_runs(x.poisoned, n->I, T, B, batch_first, lengths))
                v.broken |= BIT(LSTM_E_NONFINITE);
        }
        output = take_output(r, sc, network_rows(n, T, B) * n->O);
        hT = take_output(r, sc, L * D * B * R);
        cT = take_output(r, sc, L * D * B * H);
    }
    caller_args sa, ia, oa;
    unsigned struct_broken = 0;
    const lstm_sequences sequences = {sizeof sequences, T, B, layout, lengths};
    const lstm_network_inputs inputs = {sizeof inputs, give_tokens ? tokens : NULL,
                                        give_features ? features : NULL, NULL, NULL};
    const lstm_network_outputs outputs = {sizeof outputs, output, hT, cT};
    const void *sequences_given = take_args(r, &sa, &sequences, sizeof sequences, &struct_broken);
    const void *inputs_given = take_args(r, &ia, &inputs, sizeof inputs, &struct_broken);
    const void *outputs_given = take_args(r, &oa, &outputs, sizeof outputs, &struct_broken);
    v.broken |= struct_broken;
    lstm_workspace *workspace = null == 1 ? NULL : n->workspace;
    if (workspace != NULL) /* every forward call drops the training forward held */
        n->trained = false;
    arm_message();
    lstm_network *network = null == 0 ? NULL : n->network;
    const lstm_sequences *seq = null == 2 ? NULL : sequences_given;
    const lstm_network_inputs *in = null == 3 ? NULL : inputs_given;
    const lstm_status status =
        train ? lstm_network_train_forward(network, workspace, seq, in, outputs_given)
              : lstm_network_infer(network, workspace, seq, in, outputs_given);
    const char *call = train ? "lstm_network_train_forward" : "lstm_network_infer";
    const size_t out_count = real ? network_rows(n, T, B) * n->O : 0;
    const size_t states = real ? L * D * B : 0;
    if (!check_status(call, status, v)) {
        CHECK(all_canary(output, out_count) && all_canary(hT, states * R) &&
                  all_canary(cT, states * H),
              "a failed %s wrote an output", call);
        return;
    }
    CHECK(none_canary(output, out_count) && none_canary(hT, states * R) &&
              none_canary(cT, states * H),
          "a successful %s left an output unwritten", call);
    CHECK(all_finite(output, out_count), "%s gave a non-finite output", call);
    for (size_t row = 0; output != NULL && n->head != LSTM_HEAD_LAST_STEP && row < rows; row++)
        for (size_t o = 0; o < n->O && !element_runs(row, 1, T, B, batch_first, lengths); o++)
            CHECK(output[row * n->O + o] == 0.0f, "output row %zu is not zero past its end", row);
    if (!train && (output != NULL || hT != NULL || cT != NULL)) {
        /* the same call on a new workspace in the same precision: the same bits */
        float *fresh_output = output != NULL ? new_output(sc, out_count) : NULL;
        float *fresh_hT = hT != NULL ? new_output(sc, states * R) : NULL;
        float *fresh_cT = cT != NULL ? new_output(sc, states * H) : NULL;
        const lstm_network_outputs fresh = {sizeof fresh, fresh_output, fresh_hT, fresh_cT};
        lstm_workspace *ws = NULL;
        CHECK(lstm_workspace_create(lstm_network_model(n->network), &ws) == LSTM_OK &&
                  lstm_workspace_set_precision(ws, n->precision) == LSTM_OK,
              "a new workspace of the network");
        const lstm_status again = lstm_network_infer(n->network, ws, seq, in, &fresh);
        lstm_workspace_destroy(ws);
        CHECK(again == LSTM_OK, "the same lstm_network_infer on a new workspace: %s",
              status_name(again));
        CHECK((output == NULL || same_floats(output, fresh_output, out_count)) &&
                  (hT == NULL || same_floats(hT, fresh_hT, states * R)) &&
                  (cT == NULL || same_floats(cT, fresh_cT, states * H)),
              "lstm_network_infer in precision %d differs from the same call on a new workspace",
              (int)n->precision);
    }
    if (train) {
        n->trained = true;
        n->T = T;
        n->B = B;
        n->batch_first = batch_first;
        n->has_lengths = lengths != NULL;
        if (lengths != NULL)
            memcpy(n->lengths, lengths, B * sizeof *lengths);
    }
}

/* Targets of the network's loss for rows of its output (T, B, layout and
 * lengths those of the call): mostly valid, sometimes a bad class or value
 * in a row that counts (v gains its status) or in one that does not. */
static lstm_targets take_targets(reader *r, scratch *sc, const network_slot *n, size_t T, size_t B,
                                 bool batch_first, const size_t *lengths, verdict *v)
{
    lstm_targets targets = LSTM_TARGETS_INIT;
    const size_t rows = network_rows(n, T, B), O = n->O;
    const bool every = n->head != LSTM_HEAD_LAST_STEP;
    const bool missing = take_u8(r) % 8 == 0;
    if (n->loss == LSTM_LOSS_CROSS_ENTROPY) {
        int32_t *classes = scratch_alloc(sc, (rows != 0 ? rows : 1) * sizeof *classes);
        uint64_t state = take_u8(r);
        for (size_t k = 0; k < rows; k++) /* -1: left out */
            classes[k] = (int32_t)(splitmix64(&state) % (O + 1)) - 1;
        const uint8_t b = take_u8(r);
        if (rows != 0 && b >= 0xE0) {
            const size_t at = take_u32(r) % rows;
            classes[at] = (int32_t[]){(int32_t)O, INT32_MAX, INT32_MIN, -7}[b % 4];
            const bool counts = !every || element_runs(at, 1, T, B, batch_first, lengths);
            if (counts && classes[at] >= 0)
                v->broken |= BIT(LSTM_E_ARG);
        }
        targets.classes = missing ? NULL : classes;
    } else {
        input values = take_input(r, sc, rows * O, false);
        if (n->loss == LSTM_LOSS_BCE_WITH_LOGITS)
            for (size_t k = 0; k < rows * O; k++)
                values.data[k] =
                    k == values.poisoned ? values.data[k] : fabsf(values.data[k]) / TAME;
        const bool counts =
            values.poisoned != SIZE_MAX &&
            (!every || element_runs(values.poisoned, O, T, B, batch_first, lengths));
        if (counts)
            v->broken |= BIT(LSTM_E_NONFINITE);
        if (n->loss == LSTM_LOSS_BCE_WITH_LOGITS && rows != 0 && take_u8(r) >= 0xF0) {
            const size_t at = take_u32(r) % (rows * O);
            if (at != values.poisoned) {
                values.data[at] = 1.5f;
                if (!every || element_runs(at, O, T, B, batch_first, lengths))
                    v->broken |= BIT(LSTM_E_ARG);
            }
        }
        if (n->loss == LSTM_LOSS_NONE)
            targets.grad = missing ? NULL : values.data;
        else
            targets.values = missing ? NULL : values.data;
    }
    if (missing)
        v->broken |= BIT(LSTM_E_NULL);
    return targets;
}

/* Every gradient of the session's network, copied. */
static float *network_grads(const network_slot *n, scratch *sc, size_t *count)
{
    lstm_network *network = n->network;
    *count = lstm_network_param_count(network);
    float *all = scratch_alloc(sc, (*count != 0 ? *count : 1) * sizeof(float)), *g;
    size_t used = 0, part;
    if (lstm_network_embedding(network) != NULL) {
        lstm_embedding_grads(lstm_network_embedding(network), &g, &part);
        memcpy(all, g, part * sizeof(float));
        used += part;
    }
    lstm_model_grads(lstm_network_model(network), &g, &part);
    memcpy(all + used, g, part * sizeof(float));
    used += part;
    if (lstm_network_head(network) != NULL) {
        lstm_dense_grads(lstm_network_head(network), &g, &part);
        memcpy(all + used, g, part * sizeof(float));
    }
    return all;
}

/* lstm_network_train_backward(): LSTM_E_STATE without the network's
 * training forward, bad targets refused with no gradient changed. */
static void network_backward(session *s, reader *r, scratch *sc)
{
    network_slot *n = &s->net;
    const int null = take_null(r, 3); /* network, workspace, targets */
    verdict v = {0, 0};
    if (n->network == NULL)
        return;
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (!n->trained)
        v.broken |= BIT(LSTM_E_STATE);
    lstm_targets targets = LSTM_TARGETS_INIT;
    if (n->trained)
        targets = take_targets(r, sc, n, n->T, n->B, n->batch_first,
                               n->has_lengths ? n->lengths : NULL, &v);
    else /* never read: refused before */
        targets.classes = (const int32_t[]){0};
    caller_args ta;
    unsigned struct_broken = 0;
    const void *targets_given = take_args(r, &ta, &targets, sizeof targets, &struct_broken);
    v.broken |= struct_broken;
    const bool want_loss = take_u8(r) % 4 != 0;
    size_t count;
    const float *before = network_grads(n, sc, &count);
    double loss = -1.0;
    arm_message();
    const lstm_status status =
        lstm_network_train_backward(null == 0 ? NULL : n->network, null == 1 ? NULL : n->workspace,
                                    null == 2 ? NULL : targets_given, want_loss ? &loss : NULL);
    if (!check_status("lstm_network_train_backward", status, v)) {
        CHECK(same_floats(network_grads(n, sc, &count), before, count),
              "a failed lstm_network_train_backward changed a gradient");
        CHECK(loss == -1.0, "a failed lstm_network_train_backward wrote the loss");
        return;
    }
    n->trained = false;
    CHECK(!want_loss || (n->loss == LSTM_LOSS_NONE ? loss == 0.0 : isfinite(loss) && loss >= 0.0),
          "lstm_network_train_backward gave the loss %g", loss);
}

/* lstm_network_loss() of an output of the caller's. */
static void network_loss(session *s, reader *r, scratch *sc)
{
    network_slot *n = &s->net;
    if (n->network == NULL)
        return;
    const size_t T = 1 + take_u8(r) % SMALL_STEPS, B = 1 + take_u8(r) % SMALL_BATCH;
    const uint32_t layout = take_layout(r);
    verdict v = {0, 0};
    if (!layout_known(layout))
        v.broken |= BIT(LSTM_E_ARG);
    if (n->loss == LSTM_LOSS_NONE)
        v.broken |= BIT(LSTM_E_ARG);
    const bool batch_first = call_batch_first(layout, &n->lstm);
    verdict lv = {0, 0};
    size_t *lengths = take_lengths(r, sc, T, B, &lv);
    v.broken |= lv.broken;
    const bool lengths_ok = lv.broken == 0;
    const size_t rows = network_rows(n, T, B);
    input output = take_input(r, sc, rows * n->O, false);
    if (output.poisoned != SIZE_MAX && lengths_ok &&
        (n->head == LSTM_HEAD_LAST_STEP ||
         element_runs(output.poisoned, n->O, T, B, batch_first, lengths)))
        v.broken |= BIT(LSTM_E_NONFINITE);
    verdict target_v = {0, 0};
    const lstm_targets targets =
        take_targets(r, sc, n, T, B, batch_first, lengths_ok ? lengths : NULL, &target_v);
    if (lengths_ok) /* else what counts is not known */
        v.broken |= target_v.broken;
    else
        v.tolerated |= target_v.broken;
    const lstm_sequences sequences = {sizeof sequences, T, B, layout, lengths};
    double loss = -1.0;
    arm_message();
    const lstm_status status =
        lstm_network_loss(n->network, &sequences, output.data, &targets, &loss);
    if (!check_status("lstm_network_loss", status, v)) {
        CHECK(loss == -1.0, "a failed lstm_network_loss wrote the loss");
        return;
    }
    CHECK(isfinite(loss) && loss >= 0.0, "lstm_network_loss gave %g", loss);
}

static void op_network(session *s, reader *r, scratch *sc)
{
    const uint8_t what = take_u8(r) % 6;
    switch (what) {
    case 0: network_create(s, r); return;
    case 1: drop_network(s); return;
    case 2:
    case 3: network_forward(s, r, sc, what == 3); return;
    case 4: network_backward(s, r, sc); return;
    default: network_loss(s, r, sc); return;
    }
}

/* ---- model files in memory ----------------------------------------------------------- */

/* Whether every parameter of the model is finite (NaN can be written
 * through the parameter view; saving refuses it). */
static bool model_finite(const lstm_model *model)
{
    size_t count;
    float *params = params_copy(model, &count);
    const bool finite = all_finite(params, count);
    free(params);
    return finite;
}

/* Whether a network's embedding or head W holds a value near FLT_MAX
 * (|w| >= 3.3e38), which overflows in bf16 or in an int8 scale: its
 * quantized file would not load, so the writer refuses it (lstm/io.h). */
static bool network_parts_huge(const lstm_network *network)
{
    lstm_embedding *embedding = lstm_network_embedding((lstm_network *)network);
    lstm_dense *head = lstm_network_head((lstm_network *)network);
    float *values;
    size_t count;
    bool huge = false;
    if (embedding != NULL && lstm_embedding_params(embedding, &values, &count) == LSTM_OK)
        huge |= max_abs(values, count) >= 3.3e38f;
    if (head != NULL && lstm_dense_params(head, &values, &count) == LSTM_OK)
        huge |= max_abs(values, count) >= 3.3e38f;
    return huge;
}

static unsigned char *save_model(scratch *sc, const lstm_model *model, const lstm_optim *optim,
                                 size_t *size)
{
    CHECK(lstm_model_save_buffer(model, optim, NULL, 0, size) == LSTM_OK, "size query");
    unsigned char *file = scratch_alloc(sc, *size);
    CHECK(lstm_model_save_buffer(model, optim, file, *size, size) == LSTM_OK, "save");
    return file;
}

static void op_file(session *s, reader *r, scratch *sc)
{
    const int slot = take_u8(r) & 1;
    lstm_model *model = s->slots[slot].model;
    const lstm_optim *optim = (take_u8(r) & 1) ? s->optim : NULL;
    const int null = take_null(r, 2); /* model, size */
    verdict v = {0, 0};
    if (model == NULL || null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    else if (!model_finite(model) || (optim != NULL && !optim_state_finite(s, sc)))
        v.broken |= BIT(LSTM_E_NONFINITE); /* saving writes finite values only */
    size_t size = SIZE_MAX;
    arm_message();
    lstm_status status =
        lstm_model_save_buffer(null == 0 ? NULL : model, optim, NULL, 0, null == 1 ? NULL : &size);
    if (!check_status("lstm_model_save_buffer (size)", status, v)) {
        CHECK(size == SIZE_MAX, "a failed save_buffer wrote its size");
        return;
    }
    CHECK(size >= 16, "a model file of %zu bytes", size);
    /* the capacity: enough, more, or too little (LSTM_E_SHAPE, nothing written) */
    uint8_t b = take_u8(r);
    const size_t capacity = b < 0xE0 ? size : (b & 1) ? size + 7 : (size_t)(take_u32(r) % size);
    unsigned char *file = scratch_alloc(sc, capacity > size ? capacity : size);
    memset(file, 0xCC, capacity > size ? capacity : size);
    size_t written = SIZE_MAX;
    verdict save_v = {capacity < size ? BIT(LSTM_E_SHAPE) : 0, 0};
    arm_message();
    status = lstm_model_save_buffer(model, optim, file, capacity, &written);
    if (!check_status("lstm_model_save_buffer", status, save_v)) {
        CHECK(written == size, "a too-small save gave size %zu, not %zu", written, size);
        for (size_t k = 0; k < size; k++)
            CHECK(file[k] == 0xCC, "a too-small save wrote byte %zu", k);
        return;
    }
    CHECK(written == size, "saved %zu bytes; the query said %zu", written, size);
    for (size_t k = size; k < capacity; k++)
        CHECK(file[k] == 0xCC, "save_buffer wrote byte %zu past the file", k);

    /* damage: a flipped byte or a truncation */
    size_t length = size;
    bool damaged = false;
    b = take_u8(r);
    if (b >= 0xC0) {
        damaged = true;
        if (b & 1)
            file[take_u32(r) % size] ^= (uint8_t)(take_u8(r) | 1);
        else
            length = take_u32(r) % size;
    }
    size_t count;
    const float *params = model_params(model, &count);
    const bool finite = all_finite(params, count);
    const bool state_finite = optim == NULL || optim_state_finite(s, sc);
    verdict load_v = {0, 0};
    if (!state_finite)
        load_v.tolerated |= BIT(LSTM_E_FORMAT);
    if (damaged)
        load_v.tolerated |= BIT(LSTM_E_FORMAT) | BIT(LSTM_E_UNSUPPORTED) | BIT(LSTM_E_NOMEM);
    else if (!finite)
        load_v.broken |= BIT(LSTM_E_FORMAT); /* a NaN parameter never loads */
    const int load_null = take_null(r, 2);
    if (load_null >= 0)
        load_v.broken |= BIT(LSTM_E_NULL);
    lstm_model *const sentinel = (lstm_model *)&v, *loaded = sentinel;
    arm_message();
    status = lstm_model_load_buffer(load_null == 0 ? NULL : file, length,
                                    load_null == 1 ? NULL : &loaded);
    if (!check_status("lstm_model_load_buffer", status, load_v)) {
        CHECK(loaded == sentinel, "a failed load wrote its out pointer");
    } else if (!damaged) {
        lstm_config got;
        CHECK(lstm_config_init(&got, sizeof got) == LSTM_OK &&
                  lstm_model_get_config(loaded, &got) == LSTM_OK,
              "get_config of a loaded model");
        CHECK(same_config(&got, &s->slots[slot].config),
              "a loaded model has another configuration");
        size_t loaded_count;
        const float *loaded_params = model_params(loaded, &loaded_count);
        CHECK(loaded_count == count && same_floats(loaded_params, params, count),
              "a loaded model has other parameters");
        size_t first_size, second_size;
        const unsigned char *first = save_model(sc, model, NULL, &first_size);
        const unsigned char *second = save_model(sc, loaded, NULL, &second_size);
        CHECK(first_size == second_size && memcmp(first, second, first_size) == 0,
              "a loaded model saves differently");
    }
    if (status == LSTM_OK) {
        if (take_u8(r) & 1) { /* it takes slot 1's place */
            lstm_config got;
            lstm_config_init(&got, sizeof got);
            lstm_model_get_config(loaded, &got);
            drop_model(s, 1);
            s->slots[1] = (model_slot){loaded, got, lstm_model_param_count(loaded)};
        } else {
            lstm_model_destroy(loaded);
        }
    }

    /* the optimizer's state from the file */
    if (s->optim == NULL || !(take_u8(r) & 1))
        return;
    size_t before_bytes;
    const void *before = optim_snapshot(s, sc, &before_bytes);
    verdict optim_v = {0, BIT(LSTM_E_NOMEM)};
    if (damaged)
        optim_v.tolerated |= BIT(LSTM_E_FORMAT) | BIT(LSTM_E_UNSUPPORTED) | BIT(LSTM_E_ARG) |
                             BIT(LSTM_E_SHAPE) | BIT(LSTM_E_NONFINITE);
    else if (!finite || optim != s->optim)
        optim_v.broken |= BIT(LSTM_E_FORMAT); /* no state in the file, or a NaN parameter */
    if (!state_finite)
        optim_v.tolerated |= BIT(LSTM_E_FORMAT) | BIT(LSTM_E_NONFINITE);
    arm_message();
    status = lstm_optim_load_buffer(s->optim, file, length);
    if (!check_status("lstm_optim_load_buffer", status, optim_v)) {
        check_unchanged(s, sc, before, before_bytes, "lstm_optim_load_buffer");
        return;
    }
    if (!damaged) {
        size_t after_bytes;
        const void *after = optim_snapshot(s, sc, &after_bytes);
        CHECK(after_bytes == before_bytes && memcmp(after, before, after_bytes) == 0,
              "an optimizer reloaded from its own save changed");
    }
}

/* ---- reduced precision: set_precision, keep_weights, quantized files ------------------- */

/* Mostly a precision, one byte value in 16 a value that is none. */
static lstm_precision take_precision(reader *r)
{
    static const int none[8] = {3, -1, INT_MAX, INT_MIN, 255, 4, 1000, -2};
    const uint8_t b = take_u8(r);
    return (lstm_precision)(b < 0xF0 ? (int)(b % 3) : none[b % 8]);
}

static bool precision_known(lstm_precision precision)
{
    return precision == LSTM_PRECISION_FP32 || precision == LSTM_PRECISION_BF16 ||
           precision == LSTM_PRECISION_INT8;
}

/*
 * lstm_workspace_set_precision() on the session's workspace or the
 * network's, lstm_state_set_precision(), and lstm_workspace_keep_weights()
 * and lstm_state_keep_weights() with any int. A refused precision must leave
 * the precision as it was: the forward and stream calls compare their
 * results with a new workspace in the precision the harness keeps.
 */
static void op_precision(session *s, reader *r, scratch *sc)
{
    (void)sc;
    const uint8_t what = take_u8(r) % 5;
    const bool null = take_null(r, 1) >= 0;
    verdict v = {0, 0};
    lstm_status status;
    if (what <= 2) {
        const lstm_precision precision = take_precision(r);
        lstm_workspace *workspace = what == 0 ? s->workspace : s->net.workspace;
        if (!precision_known(precision))
            v.broken |= BIT(LSTM_E_ARG);
        if (null || (what == 1 ? s->state == NULL : workspace == NULL))
            v.broken |= BIT(LSTM_E_NULL);
        arm_message();
        status = what == 1 ? lstm_state_set_precision(null ? NULL : s->state, precision)
                           : lstm_workspace_set_precision(null ? NULL : workspace, precision);
        if (!check_status(what == 1 ? "lstm_state_set_precision" : "lstm_workspace_set_precision",
                          status, v))
            return;
        if (what == 0)
            s->workspace_precision = precision;
        else if (what == 1)
            s->state_precision = precision;
        else
            s->net.precision = precision;
        return;
    }
    const uint8_t b = take_u8(r);
    const int keep = b < 0xF0 ? (int)(b & 1) : (int[]){-1, INT_MIN, INT_MAX, 2}[b % 4];
    const bool state = what == 4;
    if (null || (state ? s->state == NULL : s->workspace == NULL))
        v.broken |= BIT(LSTM_E_NULL);
    v.tolerated |= BIT(LSTM_E_NOMEM); /* "when that memory is not there" */
    arm_message();
    status = state ? lstm_state_keep_weights(null ? NULL : s->state, keep)
                   : lstm_workspace_keep_weights(null ? NULL : s->workspace, keep);
    if (!check_status(state ? "lstm_state_keep_weights" : "lstm_workspace_keep_weights", status, v))
        return;
    /* any call of it makes the next call pack */
    if (state) {
        s->state_keeps = keep != 0;
        s->state_unnoticed = false;
    } else {
        s->workspace_keeps = keep != 0;
        s->workspace_unnoticed = false;
    }
}

/* y, hT and cT of an inference (T 2, B 2, zero states, x a fixed pattern)
 * on a workspace of its own in a precision; *count floats. */
static float *infer_fresh(scratch *sc, const lstm_model *model, lstm_precision precision,
                          size_t *count)
{
    lstm_config c;
    CHECK(lstm_config_init(&c, sizeof c) == LSTM_OK && lstm_model_get_config(model, &c) == LSTM_OK,
          "lstm_model_get_config");
    const size_t T = 2, B = 2, L = layers_of(&c), D = directions_of(&c), R = state_size_of(&c),
                 H = c.hidden_size;
    const size_t y_count = T * B * D * R, h_count = L * D * B * R, c_count = L * D * B * H;
    float *x = scratch_alloc(sc, T * B * c.input_size * sizeof *x);
    for (size_t k = 0; k < T * B * c.input_size; k++)
        x[k] = (float)((int)(k % 7) - 3) / 3.0f;
    *count = y_count + h_count + c_count;
    float *out = new_output(sc, *count);
    lstm_workspace *ws = NULL;
    CHECK(lstm_workspace_create(model, &ws) == LSTM_OK, "lstm_workspace_create");
    CHECK(lstm_workspace_set_precision(ws, precision) == LSTM_OK, "lstm_workspace_set_precision");
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, NULL};
    const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
    const lstm_outputs outputs = {sizeof outputs, out, out + y_count, out + y_count + h_count};
    const lstm_status status = lstm_model_infer(model, ws, &sequences, &inputs, &outputs);
    lstm_workspace_destroy(ws);
    CHECK(status == LSTM_OK, "an inference in precision %d: %s", (int)precision,
          status_name(status));
    return out;
}

/* lstm_model_save_quantized_buffer() or lstm_network_save_quantized_buffer(). */
static lstm_status save_quantized(const lstm_model *model, const lstm_network *network,
                                  lstm_precision precision, void *buffer, size_t capacity,
                                  size_t *size)
{
    return network != NULL
               ? lstm_network_save_quantized_buffer(network, precision, buffer, capacity, size)
               : lstm_model_save_quantized_buffer(model, precision, buffer, capacity, size);
}

/*
 * A model of a slot (or the session's network) saved in a precision, any
 * value or NULL given, into a buffer of the right size, more, or too
 * little; then what it wrote loaded back. In float32 the file is
 * lstm_model_save_buffer()'s (lstm_network_save_buffer()'s) without an
 * optimizer; in bf16 or int8 its header says 1.2 (1.3 for a network with an
 * embedding or a head, whose EMBQ and HDQ  hold them in the precision), it
 * loads, the model loaded runs an inference in that precision to the bits
 * of the model saved, and saves in it to the same bytes (lstm/io.h,
 * lstm/network.h). The model loaded may take slot 1's place (the
 * network's), with its weights as stored.
 */
static void op_quantized(session *s, reader *r, scratch *sc)
{
    const uint8_t form = take_u8(r);
    const bool is_network = (form & 2) != 0;
    const int slot = form & 1;
    const lstm_model *model =
        is_network ? (s->net.network != NULL ? lstm_network_model(s->net.network) : NULL)
                   : s->slots[slot].model;
    const lstm_network *network = is_network ? s->net.network : NULL;
    const lstm_precision precision = take_precision(r);
    const int null = take_null(r, 2); /* the model or network, size */
    const char *call =
        is_network ? "lstm_network_save_quantized_buffer" : "lstm_model_save_quantized_buffer";
    verdict v = {0, 0};
    if (model == NULL || null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (!precision_known(precision))
        v.broken |= BIT(LSTM_E_ARG);
    if (model != NULL && !model_finite(model))
        v.broken |= BIT(LSTM_E_NONFINITE);
    if (network != NULL && precision != LSTM_PRECISION_FP32 && network_parts_huge(network))
        v.tolerated |= BIT(LSTM_E_NONFINITE);
    size_t size = SIZE_MAX;
    arm_message();
    lstm_status status =
        is_network ? lstm_network_save_quantized_buffer(null == 0 ? NULL : network, precision, NULL,
                                                        0, null == 1 ? NULL : &size)
                   : lstm_model_save_quantized_buffer(null == 0 ? NULL : model, precision, NULL, 0,
                                                      null == 1 ? NULL : &size);
    if (!check_status(call, status, v)) {
        CHECK(size == SIZE_MAX, "a failed %s wrote its size", call);
        return;
    }
    CHECK(size >= 16, "a quantized file of %zu bytes", size);
    uint8_t b = take_u8(r);
    const size_t capacity = b < 0xE0 ? size : (b & 1) ? size + 7 : (size_t)(take_u32(r) % size);
    unsigned char *file = scratch_alloc(sc, capacity > size ? capacity : size);
    memset(file, 0xCC, capacity > size ? capacity : size);
    size_t written = SIZE_MAX;
    const verdict save_v = {capacity < size ? BIT(LSTM_E_SHAPE) : 0, 0};
    arm_message();
    status = save_quantized(model, network, precision, file, capacity, &written);
    if (!check_status(call, status, save_v)) {
        CHECK(written == size, "a too-small save gave size %zu, not %zu", written, size);
        for (size_t k = 0; k < size; k++)
            CHECK(file[k] == 0xCC, "a too-small save wrote byte %zu", k);
        return;
    }
    CHECK(written == size, "saved %zu bytes; the query said %zu", written, size);
    for (size_t k = size; k < capacity; k++)
        CHECK(file[k] == 0xCC, "%s wrote byte %zu past the file", call, k);
    const bool parts =
        network != NULL && (lstm_network_embedding((lstm_network *)network) != NULL ||
                            lstm_network_head((lstm_network *)network) != NULL);
    CHECK(file[10] == (precision == LSTM_PRECISION_FP32 ? 1
                       : parts                          ? 3
                                                        : 2) &&
              file[11] == 0,
          "a file saved in precision %d has minor version %u", (int)precision, (unsigned)file[10]);
    if (precision == LSTM_PRECISION_FP32) {
        size_t plain_size = 0;
        CHECK((is_network ? lstm_network_save_buffer(network, NULL, NULL, 0, &plain_size)
                          : lstm_model_save_buffer(model, NULL, NULL, 0, &plain_size)) == LSTM_OK,
              "size query");
        unsigned char *plain = scratch_alloc(sc, plain_size);
        CHECK((is_network ? lstm_network_save_buffer(network, NULL, plain, plain_size, &plain_size)
                          : lstm_model_save_buffer(model, NULL, plain, plain_size, &plain_size)) ==
                  LSTM_OK,
              "save");
        CHECK(plain_size == size && memcmp(plain, file, size) == 0,
              "%s in float32 is not the plain save's file", call);
    }

    lstm_model *loaded = NULL;
    lstm_network *loaded_network = NULL;
    const verdict load_v = {0, BIT(LSTM_E_NOMEM)};
    arm_message();
    status = is_network ? lstm_network_load_buffer(file, size, &loaded_network)
                        : lstm_model_load_buffer(file, size, &loaded);
    if (!check_status(is_network ? "lstm_network_load_buffer" : "lstm_model_load_buffer", status,
                      load_v))
        return;
    const lstm_model *loaded_model = is_network ? lstm_network_model(loaded_network) : loaded;
    lstm_config got, want;
    CHECK(lstm_config_init(&got, sizeof got) == LSTM_OK &&
              lstm_model_get_config(loaded_model, &got) == LSTM_OK &&
              lstm_config_init(&want, sizeof want) == LSTM_OK &&
              lstm_model_get_config(model, &want) == LSTM_OK,
          "get_config");
    CHECK(same_config(&got, &want), "a loaded quantized file has another configuration");
    if (precision == LSTM_PRECISION_FP32) {
        size_t count, loaded_count;
        float *params = params_copy(model, &count),
              *loaded_params = params_copy(loaded_model, &loaded_count);
        CHECK(count == loaded_count && same_floats(params, loaded_params, count),
              "a model saved in float32 loads with other parameters");
        free(params);
        free(loaded_params);
    } else {
        size_t count, loaded_count;
        const float *ran = infer_fresh(sc, model, precision, &count);
        const float *loaded_ran = infer_fresh(sc, loaded_model, precision, &loaded_count);
        CHECK(count == loaded_count && same_floats(ran, loaded_ran, count),
              "a model saved in precision %d and loaded runs other bits in it", (int)precision);
    }
    size_t again_size = 0;
    CHECK(save_quantized(loaded_model, loaded_network, precision, NULL, 0, &again_size) == LSTM_OK,
          "size query of a loaded quantized file");
    unsigned char *again = scratch_alloc(sc, again_size);
    CHECK(save_quantized(loaded_model, loaded_network, precision, again, again_size, &again_size) ==
              LSTM_OK,
          "saving a loaded quantized file");
    CHECK(again_size == size && memcmp(again, file, size) == 0,
          "a file saved in precision %d, loaded and saved again in it, changed", (int)precision);
    if (!(take_u8(r) & 1)) {
        lstm_model_destroy(loaded);
        lstm_network_destroy(loaded_network);
        return;
    }
    if (!is_network) { /* it takes slot 1's place */
        drop_model(s, 1);
        s->slots[1] = (model_slot){loaded, got, lstm_model_param_count(loaded)};
        return;
    }
    /* it takes the network's place; the workspace, of the same configuration,
     * stays, and its training forward (of the other network) is not this one's */
    lstm_network_destroy(s->net.network);
    s->net.network = loaded_network;
    s->net.trained = false;
}

/* ---- everything else: initialisers, texts, versions, schedules -------------------------- */

/* lstm_config_init() with a caller's struct_size: never past its end. */
static void misc_config_init(reader *r)
{
    verdict v = {0, 0};
    lstm_status status;
    unsigned char bytes[sizeof(lstm_config) + 16];
    memset(bytes, 0xCC, sizeof bytes);
    unsigned char newer[16] = {0};
    size_t struct_size = take_struct_size(r, sizeof(lstm_config), newer, sizeof newer);
    struct_size = struct_size == 1 ? 2 : struct_size; /* 1 makes the sentinel message */
    const bool null = take_null(r, 1) >= 0;
    if (null)
        v.broken |= BIT(LSTM_E_NULL);
    if (struct_size < CONFIG_V1_SIZE)
        v.broken |= BIT(LSTM_E_ARG);
    arm_message();
    status = lstm_config_init(null ? NULL : (lstm_config *)(void *)bytes, struct_size);
    const size_t untouched_from = status == LSTM_OK ? struct_size : 0;
    for (size_t k = untouched_from; k < sizeof bytes; k++)
        CHECK(bytes[k] == 0xCC, "lstm_config_init(%zu) wrote byte %zu", struct_size, k);
    if (!check_status("lstm_config_init", status, v))
        return;
    lstm_config expected; /* LSTM_CONFIG_INIT, with zero padding */
    memset(&expected, 0, sizeof expected);
    expected.struct_size = struct_size;
    const size_t compared = struct_size < sizeof expected ? struct_size : sizeof expected;
    CHECK(memcmp(bytes, &expected, compared) == 0, "lstm_config_init's defaults");
    for (size_t k = compared; k < struct_size; k++)
        CHECK(bytes[k] == 0, "lstm_config_init left newer byte %zu", k);
}

/* lstm_optim_options_init(): PyTorch's defaults per kind. */
static void misc_options_init(reader *r)
{
    verdict v = {0, 0};
    lstm_status status;
    unsigned char bytes[sizeof(lstm_optim_options) + 16];
    memset(bytes, 0xCC, sizeof bytes);
    uint8_t b = take_u8(r);
    const int kind = b < 0xF0 ? b % 5 : (int[]){5, -1, 100, INT_MAX}[b % 4];
    const size_t struct_size =
        (take_u8(r) & 1) ? sizeof(lstm_optim_options) : sizeof(lstm_optim_options) + 16;
    const bool null = take_null(r, 1) >= 0;
    if (null)
        v.broken |= BIT(LSTM_E_NULL);
    if (kind < 0 || kind > 4)
        v.broken |= BIT(LSTM_E_ARG);
    arm_message();
    status = lstm_optim_options_init(null ? NULL : (lstm_optim_options *)(void *)bytes, struct_size,
                                     (lstm_optim_kind)kind);
    for (size_t k = status == LSTM_OK ? struct_size : 0; k < sizeof bytes; k++)
        CHECK(bytes[k] == 0xCC, "lstm_optim_options_init wrote byte %zu", k);
    if (!check_status("lstm_optim_options_init", status, v))
        return;
    lstm_optim_options o;
    memcpy(&o, bytes, sizeof o);
    static const double lr[5] = {0.01, 0.01, 0.01, 0.001, 0.001};
    CHECK(o.struct_size == struct_size && (int)o.kind == kind && o.lr == lr[kind] &&
              o.weight_decay == (kind == LSTM_OPTIM_ADAMW ? 0.01 : 0.0) && o.momentum == 0.0 &&
              o.dampening == 0.0 && o.alpha == 0.99 && o.beta1 == 0.9 && o.beta2 == 0.999 &&
              o.eps == (kind == LSTM_OPTIM_ADAGRAD ? 1e-10 : 1e-8) && o.lr_decay == 0.0 &&
              o.initial_accumulator_value == 0.0 && o.flags == 0 && o.threads == 0,
          "lstm_optim_options_init's defaults for kind %d", kind);
}

/* Texts and versions; the functions that accept NULL. */
static void misc_texts(reader *r)
{
    const int value = (int)take_u32(r);
    const int code = (take_u8(r) & 1) ? value : value % (LAST_STATUS + 3);
    const char *text = lstm_strerror((lstm_status)code);
    CHECK(text != NULL && text[0] != '\0', "lstm_strerror(%d)", code);
    CHECK((code >= LSTM_OK && code <= LAST_STATUS) == (strcmp(text, "unknown status") != 0),
          "lstm_strerror(%d) = \"%s\"", code, text);
    CHECK(lstm_version_number() == LSTM_VERSION_NUMBER &&
              strcmp(lstm_version_string(), LSTM_VERSION_STRING) == 0,
          "the runtime version differs from the header's");
    CHECK(lstm_model_param_count(NULL) == 0 && lstm_dense_param_count(NULL) == 0 &&
              lstm_optim_param_count(NULL) == 0,
          "a count of NULL is not 0");
    lstm_model_destroy(NULL);
    lstm_workspace_destroy(NULL);
    lstm_state_destroy(NULL);
    lstm_dense_destroy(NULL);
    lstm_optim_destroy(NULL);
}

/* The learning-rate schedules. */
static void misc_schedule(reader *r, bool cosine)
{
    verdict v = {0, 0};
    lstm_status status;
    const double base = take_real(r, 0.0, 1.0), other = take_real(r, 0.0, 1.0);
    const uint64_t period = take_size(r, 10), epoch = take_u8(r) < 0xF0 ? take_u8(r) : take_u64(r);
    const bool null = take_null(r, 1) >= 0;
    if (null)
        v.broken |= BIT(LSTM_E_NULL);
    if (period == 0)
        v.broken |= BIT(LSTM_E_SIZE);
    if (!isfinite(base) || !isfinite(other) || (!cosine && other < 0.0))
        v.broken |= BIT(LSTM_E_ARG);
    double lr = -7.0;
    arm_message();
    status = cosine ? lstm_schedule_cosine(base, other, period, epoch, null ? NULL : &lr)
                    : lstm_schedule_step(base, other, period, epoch, null ? NULL : &lr);
    if (!check_status(cosine ? "lstm_schedule_cosine" : "lstm_schedule_step", status, v)) {
        CHECK(lr == -7.0, "a failed schedule wrote lr");
        return;
    }
    if (cosine) /* between eta_min and base_lr */
        CHECK(lr >= fmin(base, other) - 1e-12 * (fabs(base) + fabs(other)) &&
                  lr <= fmax(base, other) + 1e-12 * (fabs(base) + fabs(other)),
              "cosine lr %g outside [%g, %g]", lr, base, other);
}

/* ---- CTC (lstm/ctc.h, LSTM_1.5) ---------------------------------------------------- */

#define DECODE_SENTINEL INT32_C(0x7FA5A5A5)

/* A label for a config of C classes and blank: mostly a valid class (never
 * the blank when the blank is a class), one time in 16 a bad one. */
static int32_t take_ctc_label(reader *r, size_t C, size_t blank, verdict *v)
{
    const uint8_t b = take_u8(r);
    int32_t label;
    if (b < 0xF0) {
        const size_t others = blank < C ? C - 1 : C; /* C >= 2 here */
        size_t k = b % others;
        label = (int32_t)(blank < C && k >= blank ? k + 1 : k);
    } else {
        label = (int32_t[]){-1, (int32_t)C, (int32_t)(blank < C ? blank : 0), INT32_MIN}[b % 4];
    }
    if (label < 0 || (size_t)label >= C || (size_t)label == blank)
        v->broken |= BIT(LSTM_E_ARG);
    return label;
}

/* The invariants of a successful lstm_ctc_loss(): losses >= 0 (+inf only
 * without LSTM_CTC_ZERO_INFINITY), the loss their documented reduction,
 * gradient zero past each end, in [-1, 1], each row summing to 0 (y and
 * gamma both sum to 1) or all zero. */
static void check_ctc_outputs(size_t T, size_t B, size_t C, bool batch_first, const size_t *lengths,
                              const size_t *label_lengths, bool mean, bool zero_infinity,
                              double loss, const double *losses, const float *grad)
{
    CHECK(!isnan(loss) && loss >= -1e-9, "lstm_ctc_loss gave loss %g", loss);
    CHECK(zero_infinity ? isfinite(loss) : true, "zero_infinity and loss %g", loss);
    if (losses != NULL) {
        double total = 0.0;
        for (size_t b = 0; b < B; b++) {
            CHECK(!isnan(losses[b]) && losses[b] >= -1e-9 &&
                      (!zero_infinity || isfinite(losses[b])),
                  "lstm_ctc_loss gave losses[%zu] %g", b, losses[b]);
            const size_t divisor = label_lengths[b] > 0 ? label_lengths[b] : 1;
            total += mean ? losses[b] / (double)divisor : losses[b];
        }
        if (mean)
            total /= (double)B;
        CHECK(isinf(loss) ? total == loss : fabs(total - loss) <= 1e-12 * (1.0 + fabs(loss)),
              "lstm_ctc_loss: loss %.17g, reduced losses %.17g", loss, total);
    }
    CHECK(none_canary(grad, T * B * C), "lstm_ctc_loss left its gradient unwritten");
    for (size_t t = 0; grad != NULL && t < T; t++) {
        for (size_t b = 0; b < B; b++) {
            const float *row = grad + sequence_row(batch_first, T, B, t, b) * C;
            const bool runs = lengths == NULL || t < lengths[b];
            double sum = 0.0;
            for (size_t c = 0; c < C; c++) {
                CHECK(runs ? fabsf(row[c]) <= 1.0f : row[c] == 0.0f,
                      "CTC gradient [t %zu][b %zu][%zu] = %g", t, b, c, (double)row[c]);
                sum += row[c];
            }
            CHECK(fabs(sum) <= 1e-5, "CTC gradient row [t %zu][b %zu] sums to %g", t, b, sum);
        }
    }
}

static void op_ctc(session *s, reader *r, scratch *sc)
{
    (void)s;
    const bool decode = take_u8(r) & 1;
    const size_t T = take_size(r, SMALL_STEPS), B = take_size(r, SMALL_BATCH),
                 C = take_size(r, SMALL_SIZE);
    uint8_t b = take_u8(r);
    const size_t blank = b < 0xF0 ? b % (C > 0 && C <= SMALL_SIZE ? C : 1)
                                  : (size_t[]){C, C + 1, SIZE_MAX, 0}[b % 4];
    b = take_u8(r);
    const uint32_t reduction =
        b < 0xF0 ? b % 2u : (uint32_t[]){2, 3, 0x80000000u, UINT32_MAX}[b % 4];
    b = take_u8(r);
    const uint32_t flags = b < 0xF0 ? (uint32_t)(b & LSTM_CTC_ZERO_INFINITY) : take_u32(r);
    const uint32_t layout = take_layout(r);
    /* config, sequences, logits, label_lengths (or decoded labels), outputs
     * (or decoded lengths), outputs->loss */
    const int null = take_null(r, decode ? 5 : 6);
    verdict v = {0, 0};
    if (null >= 0)
        v.broken |= BIT(LSTM_E_NULL);
    if (C < 2 || C > LSTM_MAX_SIZE || T == 0 || T > LSTM_MAX_SIZE || B == 0 || B > LSTM_MAX_SIZE)
        v.broken |= BIT(LSTM_E_SIZE);
    size_t elements;
    bool absurd = v.broken != 0;
    if (!mul3(T, B, C, &elements) || floats_absurd(elements)) {
        v.broken |= BIT(LSTM_E_OVERFLOW);
        absurd = true;
    }
    if (blank >= C || !layout_known(layout) ||
        (!decode && (reduction > LSTM_CTC_SUM || (flags & ~LSTM_CTC_ZERO_INFINITY) != 0)))
        v.broken |= BIT(LSTM_E_ARG);
    if (!absurd && (T * B > MAX_ROWS || !floats_fit(elements)))
        return;

    float dummy[1] = {0.0f};
    int32_t dummy_labels[1] = {1};
    size_t dummy_lengths[1] = {1};
    const size_t *lengths = NULL, *label_lengths = dummy_lengths;
    const float *logits = dummy;
    const int32_t *labels = dummy_labels;
    float *grad = NULL;
    double *losses = NULL;
    const bool batch_first = layout == LSTM_LAYOUT_BATCH_MAJOR;
    if (!absurd) {
        lengths = take_lengths(r, sc, T, B, &v);
        input in = take_input(r, sc, elements, false);
        if (in.poisoned != SIZE_MAX) {
            /* read only where a sequence runs; with bad lengths, maybe never */
            if (v.broken & BIT(LSTM_E_ARG))
                v.tolerated |= BIT(LSTM_E_NONFINITE);
            else if (element_runs(in.poisoned, C, T, B, batch_first, lengths))
                v.broken |= BIT(LSTM_E_NONFINITE);
        }
        logits = in.data;
        if (!decode) {
            size_t *taken = scratch_alloc(sc, B * sizeof *taken);
            size_t total = 0;
            bool huge = false;
            for (size_t k = 0; k < B; k++) {
                const uint8_t byte = take_u8(r);
                taken[k] = byte < 0xF8 ? byte % (T + 2)
                                       : (size_t[]){0, LSTM_MAX_SIZE + 1, SIZE_MAX, T}[byte % 4];
                if (taken[k] > LSTM_MAX_SIZE) {
                    v.broken |= BIT(LSTM_E_SIZE);
                    huge = true;
                } else {
                    total += taken[k];
                }
            }
            label_lengths = taken;
            /* with a huge length the labels are never read */
            int32_t *values = scratch_alloc(sc, (huge ? 1 : total + 1) * sizeof *values);
            for (size_t k = 0; !huge && k < total; k++)
                values[k] = take_ctc_label(r, C, blank, &v);
            labels = values;
            if (!huge && total == 0 && take_u8(r) % 4 == 0)
                labels = NULL; /* allowed: every label is empty */
            else if (!huge && total > 0 && take_u8(r) % 16 == 0) {
                labels = NULL;
                v.broken |= BIT(LSTM_E_NULL);
            }
            if (take_u8(r) % 4 != 0) {
                losses = scratch_alloc(sc, B * sizeof *losses);
                for (size_t k = 0; k < B; k++)
                    losses[k] = NAN;
            }
            grad = take_output(r, sc, elements);
        }
    }

    lstm_ctc_config config;
    CHECK(lstm_ctc_config_init(&config, sizeof config) == LSTM_OK, "lstm_ctc_config_init");
    config.classes = C;
    config.blank = blank;
    config.reduction = reduction;
    config.flags = flags;
    const lstm_sequences sequences = {sizeof sequences, T, B, layout, lengths};
    caller_args laid[3];
    unsigned unread = 0;
    const lstm_ctc_config *config_arg =
        take_args(r, &laid[0], &config, sizeof config, null == 0 ? &unread : &v.broken);
    const lstm_sequences *sequences_arg =
        take_args(r, &laid[1], &sequences, sizeof sequences, null == 1 ? &unread : &v.broken);

    if (decode) {
        const size_t room = absurd ? 1 : T * B;
        int32_t *decoded = scratch_alloc(sc, room * sizeof *decoded);
        size_t *decoded_lengths = scratch_alloc(sc, (absurd ? 1 : B) * sizeof *decoded_lengths);
        for (size_t k = 0; k < room; k++)
            decoded[k] = DECODE_SENTINEL;
        for (size_t k = 0; k < (absurd ? 1 : B); k++)
            decoded_lengths[k] = SIZE_MAX;
        arm_message();
        const lstm_status status =
            lstm_ctc_greedy_decode(null == 0 ? NULL : config_arg, null == 1 ? NULL : sequences_arg,
                                   null == 2 ? NULL : logits, null == 3 ? NULL : decoded,
                                   null == 4 ? NULL : decoded_lengths);
        if (!check_status("lstm_ctc_greedy_decode", status, v)) {
            for (size_t k = 0; k < room; k++)
                CHECK(decoded[k] == DECODE_SENTINEL, "a failed CTC decode wrote labels[%zu]", k);
            for (size_t k = 0; k < (absurd ? 1 : B); k++)
                CHECK(decoded_lengths[k] == SIZE_MAX, "a failed CTC decode wrote a length");
            return;
        }
        for (size_t seq = 0; seq < B; seq++) {
            const size_t steps = lengths != NULL ? lengths[seq] : T;
            CHECK(decoded_lengths[seq] <= steps, "decoded %zu labels from %zu steps",
                  decoded_lengths[seq], steps);
            for (size_t k = 0; k < T; k++) {
                const int32_t label = decoded[seq * T + k];
                if (k < decoded_lengths[seq])
                    CHECK(label >= 0 && (size_t)label < C && (size_t)label != blank,
                          "decoded label %d (C %zu, blank %zu)", (int)label, C, blank);
                else
                    CHECK(label == DECODE_SENTINEL, "decode wrote past a label's end");
            }
        }
        return;
    }

    double loss = NAN;
    const lstm_ctc_outputs outputs = {sizeof outputs, null == 5 ? NULL : &loss, losses, grad};
    const lstm_ctc_outputs *outputs_arg =
        take_args(r, &laid[2], &outputs, sizeof outputs, null == 4 ? &unread : &v.broken);
    arm_message();
    const lstm_status status = lstm_ctc_loss(
        null == 0 ? NULL : config_arg, null == 1 ? NULL : sequences_arg, null == 2 ? NULL : logits,
        labels, null == 3 ? NULL : label_lengths, null == 4 ? NULL : outputs_arg);
    if (!check_status("lstm_ctc_loss", status, v)) {
        CHECK(isnan(loss) && all_canary(grad, absurd ? 0 : elements),
              "a failed lstm_ctc_loss wrote an output");
        for (size_t k = 0; losses != NULL && k < B; k++)
            CHECK(isnan(losses[k]), "a failed lstm_ctc_loss wrote losses[%zu]", k);
        return;
    }
    check_ctc_outputs(T, B, C, batch_first, lengths, label_lengths, reduction == LSTM_CTC_MEAN,
                      (flags & LSTM_CTC_ZERO_INFINITY) != 0, loss, losses, grad);
}

static void op_misc(session *s, reader *r, scratch *sc)
{
    (void)s;
    (void)sc;
    const uint8_t what = take_u8(r) % 5;
    switch (what) {
    case 0: misc_config_init(r); break;
    case 1: misc_options_init(r); break;
    case 2: misc_texts(r); break;
    default: misc_schedule(r, what == 4); break;
    }
}

/* ---- the program ------------------------------------------------------------------ */

enum {
    OP_MODEL_CREATE,
    OP_MODEL_USE,
    OP_WORKSPACE,
    OP_FORWARD,
    OP_FORWARD_TRAIN,
    OP_BACKWARD,
    OP_STATE,
    OP_DENSE,
    OP_SEQUENCE_LAST,
    OP_LOSS,
    OP_OPTIM,
    OP_FILE,
    OP_MISC,
    OP_EMBEDDING,
    OP_NETWORK,
    OP_CTC,
    OP_PRECISION,
    OP_QUANTIZED,
    OPERATION_KINDS
};

static void run_operation(session *s, reader *r, uint8_t op)
{
    scratch sc = {{NULL}, 0};
    switch (op % OPERATION_KINDS) {
    case OP_MODEL_CREATE: op_model_create(s, r, &sc); break;
    case OP_MODEL_USE: op_model_use(s, r, &sc); break;
    case OP_WORKSPACE: op_workspace(s, r, &sc); break;
    case OP_FORWARD: op_forward(s, r, &sc, false); break;
    case OP_FORWARD_TRAIN: op_forward(s, r, &sc, true); break;
    case OP_BACKWARD: op_backward(s, r, &sc); break;
    case OP_STATE: op_state(s, r, &sc); break;
    case OP_DENSE: op_dense(s, r, &sc); break;
    case OP_SEQUENCE_LAST: op_sequence_last(s, r, &sc); break;
    case OP_LOSS: op_loss(s, r, &sc); break;
    case OP_OPTIM: op_optim(s, r, &sc); break;
    case OP_FILE: op_file(s, r, &sc); break;
    case OP_EMBEDDING: op_embedding(s, r, &sc); break;
    case OP_NETWORK: op_network(s, r, &sc); break;
    case OP_CTC: op_ctc(s, r, &sc); break;
    case OP_PRECISION: op_precision(s, r, &sc); break;
    case OP_QUANTIZED: op_quantized(s, r, &sc); break;
    default: op_misc(s, r, &sc); break;
    }
    scratch_free(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size, 0};
    session s;
    memset(&s, 0, sizeof s);
    for (int n = 0; n < MAX_OPERATIONS && r.at < r.size; n++)
        run_operation(&s, &r, take_u8(&r));
    session_end(&s);
    return 0;
}

#ifndef LSTM_FUZZ_LIBFUZZER
/* ---- the plain program: replay inputs, write the seed corpus ------------------------ */

static bool write_seed(const char *directory, const char *name, const uint8_t *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    FILE *file = fopen(path, "wb");
    bool ok = file != NULL && fwrite(data, 1, size, file) == size;
    if (file != NULL && fclose(file) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "fuzz_api: cannot write %s\n", path);
    else
        printf("%6zu  %s\n", size, path);
    return ok;
}

/*
 * Seeds are programs written with the opcodes and the argument bytes each
 * operation reads, in order (see the op_ functions). Small sizes are byte
 * values below 0xF0 taken modulo (limit + 1); 0 bytes pick defaults.
 */
#  define PROGRAM(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* op_model_create: slot, I, H, L, proj?, flags, dropout?, struct_size, NULL */
#  define MODEL(slot, I, H, L, flags) OP_MODEL_CREATE, slot, I, H, L, 0, flags, 0, 0, 0
/* op_model_use init: slot, 1, NULL, seed (8 bytes), flags */
#  define INIT(slot) OP_MODEL_USE, slot, 1, 0, 42, 0, 0, 0, 0, 0, 0, 0, 1
/* op_workspace create: slot, 0, NULL */
#  define WORKSPACE(slot) OP_WORKSPACE, slot, 0, 0
/* op_forward{,_train}: slot, T, B, NULL, lengths?, x seed, x poison, h0 (nullable: 0 = NULL),
 * c0, y?, hT?, cT? */
#  define FORWARD(op, slot, T, B) op, slot, T, B, 0, 0, 1, 0, 0, 0, 1, 1, 1
/* op_backward: slot, NULL, dy (1 = present), seed, poison, dhT: NULL, dcT: NULL, dx, dh0, dc0 */
#  define BACKWARD(slot) OP_BACKWARD, slot, 0, 1, 3, 0, 0, 0, 1, 1, 1
/* The argument-struct forms set bit 1 of the slot byte. op_forward: slot | 2, T, B, NULL,
 * layout, then as FORWARD from lengths? on; then outputs given (1), the struct_sizes of the
 * sequences, inputs and outputs (0: their own) */
#  define FORWARD_STRUCTS(op, slot, T, B, layout) \
    op, 2 | (slot), T, B, 0, layout, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0
/* op_backward: slot | 2, as BACKWARD; then output and input gradients given (1, 1), their
 * struct_sizes */
#  define BACKWARD_STRUCTS(slot) OP_BACKWARD, 2 | (slot), 0, 1, 3, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0

static int make_corpus(const char *directory)
{
    const struct {
        const char *name;
        const uint8_t *program;
        size_t size;
    } seeds[] = {
        {"train-step.bin", PROGRAM(MODEL(0, 3, 4, 1, 0), INIT(0), WORKSPACE(0),
                                   FORWARD(OP_FORWARD_TRAIN, 0, 5, 2), BACKWARD(0))},
        {"train-bidir-two-layers.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_BIDIRECTIONAL), INIT(0), WORKSPACE(0),
                 FORWARD(OP_FORWARD_TRAIN, 0, 4, 3), BACKWARD(0), FORWARD(OP_FORWARD, 0, 4, 3))},
        {"train-lengths-batch-first.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST), INIT(0), WORKSPACE(0),
                 /* T 6, B 3, lengths 6 3 1, x, h0 and c0 given, every output */
                 OP_FORWARD_TRAIN, 0, 6, 3, 0, 1, 5, 2, 0, 1, 0, 1, 4, 0, 1, 5, 0, 1, 1, 1,
                 BACKWARD(0))},
        {"stream.bin", PROGRAM(MODEL(0, 2, 3, 2, LSTM_PEEPHOLE), INIT(0),
                               /* state create: slot, 0, B, NULL */
                               OP_STATE, 0, 0, 2, 0,
                               /* stream: slot, 5, NULL state, steps, NULL, x seed, x poison, y */
                               OP_STATE, 0, 5, 0, 3, 0, 7, 0, 1, OP_STATE, 0, 5, 0, 1, 0, 8, 0, 1)},
        {"optimizer.bin",
         PROGRAM(MODEL(0, 2, 3, 1, 0), INIT(0), WORKSPACE(0),
                 /* optim create: 0, kind Adam, flags, 10 fields, threads, struct_size, NULL */
                 OP_OPTIM, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                 /* add_model: 2, slot, through add_model */
                 OP_OPTIM, 2, 0, 1, FORWARD(OP_FORWARD_TRAIN, 0, 3, 2), BACKWARD(0),
                 /* clip_grad_norm: 6, NULL, max_norm, total */
                 OP_OPTIM, 6, 0, 100, 0,
                 /* step: 4, NULL */
                 OP_OPTIM, 4, 0,
                 /* save/load state: 9, NULL, NULL bytes, count, damage */
                 OP_OPTIM, 9, 0, 0, 0, 0)},
        {"dense-head.bin",
         PROGRAM(/* dense create: 0, in, out, NULL */
                 OP_DENSE, 0, 4, 3, 0,
                 /* init: 2, NULL, seed */
                 OP_DENSE, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0,
                 /* forward: 4, NULL, rows, NULL, x seed, x poison */
                 OP_DENSE, 4, 0, 6, 0, 9, 0,
                 /* backward: 5, NULL, rows, NULL, x seed, poison, dz seed, poison, dx */
                 OP_DENSE, 5, 0, 6, 0, 9, 0, 11, 0, 1,
                 /* cross-entropy: 0, rows, classes, NULL, logits seed, poison, ignore,
                  * 4 targets, grad */
                 OP_LOSS, 0, 4, 3, 0, 5, 0, 0, 0, 1, 2, 1, 1)},
        {"optimizer-sgd-dense.bin",
         PROGRAM(OP_DENSE, 0, 3, 2, 0,
                 /* SGD, momentum 0.5 (0xC0 then a real), Nesterov off */
                 OP_OPTIM, 0, 0, 0, 0, 0, 0xC0, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 /* bind the dense layer: 3, same buffer?, NULL, count */
                 OP_OPTIM, 3, 0, 0, 0, OP_DENSE, 5, 0, 4, 0, 9, 0, 11, 0, 1, OP_OPTIM, 7, 0, 100,
                 OP_OPTIM, 4, 0, OP_OPTIM, 5, 0)},
        {"save-load.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_PEEPHOLE | LSTM_BATCH_FIRST), INIT(0), OP_OPTIM, 0, 4, 0, 0,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, OP_OPTIM, 2, 0, 1,
                 /* file: slot, with optim, NULL, capacity, damage, load NULL, into slot 1, optim */
                 OP_FILE, 0, 1, 0, 0, 0, 0, 1, 1)},
        {"ctc.bin",
         PROGRAM(/* loss (0); T 6, B 3, C 5, blank 0, mean, zero_infinity, time-major,
                  * NULL none; lengths? (6 3 1); logits seed, poison; label lengths 2 1 3
                  * (the last has no alignment in 1 step); 6 labels (1 1 2 3 4 2), labels
                  * given, losses, grad; struct_sizes of config, sequences, outputs */
                 OP_CTC, 0, 6, 3, 5, 0, 0, 1, 0, 0, 1, 5, 2, 0, 7, 0, 2, 1, 3, 0, 0, 1, 2, 3, 1, 1,
                 1, 1, 0, 0, 0,
                 /* decode (1); T 6, B 3, C 5, blank 2, (reduction, flags), batch-major,
                  * NULL none; no lengths; logits seed, poison; struct_sizes */
                 OP_CTC, 1, 6, 3, 5, 2, 0, 0, LSTM_LAYOUT_BATCH_MAJOR, 0, 0, 9, 0, 0, 0)},
        {"sequence-last.bin",
         PROGRAM(/* forward (0); T, B, features, flags, NULL, lengths?, 3 lengths, seed,
                  * poison */
                 OP_SEQUENCE_LAST, 0, 4, 3, 2, 2, 0, 1, 1, 3, 2, 5, 0)},
        {"structs-train-step.bin",
         PROGRAM(MODEL(0, 3, 4, 1, 0), INIT(0), WORKSPACE(0),
                 FORWARD_STRUCTS(OP_FORWARD_TRAIN, 0, 5, 2, LSTM_LAYOUT_MODEL), BACKWARD_STRUCTS(0),
                 FORWARD_STRUCTS(OP_FORWARD, 0, 5, 2, LSTM_LAYOUT_MODEL))},
        {"structs-layout-lengths.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_BIDIRECTIONAL), INIT(0), WORKSPACE(0),
                 /* T 6, B 3, batch-major on a time-major model, lengths 6 3 1, x, h0 and
                  * c0 given, every output; the sequences' struct_size a newer caller's
                  * (12: 8 bytes more, zero) */
                 OP_FORWARD_TRAIN, 2, 6, 3, 0, LSTM_LAYOUT_BATCH_MAJOR, 1, 5, 2, 0, 1, 0, 1, 4, 0,
                 1, 5, 0, 1, 1, 1, 1, 12, 0, 0, BACKWARD_STRUCTS(0),
                 FORWARD_STRUCTS(OP_FORWARD, 0, 6, 3, LSTM_LAYOUT_TIME_MAJOR))},
        {"structs-stream-lengths.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_PEEPHOLE), INIT(0), OP_STATE, 0, 0, 2, 0,
                 /* stream: slot | 2, 5, NULL state, steps, NULL, layout, batch (the
                  * state's), lengths? (3 1), x seed, x poison, y, hT, cT, h0 and c0 NULL,
                  * outputs given, struct_sizes */
                 OP_STATE, 2, 5, 0, 3, 0, LSTM_LAYOUT_MODEL, 0, 1, 2, 0, 7, 0, 1, 1, 1, 0, 1, 0, 0,
                 0, OP_STATE, 0, 5, 0, 1, 0, 8, 0, 1, OP_STATE, 2, 5, 0, 2, 0,
                 LSTM_LAYOUT_BATCH_MAJOR, 0, 0, 9, 0, 1, 1, 1, 0, 1, 0, 0, 0)},
        {"structs-train-chunk.bin",
         PROGRAM(MODEL(0, 2, 3, 1, 0), INIT(0), WORKSPACE(0), OP_STATE, 0, 0, 2, 0,
                 /* training chunk: as the stream above, 6, 4 steps, lengths 4 2 */
                 OP_STATE, 2, 6, 0, 4, 0, LSTM_LAYOUT_MODEL, 0, 1, 3, 1, 7, 0, 1, 1, 1, 0, 1, 0, 0,
                 0, BACKWARD_STRUCTS(0))},
        {"embedding.bin",
         PROGRAM(/* create: 0, V 9, E 4, flags (padding), _, padding_idx 2 (12 - 10),
                  * struct_size, NULL */
                 OP_EMBEDDING, 0, 9, 4, 1, 0, 12, 0, 0,
                 /* init: 6, NULL, seed */
                 OP_EMBEDDING, 6, 0, 7, 0, 0, 0, 0, 0, 0, 0,
                 /* forward: 4, count, NULL, ids seed, bad id? */
                 OP_EMBEDDING, 4, 6, 0, 3, 0,
                 /* the same with ids[2] = V + 1 */
                 OP_EMBEDDING, 4, 6, 0, 3, 0xE4, 2, 0, 0, 0,
                 /* SGD with momentum, bound to the embedding (8: same buffer?, NULL,
                  * count), backward (5: as forward, then dout seed, poison), step,
                  * get_config (2: struct_size, NULL, NULL embedding) */
                 OP_OPTIM, 0, 0, 0, 0, 0, 0xC0, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, OP_EMBEDDING, 8,
                 0, 0, 0, OP_EMBEDDING, 5, 6, 0, 3, 0, 5, 0, OP_OPTIM, 4, 0, OP_EMBEDDING, 2, 0, 0,
                 0, OP_EMBEDDING, 4, 6, 0, 3, 0)},
        {"embedding-lazy.bin",
         PROGRAM(OP_EMBEDDING, 0, 9, 4, 1, 0, 12, 0, 0, OP_EMBEDDING, 6, 0, 7, 0, 0, 0, 0, 0, 0, 0,
                 /* Adam with LSTM_OPTIM_LAZY_ROWS (flags byte 0xD0), bound with
                  * lstm_optim_add_embedding (9: NULL), backward, step */
                 OP_OPTIM, 0, 3, 0xD0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, OP_EMBEDDING, 9, 0,
                 OP_EMBEDDING, 5, 6, 0, 3, 0, 5, 0, OP_OPTIM, 4, 0,
                 /* touched rows (10: NULL, then zero them: yes, NULL) */
                 OP_EMBEDDING, 10, 0, 1, 0,
                 /* another backward, clip by norm, step, zero, a step with nothing touched */
                 OP_EMBEDDING, 5, 6, 0, 4, 0, 6, 0, OP_OPTIM, 6, 0, 100, 0, OP_OPTIM, 4, 0,
                 OP_OPTIM, 5, 0, OP_OPTIM, 4, 0,
                 /* lazy SGD on the same layer: create, bind, backward, step, state */
                 OP_OPTIM, 0, 0, 0xD0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, OP_EMBEDDING, 9, 0,
                 OP_EMBEDDING, 5, 6, 0, 5, 0, 7, 0, OP_OPTIM, 4, 0, OP_OPTIM, 9, 0, 0, 0, 0)},
        {"network-language-model.bin",
         PROGRAM(/* network create: 0, I 3, H 4, L 1, flags, tokens, V 9, E = I, head every
                  * step, cross-entropy, head_size 5, struct_size, NULL; init seed */
                 OP_NETWORK, 0, 3, 4, 0, 0, 1, 9, 0, 1, 1, 5, 0, 0, 7,
                 /* training forward: 3, T 5, B 2, layout, NULL, input, lengths (5 2), ids
                  * seed, bad id?, output, hT, cT, struct_sizes */
                 OP_NETWORK, 3, 5, 2, 0, 0, 0, 1, 4, 1, 3, 0, 1, 1, 1, 0, 0, 0,
                 /* backward: 4, NULL, classes given, seed, bad class?, struct_size, loss */
                 OP_NETWORK, 4, 0, 1, 5, 0, 0, 1,
                 /* inference with ids[3] = V (past sequence 1's end: never read) */
                 OP_NETWORK, 2, 5, 2, 0, 0, 0, 1, 4, 1, 3, 0xE0, 7, 0, 0, 0, 1, 1, 1, 0, 0, 0,
                 /* loss: 5, T 5, B 2, layout, lengths, output seed, poison, classes */
                 OP_NETWORK, 5, 4, 1, 0, 1, 4, 1, 9, 0, 1, 5, 0)},
        {"network-features-last-step.bin",
         PROGRAM(/* I 3, H 4, L 2, bidirectional and batch-first, features, last step, MSE,
                  * head_size 2 */
                 OP_NETWORK, 0, 3, 4, 1, LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST, 0, 0, 0, 2, 3, 2, 0,
                 0, 7,
                 /* training forward: T 4, B 3, lengths 4 2 3, features seed, poison */
                 OP_NETWORK, 3, 4, 3, 0, 0, 0, 1, 3, 1, 2, 5, 0, 1, 1, 1, 0, 0, 0,
                 /* backward: values seed, poison */
                 OP_NETWORK, 4, 0, 1, 6, 0, 0, 1)},
        {"precision-infer.bin",
         PROGRAM(MODEL(0, 3, 4, 2, 0), INIT(0), WORKSPACE(0),
                 /* set_precision on the workspace: 0, NULL?, bf16; then int8 */
                 OP_PRECISION, 0, 0, 1, FORWARD(OP_FORWARD, 0, 5, 2), OP_PRECISION, 0, 0, 2,
                 FORWARD(OP_FORWARD, 0, 5, 2),
                 /* keep_weights: 3, NULL?, keep; a precision that is none (3: LSTM_E_ARG) */
                 OP_PRECISION, 3, 0, 1, FORWARD(OP_FORWARD, 0, 5, 2), OP_PRECISION, 0, 0, 0xF0,
                 FORWARD(OP_FORWARD, 0, 5, 2), FORWARD_STRUCTS(OP_FORWARD, 0, 4, 3, 0))},
        {"precision-stream.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_PEEPHOLE), INIT(0), OP_STATE, 0, 0, 2, 0,
                 /* the state in int8 (1, NULL?, int8), then kept */
                 OP_PRECISION, 1, 0, 2, OP_STATE, 0, 5, 0, 3, 0, 7, 0, 1, OP_PRECISION, 4, 0, 1,
                 OP_STATE, 0, 5, 0, 1, 0, 8, 0, 1, OP_STATE, 0, 5, 0, 2, 0, 9, 0, 1)},
        {"quantized-save-load.bin",
         PROGRAM(MODEL(0, 2, 3, 2, LSTM_BIDIRECTIONAL), INIT(0),
                 /* save slot 0 in int8 (form, precision, NULL?, capacity), the file loaded
                  * into slot 1; run it in int8 and save it again (its weights as stored) */
                 OP_QUANTIZED, 0, 2, 0, 0, 1, WORKSPACE(1), OP_PRECISION, 0, 0, 2,
                 FORWARD(OP_FORWARD, 1, 3, 2), OP_QUANTIZED, 1, 2, 0, 0, 0,
                 /* bf16, float32, a precision that is none, a buffer too small */
                 OP_QUANTIZED, 0, 1, 0, 0, 0, OP_QUANTIZED, 0, 0, 0, 0, 0, OP_QUANTIZED, 0, 0xF1, 0,
                 OP_QUANTIZED, 0, 1, 0, 0xE0, 9, 0, 0, 0)},
        {"quantized-network.bin",
         PROGRAM(OP_NETWORK, 0, 3, 4, 0, 0, 1, 9, 0, 1, 1, 5, 0, 0, 7,
                 /* the network saved in int8 and loaded in its place; its workspace in int8 */
                 OP_QUANTIZED, 2, 2, 0, 0, 1, OP_PRECISION, 2, 0, 2, OP_NETWORK, 2, 5, 2, 0, 0, 0,
                 1, 4, 1, 3, 0, 1, 1, 1, 0, 0, 0,
                 /* and in bf16 */
                 OP_QUANTIZED, 2, 1, 0, 0, 0)},
    };
    bool ok = true;
    for (size_t n = 0; n < sizeof seeds / sizeof seeds[0]; n++)
        ok &= write_seed(directory, seeds[n].name, seeds[n].program, seeds[n].size);
    return ok ? 0 : 1;
}

static bool replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "fuzz_api: cannot open %s\n", path);
        return false;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    uint8_t chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, file)) > 0) {
        uint8_t *grown = realloc(data, size + got);
        CHECK(grown != NULL, "out of memory");
        data = grown;
        memcpy(data + size, chunk, got);
        size += got;
    }
    bool ok = !ferror(file);
    fclose(file);
    if (ok) {
        LLVMFuzzerTestOneInput(data != NULL ? data : (const uint8_t *)"", size);
        printf("ok %6zu  %s\n", size, path);
    } else {
        fprintf(stderr, "fuzz_api: cannot read %s\n", path);
    }
    free(data);
    return ok;
}

#  include "replay.h"

int main(int argc, char **argv)
{
    const char *trace_setting = getenv("LSTM_FUZZ_TRACE");
    trace = trace_setting != NULL && strcmp(trace_setting, "1") == 0;
    if (argc == 3 && strcmp(argv[1], "--make-corpus") == 0)
        return make_corpus(argv[2]);
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s FILE|DIR...        run each input once\n"
                "       %s --make-corpus DIR  write the seed corpus\n",
                argv[0], argv[0]);
        return 2;
    }
    bool ok = true;
    for (int n = 1; n < argc; n++)
        ok &= replay_path("fuzz_api", argv[n], replay_file);
    return ok ? 0 : 1;
}
#endif /* LSTM_FUZZ_LIBFUZZER */
