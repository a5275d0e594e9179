/*
 * Optimizers with torch.optim's update rules (PyTorch 1.13, the
 * single-tensor path), over any bound float32 buffers.
 *
 * The elementwise arithmetic follows PyTorch's order of operations and
 * roundings: every Python-side scalar (lr / (1 - beta1^t), 1 - alpha, ...) is
 * computed in double and rounded to float once, as PyTorch does when it
 * hands a scalar to a float32 kernel; every in-place tensor op is one
 * rounding. The results agree with torch.optim to the last bit or two.
 *
 * This module uses only the public views of the model (lstm/model.h), of
 * the embedding layer (lstm/embedding.h), the dense layer (lstm/head.h) and
 * the network (lstm/network.h).
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "alloc.h"
#include "bytes.h"
#include "check.h"
#include "compiler.h"
#include "error.h"
#include "pool.h"
#include "touch.h"
#include "lstm/network.h"
#include "lstm/optim.h"

/* The first published lstm_optim_options ends after threads. */
#define OPTIONS_V1_SIZE (offsetof(lstm_optim_options, threads) + sizeof(uint32_t))

#define KNOWN_FLAGS \
  (LSTM_OPTIM_NESTEROV | LSTM_OPTIM_CENTERED | LSTM_OPTIM_AMSGRAD | LSTM_OPTIM_MAXIMIZE | \
   LSTM_OPTIM_LAZY_ROWS)

/* Up to three state arrays per parameter (RMSprop centred with momentum). */
enum { MAX_STATE_ARRAYS = 3, MAX_THREADS = 8 };

/* With threads = 0, below this many parameters a step runs on the calling
 * thread only, and the optimizer starts no thread (lstm/optim.h). */
#define PARALLEL_MIN_PARAMS ((size_t)1 << 20)

/* One bound parameter buffer, its gradients and its slice of the state. */
typedef struct binding {
    float *params;
    float *grads;
    size_t count;
    float *state[MAX_STATE_ARRAYS];
    lstm_model *model; /* whose params these are (lstm_optim_add_model()), or NULL */
    /* whose params these are (lstm_optim_add_embedding()), or NULL; lazy:
     * only its touched rows, of row_size floats each, are read and written */
    lstm_embedding *embedding;
    size_t row_size;
    bool lazy;
} binding;

struct lstm_optim {
    lstm_optim_options options;
    size_t state_arrays; /* S: how many of binding.state are used */
    binding *bindings;
    size_t binding_count;
    size_t param_count;
    uint64_t steps;
    size_t online_cpus; /* asked once: sysconf reads a file every time */
    /* The threads of every step, started when the thread policy first asks
     * for more than one (thread_count()) and kept until destroy; NULL: the
     * calling thread alone. */
    pool *workers;
};

/* ---- options ---------------------------------------------------------- */

LSTM_API lstm_status lstm_optim_options_init(lstm_optim_options *options, size_t struct_size,
                                             lstm_optim_kind kind)
{
    if (options == NULL)
        return lstm__fail(LSTM_E_NULL, "options is NULL");
    lstm_optim_options defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.struct_size = sizeof defaults;
    defaults.kind = kind;
    defaults.alpha = 0.99;
    defaults.beta1 = 0.9;
    defaults.beta2 = 0.999;
    defaults.eps = 1e-8;
    switch (kind) {
    case LSTM_OPTIM_SGD: defaults.lr = 0.01; break;
    case LSTM_OPTIM_ADAGRAD:
        defaults.lr = 0.01;
        defaults.eps = 1e-10;
        break;
    case LSTM_OPTIM_RMSPROP: defaults.lr = 0.01; break;
    case LSTM_OPTIM_ADAM: defaults.lr = 0.001; break;
    case LSTM_OPTIM_ADAMW:
        defaults.lr = 0.001;
        defaults.weight_decay = 0.01;
        break;
    default: return lstm__fail(LSTM_E_ARG, "kind %d is not an lstm_optim_kind", (int)kind);
    }
    return lstm__abi_struct_write(options, struct_size, &defaults, sizeof defaults, OPTIONS_V1_SIZE,
                                  "options");
}

/* LSTM_E_ARG unless lo <= value (and value < hi when hi_open), value finite. */
static lstm_status check_range(const char *name, double value, double lo, double hi)
{
    if (!isfinite(value) || value < lo || value >= hi)
        return lstm__fail(LSTM_E_ARG, "options.%s is %g; it must be finite, >= %g and < %g", name,
                          value, lo, hi);
    return LSTM_OK;
}

/*
 * LSTM_OPTIM_LAZY_ROWS: the kinds and options whose lazy update is defined
 * (lstm/optim.h). SparseAdam has no weight decay and no AMSGrad; SGD's
 * momentum and weight decay would move rows the gradient never reached.
 */
static lstm_status check_lazy_rows(const lstm_optim_options *o)
{
    switch (o->kind) {
    case LSTM_OPTIM_SGD:
        if (o->momentum != 0.0 || o->weight_decay != 0.0)
            return lstm__fail(LSTM_E_ARG,
                              "LSTM_OPTIM_LAZY_ROWS with SGD needs options.%s = 0 (it is %g): "
                              "it would move rows no gradient reached",
                              o->momentum != 0.0 ? "momentum" : "weight_decay",
                              o->momentum != 0.0 ? o->momentum : o->weight_decay);
        return LSTM_OK;
    case LSTM_OPTIM_ADAM:
        if (o->weight_decay != 0.0)
            return lstm__fail(LSTM_E_ARG,
                              "LSTM_OPTIM_LAZY_ROWS with Adam needs options.weight_decay = 0 "
                              "(it is %g): torch.optim.SparseAdam has no weight decay",
                              o->weight_decay);
        if (o->flags & LSTM_OPTIM_AMSGRAD)
            return lstm__fail(LSTM_E_ARG,
                              "LSTM_OPTIM_LAZY_ROWS with Adam excludes LSTM_OPTIM_AMSGRAD: "
                              "torch.optim.SparseAdam has no AMSGrad");
        return LSTM_OK;
    default:
        return lstm__fail(LSTM_E_ARG,
                          "LSTM_OPTIM_LAZY_ROWS is for LSTM_OPTIM_SGD and LSTM_OPTIM_ADAM only; "
                          "options.kind is %d",
                          (int)o->kind);
    }
}

static lstm_status check_options(const lstm_optim_options *o)
{
    const double any = INFINITY;
    lstm_status status;
    if ((o->flags & ~KNOWN_FLAGS) != 0)
        return lstm__fail(LSTM_E_ARG, "options.flags 0x%x holds unknown bits", (unsigned)o->flags);
    if ((status = check_range("lr", o->lr, 0.0, any)) != LSTM_OK ||
        (status = check_range("weight_decay", o->weight_decay, 0.0, any)) != LSTM_OK)
        return status;
    /* SGD has no eps; a field a kind does not use is ignored (lstm/optim.h). */
    if (o->kind != LSTM_OPTIM_SGD && (status = check_range("eps", o->eps, 0.0, any)) != LSTM_OK)
        return status;
    /* (an unknown kind is named below) */
    if ((o->flags & LSTM_OPTIM_LAZY_ROWS) && (unsigned)o->kind <= (unsigned)LSTM_OPTIM_ADAMW &&
        (status = check_lazy_rows(o)) != LSTM_OK)
        return status;
    switch (o->kind) {
    case LSTM_OPTIM_SGD:
        if ((status = check_range("momentum", o->momentum, 0.0, any)) != LSTM_OK ||
            (status = check_range("dampening", o->dampening, -any, any)) != LSTM_OK)
            return status;
        if ((o->flags & LSTM_OPTIM_NESTEROV) && (o->momentum <= 0.0 || o->dampening != 0.0))
            return lstm__fail(LSTM_E_ARG, "Nesterov momentum needs momentum > 0 and dampening = 0");
        return LSTM_OK;
    case LSTM_OPTIM_ADAGRAD:
        if ((status = check_range("lr_decay", o->lr_decay, 0.0, any)) != LSTM_OK)
            return status;
        return check_range("initial_accumulator_value", o->initial_accumulator_value, 0.0, any);
    case LSTM_OPTIM_RMSPROP:
        if ((status = check_range("momentum", o->momentum, 0.0, any)) != LSTM_OK)
            return status;
        return check_range("alpha", o->alpha, 0.0, any);
    case LSTM_OPTIM_ADAM:
    case LSTM_OPTIM_ADAMW:
        if ((status = check_range("beta1", o->beta1, 0.0, 1.0)) != LSTM_OK)
            return status;
        return check_range("beta2", o->beta2, 0.0, 1.0);
    }
    return lstm__fail(LSTM_E_ARG, "options.kind %d is not an lstm_optim_kind", (int)o->kind);
}

/* The state arrays a configuration keeps, in the documented order. */
static size_t state_array_count(const lstm_optim_options *o)
{
    switch (o->kind) {
    case LSTM_OPTIM_SGD: return o->momentum != 0.0 ? 1 : 0;
    case LSTM_OPTIM_ADAGRAD: return 1;
    case LSTM_OPTIM_RMSPROP:
        return (size_t)1 + ((o->flags & LSTM_OPTIM_CENTERED) ? 1u : 0u) +
               (o->momentum > 0.0 ? 1u : 0u);
    case LSTM_OPTIM_ADAM:
    case LSTM_OPTIM_ADAMW: return (size_t)2 + ((o->flags & LSTM_OPTIM_AMSGRAD) ? 1u : 0u);
    }
    return 0;
}

/* ---- create, bind, destroy -------------------------------------------- */

/*
 * The threads of a step with param_count parameters bound: options.threads,
 * or with 0 the calling thread alone below PARALLEL_MIN_PARAMS and one
 * thread per online CPU from there; at most MAX_THREADS. The count of bound
 * parameters only grows, and only before the first step, so once above 1
 * this never changes again.
 */
static size_t thread_count(const lstm_optim *optim, size_t param_count)
{
    size_t threads = optim->options.threads;
    if (threads == 0)
        threads = param_count < PARALLEL_MIN_PARAMS ? 1 : optim->online_cpus;
    return threads < MAX_THREADS ? threads : MAX_THREADS;
}

/*
 * Starts the steps' threads when param_count parameters ask for more than
 * one and none run yet: at create or at a binding, never at a step. The new
 * pool, or NULL, goes to *started, for the caller to keep once nothing else
 * can fail.
 */
static lstm_status start_workers(const lstm_optim *optim, size_t param_count, pool **started)
{
    *started = NULL;
    const size_t threads = thread_count(optim, param_count);
    if (threads < 2 || optim->workers != NULL)
        return LSTM_OK;
    if ((*started = lstm__pool_create(threads)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "starting the optimizer's %zu threads", threads);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_create(const lstm_optim_options *options, lstm_optim **out)
{
    if (options == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", options == NULL ? "options" : "out");
    lstm_optim_options known;
    lstm_status status =
        lstm__abi_struct_read(options, &known, sizeof known, OPTIONS_V1_SIZE, "options");
    if (status != LSTM_OK || (status = check_options(&known)) != LSTM_OK)
        return status;
    lstm_optim *optim = lstm__mem_alloc(sizeof *optim);
    if (optim == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating an optimizer");
    memset(optim, 0, sizeof *optim);
    optim->options = known;
    optim->state_arrays = state_array_count(&known);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    optim->online_cpus = online < 1 ? 1 : (size_t)online;
    /* an explicit thread count starts its threads here */
    pool *workers;
    if ((status = start_workers(optim, 0, &workers)) != LSTM_OK) {
        lstm__mem_free(optim);
        return status;
    }
    optim->workers = workers;
    *out = optim;
    return LSTM_OK;
}

LSTM_API void lstm_optim_destroy(lstm_optim *optim)
{
    if (optim == NULL)
        return;
    lstm__pool_destroy(optim->workers);
    for (size_t n = 0; n < optim->binding_count; n++)
        lstm__mem_free(optim->bindings[n].state[0]);
    lstm__mem_free(optim->bindings);
    lstm__mem_free(optim);
}

static int overlaps(const float *a, size_t a_count, const float *b, size_t b_count)
{
    return a < b + b_count && b < a + a_count;
}

/* LSTM_E_ARG when params or grads overlap each other or a bound buffer. */
static lstm_status check_no_overlap(const lstm_optim *optim, const float *params,
                                    const float *grads, size_t count)
{
    if (overlaps(params, count, grads, count))
        return lstm__fail(LSTM_E_ARG, "params and grads overlap");
    for (size_t n = 0; n < optim->binding_count; n++) {
        const binding *bound = &optim->bindings[n];
        if (overlaps(params, count, bound->params, bound->count) ||
            overlaps(params, count, bound->grads, bound->count) ||
            overlaps(grads, count, bound->params, bound->count) ||
            overlaps(grads, count, bound->grads, bound->count))
            return lstm__fail(LSTM_E_ARG, "the buffers overlap buffer %zu bound before", n);
    }
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_add_buffer(lstm_optim *optim, float *params, float *grads,
                                           size_t count)
{
    if (optim == NULL || params == NULL || grads == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          optim == NULL    ? "optim"
                          : params == NULL ? "params"
                                           : "grads");
    if (count == 0)
        return lstm__fail(LSTM_E_SIZE, "count is 0; it must be at least 1");
    if (optim->steps != 0)
        return lstm__fail(LSTM_E_STATE, "buffers cannot be bound after a step has been taken");
    size_t total, state_floats, state_bytes, list_bytes;
    if (!size_add(optim->param_count, count, &total) ||
        !size_mul(count, optim->state_arrays, &state_floats) ||
        !size_mul(state_floats, sizeof(float), &state_bytes) ||
        !size_mul(optim->binding_count + 1, sizeof(binding), &list_bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "binding %zu more parameters overflows size_t", count);
    lstm_status status = check_no_overlap(optim, params, grads, count);
    if (status != LSTM_OK)
        return status;

    /* Allocate everything first, so that a failure leaves the optimizer as
     * it was; with threads = 0, the threads start when the bound parameters
     * first reach PARALLEL_MIN_PARAMS. */
    binding *list = lstm__mem_alloc(list_bytes);
    float *state = state_bytes != 0 ? lstm__mem_alloc(state_bytes) : NULL;
    if (list == NULL || (state_bytes != 0 && state == NULL)) {
        lstm__mem_free(list);
        lstm__mem_free(state);
        return lstm__fail(LSTM_E_NOMEM, "allocating the state of %zu parameters", count);
    }
    pool *workers;
    if ((status = start_workers(optim, total, &workers)) != LSTM_OK) {
        lstm__mem_free(list);
        lstm__mem_free(state);
        return status;
    }
    if (workers != NULL)
        optim->workers = workers;
    if (optim->binding_count != 0)
        memcpy(list, optim->bindings, optim->binding_count * sizeof(binding));
    binding *bound = &list[optim->binding_count];
    memset(bound, 0, sizeof *bound);
    bound->params = params;
    bound->grads = grads;
    bound->count = count;
    /* Adagrad's sum starts at initial_accumulator_value, every other state at 0. */
    const float initial = optim->options.kind == LSTM_OPTIM_ADAGRAD
                              ? (float)optim->options.initial_accumulator_value
                              : 0.0f;
    for (size_t s = 0; s < optim->state_arrays; s++) {
        bound->state[s] = state + s * count;
        for (size_t k = 0; k < count; k++)
            bound->state[s][k] = s == 0 ? initial : 0.0f;
    }
    lstm__mem_free(optim->bindings);
    optim->bindings = list;
    optim->binding_count++;
    optim->param_count = total;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_add_model(lstm_optim *optim, lstm_model *model)
{
    float *params, *grads;
    size_t count;
    lstm_status status;
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    if ((status = lstm_model_params(model, &params, &count)) != LSTM_OK ||
        (status = lstm_model_grads(model, &grads, NULL)) != LSTM_OK ||
        (status = lstm_optim_add_buffer(optim, params, grads, count)) != LSTM_OK)
        return status;
    /* a step changes the model's parameters (lstm__model_touch()) */
    optim->bindings[optim->binding_count - 1].model = model;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_add_embedding(lstm_optim *optim, lstm_embedding *embedding)
{
    float *params, *grads;
    size_t count;
    lstm_status status;
    if (optim == NULL || embedding == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "embedding");
    lstm_embedding_config config;
    if ((status = lstm_embedding_config_init(&config, sizeof config)) != LSTM_OK ||
        (status = lstm_embedding_get_config(embedding, &config)) != LSTM_OK ||
        (status = lstm_embedding_params(embedding, &params, &count)) != LSTM_OK ||
        (status = lstm_embedding_grads(embedding, &grads, NULL)) != LSTM_OK ||
        (status = lstm_optim_add_buffer(optim, params, grads, count)) != LSTM_OK)
        return status;
    binding *bound = &optim->bindings[optim->binding_count - 1];
    bound->embedding = embedding;
    bound->row_size = config.embedding_dim;
    bound->lazy = (optim->options.flags & LSTM_OPTIM_LAZY_ROWS) != 0;
    return LSTM_OK;
}

/*
 * Unbinds every buffer from the first `keep` on, bound by the failing call
 * that is undoing its work (lstm_optim_add_network()): their state is freed,
 * and with none left the list too, so the optimizer holds what it held
 * before. Threads a binding started (had_workers false) are stopped.
 */
static void truncate_bindings(lstm_optim *optim, size_t keep, bool had_workers)
{
    for (size_t n = keep; n < optim->binding_count; n++) {
        optim->param_count -= optim->bindings[n].count;
        lstm__mem_free(optim->bindings[n].state[0]);
    }
    optim->binding_count = keep;
    if (keep == 0) {
        lstm__mem_free(optim->bindings);
        optim->bindings = NULL;
    }
    if (!had_workers) {
        lstm__pool_destroy(optim->workers);
        optim->workers = NULL;
    }
}

LSTM_API lstm_status lstm_optim_add_network(lstm_optim *optim, lstm_network *network)
{
    if (optim == NULL || network == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "network");
    const size_t keep = optim->binding_count;
    const bool had_workers = optim->workers != NULL;
    lstm_embedding *embedding = lstm_network_embedding(network);
    lstm_dense *head = lstm_network_head(network);
    lstm_status status = LSTM_OK;
    if (embedding != NULL)
        status = lstm_optim_add_embedding(optim, embedding);
    if (status == LSTM_OK)
        status = lstm_optim_add_model(optim, lstm_network_model(network));
    if (status == LSTM_OK && head != NULL) {
        float *params, *grads;
        size_t count;
        if ((status = lstm_dense_params(head, &params, &count)) == LSTM_OK &&
            (status = lstm_dense_grads(head, &grads, NULL)) == LSTM_OK)
            status = lstm_optim_add_buffer(optim, params, grads, count);
    }
    /* all or nothing: the parts bound before the failure are unbound */
    if (status != LSTM_OK)
        truncate_bindings(optim, keep, had_workers);
    return status;
}

LSTM_API size_t lstm_optim_param_count(const lstm_optim *optim)
{
    return optim == NULL ? 0 : optim->param_count;
}

/* ---- running work over every bound buffer, on the optimizer's threads --- */

/* Work on elements [begin, end) of one bound buffer; part names the thread. */
typedef void (*range_fn)(void *context, size_t part, binding *bound, size_t begin, size_t end);

typedef struct buffers_job {
    lstm_optim *optim;
    range_fn fn;
    void *context;
} buffers_job;

/* The rows a lazy binding reads and writes: its embedding's touched rows. */
static void lazy_rows(const binding *bound, const uint32_t **rows, size_t *count)
{
    /* cannot fail: the embedding and both pointers are not NULL */
    (void)lstm_embedding_touched_rows(bound->embedding, rows, count);
}

/* A lazy binding's part: the same share of its touched rows, a row at a time. */
static void rows_part(const buffers_job *job, binding *bound, size_t part, size_t parts)
{
    const uint32_t *rows;
    size_t count, first, last;
    lazy_rows(bound, &rows, &count);
    lstm__pool_share(count, 1, part, parts, &first, &last);
    const size_t E = bound->row_size;
    for (size_t n = first; n < last; n++)
        job->fn(job->context, part, bound, (size_t)rows[n] * E, (size_t)rows[n] * E + E);
}

/* Part `part` of `parts` takes the same share of every buffer (of a lazy
 * binding: of its touched rows). */
static void buffers_part(void *context, size_t part, size_t parts)
{
    const buffers_job *job = context;
    for (size_t n = 0; n < job->optim->binding_count; n++) {
        binding *bound = &job->optim->bindings[n];
        if (bound->lazy) {
            rows_part(job, bound, part, parts);
            continue;
        }
        size_t begin, end;
        lstm__pool_share(bound->count, 1, part, parts, &begin, &end);
        if (begin < end)
            job->fn(job->context, part, bound, begin, end);
    }
}

/* How many parts run_parallel() splits the work into. */
static size_t part_count(const lstm_optim *optim)
{
    return lstm__pool_threads(optim->workers);
}

/*
 * Runs fn over every bound element (of a lazy binding: of its touched
 * rows), split across the optimizer's threads,
 * which were started before the first step (start_workers()): a step starts
 * no thread and allocates nothing. The split depends only on the thread
 * count, and each element is touched by exactly one thread, so results do
 * not depend on scheduling.
 */
static void run_parallel(lstm_optim *optim, range_fn fn, void *context)
{
    buffers_job job = {optim, fn, context};
    lstm__pool_run(optim->workers, buffers_part, &job);
}

/* ---- the update rules -------------------------------------------------- */

/* A step's scalars, each rounded to float once as PyTorch does. */
typedef struct step_scalars {
    float sign;         /* -1 when maximising: d = -g */
    float weight_decay; /* coupled L2 term d += wd * p (not AdamW) */
    bool has_weight_decay;
    float neg_lr; /* -lr; Adagrad: -lr / (1 + (t - 1) lr_decay) */
    float momentum, one_minus_dampening;
    bool nesterov, first_step;
    float alpha, one_minus_alpha;
    bool centered, has_momentum; /* RMSprop's optional state arrays */
    float eps;
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias_correction2_sqrt; /* sqrt(1 - beta2^t) */
    float neg_step_size;         /* -lr / (1 - beta1^t) */
    float neg_sparse_step_size;  /* SparseAdam: -lr sqrt(1 - beta2^t) / (1 - beta1^t) */
    float decoupled_decay;       /* AdamW: p *= 1 - lr wd */
} step_scalars;

/*
 * The update rules. Each is written once as an inline kernel whose options
 * are compile-time constants at its call sites (the *_rule dispatchers), so
 * every variant's loop has no branches and GCC vectorises it.
 *
 * A step runs its kernel twice. The check run (commit false) stores
 * nothing: it computes every value the step would store, parameters and
 * state, and notes whether any is NaN or infinite. Only when none is does
 * the commit run store them. Whether a finite input overflows depends on
 * the rule's every operation, so only the rule itself can tell, and with
 * the commit flag it is still written once. A NaN or infinite gradient or
 * parameter always makes a stored value non-finite, so this check covers
 * them too.
 */
/* The exponent bits of a float, all ones exactly when it is NaN or infinite. */
#define EXPONENT_BITS 0x7f800000u

/* Commit: store the value. Check: note in *nonfinite whether it is NaN or
 * infinite, without a branch, so that the check loops vectorise too. */
LSTM__ALWAYS_INLINE void put(bool commit, float *dst, float value, uint32_t *nonfinite)
{
    if (commit) {
        *dst = value;
    } else {
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        *nonfinite |= (bits & EXPONENT_BITS) == EXPONENT_BITS;
    }
}

/* d = -g when maximising, then the coupled weight decay d += wd * p. */
LSTM__ALWAYS_INLINE float direction(const step_scalars *sc, float g, float p, bool weight_decay)
{
    float d = sc->sign * g;
    return weight_decay ? d + sc->weight_decay * p : d;
}

LSTM__ALWAYS_INLINE uint32_t sgd_kernel(const step_scalars *sc, binding *bound, size_t begin,
                                        size_t end, bool commit, bool weight_decay, bool momentum,
                                        bool first_step, bool nesterov)
{
    float *restrict p = bound->params;
    const float *restrict g = bound->grads;
    float *restrict buf = bound->state[0];
    uint32_t nonfinite = 0;
    for (size_t k = begin; k < end; k++) {
        float d = direction(sc, g[k], p[k], weight_decay);
        if (momentum) {
            /* buf = momentum * buf + (1 - dampening) d; the first step takes d itself */
            float b = first_step ? d : buf[k] * sc->momentum + sc->one_minus_dampening * d;
            put(commit, &buf[k], b, &nonfinite);
            /* Nesterov: d += momentum * buf; else d = buf */
            d = nesterov ? d + sc->momentum * b : b;
        }
        /* p -= lr d */
        put(commit, &p[k], p[k] + sc->neg_lr * d, &nonfinite);
    }
    return nonfinite;
}

LSTM__ALWAYS_INLINE uint32_t sgd_rule(const step_scalars *sc, binding *bound, size_t begin,
                                      size_t end, bool commit)
{
    const bool wd = sc->has_weight_decay;
    if (bound->state[0] == NULL)
        return sgd_kernel(sc, bound, begin, end, commit, wd, false, false, false);
    if (sc->first_step)
        return sgd_kernel(sc, bound, begin, end, commit, wd, true, true, sc->nesterov);
    if (sc->nesterov)
        return sgd_kernel(sc, bound, begin, end, commit, wd, true, false, true);
    return sgd_kernel(sc, bound, begin, end, commit, wd, true, false, false);
}

LSTM__ALWAYS_INLINE uint32_t adagrad_kernel(const step_scalars *sc, binding *bound, size_t begin,
                                            size_t end, bool commit, bool weight_decay)
{
    float *restrict p = bound->params;
    const float *restrict g = bound->grads;
    float *restrict sum = bound->state[0];
    uint32_t nonfinite = 0;
    for (size_t k = begin; k < end; k++) {
        float d = direction(sc, g[k], p[k], weight_decay);
        /* sum += d^2;  p -= clr d / (sqrt(sum) + eps) */
        float s = sum[k] + d * d;
        put(commit, &sum[k], s, &nonfinite);
        float std = sqrtf(s) + sc->eps;
        put(commit, &p[k], p[k] + (sc->neg_lr * d) / std, &nonfinite);
    }
    return nonfinite;
}

LSTM__ALWAYS_INLINE uint32_t adagrad_rule(const step_scalars *sc, binding *bound, size_t begin,
                                          size_t end, bool commit)
{
    if (sc->has_weight_decay)
        return adagrad_kernel(sc, bound, begin, end, commit, true);
    return adagrad_kernel(sc, bound, begin, end, commit, false);
}

LSTM__ALWAYS_INLINE uint32_t rmsprop_kernel(const step_scalars *sc, binding *bound, size_t begin,
                                            size_t end, bool commit, bool weight_decay,
                                            bool centered, bool momentum)
{
    float *restrict p = bound->params;
    const float *restrict g = bound->grads;
    float *restrict square_avg = bound->state[0];
    /* The optional arrays follow square_avg in the documented order. */
    float *restrict grad_avg = bound->state[1];
    float *restrict buf = bound->state[centered ? 2 : 1];
    uint32_t nonfinite = 0;
    for (size_t k = begin; k < end; k++) {
        float d = direction(sc, g[k], p[k], weight_decay);
        /* square_avg = alpha square_avg + (1 - alpha) d^2 */
        float sq = square_avg[k] * sc->alpha;
        sq = sq + (sc->one_minus_alpha * d) * d;
        put(commit, &square_avg[k], sq, &nonfinite);
        float avg;
        if (centered) {
            /* grad_avg = alpha grad_avg + (1 - alpha) d;  avg = sqrt(sq - grad_avg^2) */
            float ga = grad_avg[k] * sc->alpha;
            ga = ga + sc->one_minus_alpha * d;
            put(commit, &grad_avg[k], ga, &nonfinite);
            avg = sqrtf(sq - ga * ga);
        } else {
            avg = sqrtf(sq);
        }
        avg = avg + sc->eps;
        if (momentum) {
            /* buf = momentum buf + d / avg;  p -= lr buf */
            float b = buf[k] * sc->momentum;
            b = b + d / avg;
            put(commit, &buf[k], b, &nonfinite);
            put(commit, &p[k], p[k] + sc->neg_lr * b, &nonfinite);
        } else {
            /* p -= lr d / avg */
            put(commit, &p[k], p[k] + (sc->neg_lr * d) / avg, &nonfinite);
        }
    }
    return nonfinite;
}

LSTM__ALWAYS_INLINE uint32_t rmsprop_rule(const step_scalars *sc, binding *bound, size_t begin,
                                          size_t end, bool commit)
{
    const bool wd = sc->has_weight_decay;
    if (sc->centered && sc->has_momentum)
        return rmsprop_kernel(sc, bound, begin, end, commit, wd, true, true);
    if (sc->centered)
        return rmsprop_kernel(sc, bound, begin, end, commit, wd, true, false);
    if (sc->has_momentum)
        return rmsprop_kernel(sc, bound, begin, end, commit, wd, false, true);
    return rmsprop_kernel(sc, bound, begin, end, commit, wd, false, false);
}

/* Adam and AdamW; they differ only in where the weight decay goes. */
LSTM__ALWAYS_INLINE uint32_t adam_kernel(const step_scalars *sc, binding *bound, size_t begin,
                                         size_t end, bool commit, bool weight_decay, bool amsgrad)
{
    float *restrict p = bound->params;
    const float *restrict g = bound->grads;
    float *restrict exp_avg = bound->state[0];
    float *restrict exp_avg_sq = bound->state[1];
    float *restrict max_exp_avg_sq = bound->state[2];
    uint32_t nonfinite = 0;
    for (size_t k = begin; k < end; k++) {
        /* AdamW decays the weights directly: p *= 1 - lr wd (1 for Adam) */
        float param = p[k] * sc->decoupled_decay;
        float d = direction(sc, g[k], param, weight_decay);
        /* m = beta1 m + (1 - beta1) d;  v = beta2 v + (1 - beta2) d^2 */
        float m = exp_avg[k] * sc->beta1;
        m = m + sc->one_minus_beta1 * d;
        put(commit, &exp_avg[k], m, &nonfinite);
        float v = exp_avg_sq[k] * sc->beta2;
        v = v + (sc->one_minus_beta2 * d) * d;
        put(commit, &exp_avg_sq[k], v, &nonfinite);
        if (amsgrad) {
            /* AMSGrad normalises by the largest v seen */
            v = v > max_exp_avg_sq[k] ? v : max_exp_avg_sq[k];
            put(commit, &max_exp_avg_sq[k], v, &nonfinite);
        }
        /* p -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps) */
        float denom = sqrtf(v) / sc->bias_correction2_sqrt + sc->eps;
        put(commit, &p[k], param + (sc->neg_step_size * m) / denom, &nonfinite);
    }
    return nonfinite;
}

/*
 * Adam on the touched rows of a lazy binding: torch.optim.SparseAdam
 * (_functional.sparse_adam), whose operations and roundings differ from
 * Adam's: the moments move by their difference to the new value, and eps
 * is added before the bias correction, which goes into the step size.
 */
LSTM__ALWAYS_INLINE uint32_t sparse_adam_rule(const step_scalars *sc, binding *bound, size_t begin,
                                              size_t end, bool commit)
{
    float *restrict p = bound->params;
    const float *restrict g = bound->grads;
    float *restrict exp_avg = bound->state[0];
    float *restrict exp_avg_sq = bound->state[1];
    uint32_t nonfinite = 0;
    for (size_t k = begin; k < end; k++) {
        float d = sc->sign * g[k];
        /* m += (1 - beta1)(d - m);  v += (1 - beta2)(d^2 - v) */
        float m = exp_avg[k] + (d - exp_avg[k]) * sc->one_minus_beta1;
        put(commit, &exp_avg[k], m, &nonfinite);
        float v = exp_avg_sq[k] + (d * d - exp_avg_sq[k]) * sc->one_minus_beta2;
        put(commit, &exp_avg_sq[k], v, &nonfinite);
        /* p -= lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps) */
        float denom = sqrtf(v) + sc->eps;
        put(commit, &p[k], p[k] + sc->neg_sparse_step_size * (m / denom), &nonfinite);
    }
    return nonfinite;
}

LSTM__ALWAYS_INLINE uint32_t adam_rule(const step_scalars *sc, binding *bound, size_t begin,
                                       size_t end, bool commit)
{
    const bool wd = sc->has_weight_decay;
    if (bound->state[2] != NULL)
        return adam_kernel(sc, bound, begin, end, commit, wd, true);
    return adam_kernel(sc, bound, begin, end, commit, wd, false);
}

/* A step's work for run_parallel(): the check run, or the commit run. */
typedef struct step_job {
    step_scalars scalars;
    lstm_optim_kind kind;
    bool commit;
    uint32_t nonfinite[MAX_THREADS]; /* check run: per thread, whether a value was bad */
} step_job;

/* The kind's rule; commit is a constant at each call, so each run has its own loops. */
LSTM__ALWAYS_INLINE uint32_t apply_rule(const step_job *job, binding *bound, size_t begin,
                                        size_t end, bool commit)
{
    const step_scalars *sc = &job->scalars;
    switch (job->kind) {
    /* lazy SGD is dense SGD on the touched rows (no momentum, no weight decay) */
    case LSTM_OPTIM_SGD: return sgd_rule(sc, bound, begin, end, commit);
    case LSTM_OPTIM_ADAGRAD: return adagrad_rule(sc, bound, begin, end, commit);
    case LSTM_OPTIM_RMSPROP: return rmsprop_rule(sc, bound, begin, end, commit);
    case LSTM_OPTIM_ADAM:
        if (bound->lazy)
            return sparse_adam_rule(sc, bound, begin, end, commit);
        return adam_rule(sc, bound, begin, end, commit);
    case LSTM_OPTIM_ADAMW: return adam_rule(sc, bound, begin, end, commit);
    }
    return 0;
}

/* Also compiled for AVX2 and AVX-512 (compiler.h): the check run doubles a
 * step's arithmetic, and its divisions and square roots bound one thread's
 * speed. Nothing is fused (-ffp-contract=off), so every variant gives the
 * same bits. */
LSTM__ALWAYS_INLINE void step_range_any(void *context, size_t part, binding *bound, size_t begin,
                                        size_t end)
{
    step_job *job = context;
    if (job->commit)
        (void)apply_rule(job, bound, begin, end, true);
    else
        job->nonfinite[part] |= apply_rule(job, bound, begin, end, false);
}

LSTM__DISPATCH(step_range, step_range_any,
               (void *context, size_t part, binding *bound, size_t begin, size_t end),
               (context, part, bound, begin, end))

/* The first NaN or infinity a thread found in its share of the gradients. */
typedef struct scan_result {
    const lstm_optim *optim;
    size_t binding[MAX_THREADS];
    size_t index[MAX_THREADS];
} scan_result;

static void scan_range(void *context, size_t part, binding *bound, size_t begin, size_t end)
{
    scan_result *result = context;
    if (result->binding[part] != SIZE_MAX)
        return; /* this thread found one already, in an earlier buffer */
    size_t bad = lstm__find_nonfinite(bound->grads + begin, end - begin);
    if (bad < end - begin) {
        result->binding[part] = (size_t)(bound - result->optim->bindings);
        result->index[part] = begin + bad;
    }
}

/* LSTM_E_NONFINITE, naming the first bad gradient, when any bound gradient
 * holds NaN or infinity; it comes before any write. */
static lstm_status check_grads_finite(lstm_optim *optim)
{
    scan_result result = {.optim = optim};
    for (size_t part = 0; part < MAX_THREADS; part++)
        result.binding[part] = SIZE_MAX;
    run_parallel(optim, scan_range, &result);
    size_t first_binding = SIZE_MAX, first_index = SIZE_MAX;
    for (size_t part = 0; part < part_count(optim); part++) {
        if (result.binding[part] < first_binding ||
            (result.binding[part] == first_binding && result.index[part] < first_index)) {
            first_binding = result.binding[part];
            first_index = result.index[part];
        }
    }
    if (first_binding == SIZE_MAX)
        return LSTM_OK;
    return lstm__fail(LSTM_E_NONFINITE, "gradient %zu of buffer %zu is %g; nothing was changed",
                      first_index, first_binding,
                      (double)optim->bindings[first_binding].grads[first_index]);
}

/* Whether the check run finds a bad value in [begin, end) of one buffer. */
static bool range_nonfinite(step_job *job, binding *bound, size_t begin, size_t end)
{
    job->nonfinite[0] = 0;
    step_range(job, 0, bound, begin, end);
    return job->nonfinite[0] != 0;
}

/* The first element of [begin, end) of one buffer whose update is not
 * finite, found a block at a time, then one by one; SIZE_MAX for none. */
static size_t first_bad_update(step_job *job, binding *bound, size_t begin, size_t end)
{
    const size_t block = 256;
    for (size_t start = begin; start < end; start += block) {
        size_t stop = end - start < block ? end : start + block;
        if (!range_nonfinite(job, bound, start, stop))
            continue;
        size_t k = start;
        while (k + 1 < stop && !range_nonfinite(job, bound, k, k + 1))
            k++;
        return k;
    }
    return SIZE_MAX;
}

/*
 * The error of a step whose check run failed, rare enough to search
 * serially. A NaN or infinite gradient, the usual cause, is named as
 * clipping names it; else the first element whose update is not finite,
 * found a block at a time, then one by one.
 */
static lstm_status refuse_step(lstm_optim *optim, step_job *job)
{
    lstm_status status = check_grads_finite(optim);
    if (status != LSTM_OK)
        return status;
    for (size_t n = 0; n < optim->binding_count; n++) {
        binding *bound = &optim->bindings[n];
        size_t k = SIZE_MAX;
        if (bound->lazy) {
            const uint32_t *rows;
            size_t count;
            lazy_rows(bound, &rows, &count);
            const size_t E = bound->row_size;
            for (size_t r = 0; r < count && k == SIZE_MAX; r++)
                k = first_bad_update(job, bound, (size_t)rows[r] * E, (size_t)rows[r] * E + E);
        } else {
            k = first_bad_update(job, bound, 0, bound->count);
        }
        if (k != SIZE_MAX)
            return lstm__fail(LSTM_E_NONFINITE,
                              "a step would make parameter %zu of buffer %zu (%g) or its state "
                              "non-finite (gradient %g); nothing was changed",
                              k, n, (double)bound->params[k], (double)bound->grads[k]);
    }
    /* not reached: an element alone goes through the operations it does in a block */
    return lstm__fail(LSTM_E_NONFINITE,
                      "a step would make a value non-finite; nothing was changed");
}

/* The scalars of step t (1 for the first step), as torch.optim derives them.
 * t <= LSTM_OPTIM_MAX_STEPS, so (double)t is exact. */
static step_scalars make_scalars(const lstm_optim *optim, uint64_t t)
{
    const lstm_optim_options *o = &optim->options;
    step_scalars sc;
    memset(&sc, 0, sizeof sc);
    sc.sign = (o->flags & LSTM_OPTIM_MAXIMIZE) ? -1.0f : 1.0f;
    sc.has_weight_decay = o->weight_decay != 0.0 && o->kind != LSTM_OPTIM_ADAMW;
    sc.weight_decay = (float)o->weight_decay;
    sc.neg_lr = (float)-o->lr;
    sc.momentum = (float)o->momentum;
    sc.one_minus_dampening = (float)(1.0 - o->dampening);
    sc.nesterov = (o->flags & LSTM_OPTIM_NESTEROV) != 0;
    sc.first_step = t == 1;
    sc.alpha = (float)o->alpha;
    sc.one_minus_alpha = (float)(1.0 - o->alpha);
    sc.centered = (o->flags & LSTM_OPTIM_CENTERED) != 0;
    sc.has_momentum = o->momentum > 0.0;
    sc.eps = (float)o->eps;
    sc.beta1 = (float)o->beta1;
    sc.one_minus_beta1 = (float)(1.0 - o->beta1);
    sc.beta2 = (float)o->beta2;
    sc.one_minus_beta2 = (float)(1.0 - o->beta2);
    const double step = (double)t;
    sc.bias_correction2_sqrt = (float)sqrt(1.0 - pow(o->beta2, step));
    sc.neg_step_size = (float)-(o->lr / (1.0 - pow(o->beta1, step)));
    /* SparseAdam: step_size = lr * math.sqrt(bias_correction2) / bias_correction1 */
    sc.neg_sparse_step_size =
        (float)-(o->lr * sqrt(1.0 - pow(o->beta2, step)) / (1.0 - pow(o->beta1, step)));
    sc.decoupled_decay =
        o->kind == LSTM_OPTIM_ADAMW ? (float)(1.0 - o->lr * o->weight_decay) : 1.0f;
    if (o->kind == LSTM_OPTIM_ADAGRAD) /* clr = lr / (1 + (t - 1) lr_decay) */
        sc.neg_lr = (float)-(o->lr / (1.0 + (step - 1.0) * o->lr_decay));
    return sc;
}

LSTM_API lstm_status lstm_optim_step(lstm_optim *optim)
{
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    if (optim->binding_count == 0)
        return lstm__fail(LSTM_E_STATE, "no buffer is bound to the optimizer");
    if (optim->steps >= LSTM_OPTIM_MAX_STEPS)
        return lstm__fail(LSTM_E_STATE, "the step count has reached LSTM_OPTIM_MAX_STEPS (2^53)");
    step_job job = {.scalars = make_scalars(optim, optim->steps + 1), .kind = optim->options.kind};
    run_parallel(optim, step_range, &job);
    for (size_t part = 0; part < MAX_THREADS; part++)
        if (job.nonfinite[part] != 0)
            return refuse_step(optim, &job);
    job.commit = true;
    run_parallel(optim, step_range, &job);
    optim->steps++;
    for (size_t n = 0; n < optim->binding_count; n++)
        if (optim->bindings[n].model != NULL)
            lstm__model_touch(optim->bindings[n].model);
    return LSTM_OK;
}

/* ---- gradients: zeroing and clipping ------------------------------------ */

LSTM_API lstm_status lstm_optim_zero_grads(lstm_optim *optim)
{
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    for (size_t n = 0; n < optim->binding_count; n++) {
        binding *bound = &optim->bindings[n];
        /* an embedding's zeroing also empties its touched set; they cannot fail */
        if (bound->lazy)
            (void)lstm_embedding_zero_touched_grads(bound->embedding);
        else if (bound->embedding != NULL)
            (void)lstm_embedding_zero_grads(bound->embedding);
        else
            memset(bound->grads, 0, bound->count * sizeof(float));
    }
    return LSTM_OK;
}

/* The sum of squares of count gradients, in double, in a fixed order. */
static double sum_squares(const float *g, size_t count)
{
    double lanes[4] = {0.0, 0.0, 0.0, 0.0};
    size_t k = 0;
    for (; k + 4 <= count; k += 4)
        for (size_t lane = 0; lane < 4; lane++)
            lanes[lane] += (double)g[k + lane] * (double)g[k + lane];
    for (; k < count; k++)
        lanes[0] += (double)g[k] * (double)g[k];
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

/* sqrt of the sum of squares of all bound gradients (of a lazy binding, of
 * its touched rows: the others are zero), accumulated in double in a fixed
 * order, so the result never depends on the thread count. */
static double global_grad_norm(const lstm_optim *optim)
{
    double sum = 0.0;
    for (size_t n = 0; n < optim->binding_count; n++) {
        const binding *bound = &optim->bindings[n];
        if (!bound->lazy) {
            sum += sum_squares(bound->grads, bound->count);
            continue;
        }
        const uint32_t *rows;
        size_t count;
        lazy_rows(bound, &rows, &count);
        double rows_sum = 0.0;
        for (size_t r = 0; r < count; r++)
            rows_sum +=
                sum_squares(bound->grads + (size_t)rows[r] * bound->row_size, bound->row_size);
        sum += rows_sum;
    }
    return sqrt(sum);
}

static void scale_range(void *context, size_t part, binding *bound, size_t begin, size_t end)
{
    (void)part;
    const float factor = *(const float *)context;
    float *g = bound->grads;
    for (size_t k = begin; k < end; k++)
        g[k] *= factor;
}

static void clamp_range(void *context, size_t part, binding *bound, size_t begin, size_t end)
{
    (void)part;
    const float limit = *(const float *)context;
    float *g = bound->grads;
    for (size_t k = begin; k < end; k++) {
        float v = g[k] < -limit ? -limit : g[k];
        g[k] = v > limit ? limit : v;
    }
}

LSTM_API lstm_status lstm_optim_clip_grad_norm(lstm_optim *optim, double max_norm,
                                               double *total_norm)
{
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    if (!isfinite(max_norm) || max_norm <= 0.0)
        return lstm__fail(LSTM_E_ARG, "max_norm is %g; it must be finite and > 0", max_norm);
    double norm = global_grad_norm(optim);
    if (!isfinite(norm))
        return lstm__fail(LSTM_E_NONFINITE, "the gradient norm is %g; nothing was changed", norm);
    /* clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)) */
    double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1.0) {
        float factor = (float)coefficient;
        run_parallel(optim, scale_range, &factor);
    }
    if (total_norm != NULL)
        *total_norm = norm;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_clip_grad_value(lstm_optim *optim, double clip_value)
{
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    if (!isfinite(clip_value) || clip_value < 0.0)
        return lstm__fail(LSTM_E_ARG, "clip_value is %g; it must be finite and >= 0", clip_value);
    lstm_status status = check_grads_finite(optim);
    if (status != LSTM_OK)
        return status;
    float limit = (float)clip_value;
    run_parallel(optim, clamp_range, &limit);
    return LSTM_OK;
}

/* ---- learning rate and schedules ---------------------------------------- */

LSTM_API lstm_status lstm_optim_get_lr(const lstm_optim *optim, double *lr)
{
    if (optim == NULL || lr == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "lr");
    *lr = optim->options.lr;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_set_lr(lstm_optim *optim, double lr)
{
    if (optim == NULL)
        return lstm__fail(LSTM_E_NULL, "optim is NULL");
    if (!isfinite(lr) || lr < 0.0)
        return lstm__fail(LSTM_E_ARG, "lr is %g; it must be finite and >= 0", lr);
    optim->options.lr = lr;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_step_count(const lstm_optim *optim, uint64_t *steps)
{
    if (optim == NULL || steps == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "steps");
    *steps = optim->steps;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_schedule_step(double base_lr, double gamma, uint64_t step_size,
                                        uint64_t epoch, double *lr)
{
    if (lr == NULL)
        return lstm__fail(LSTM_E_NULL, "lr is NULL");
    if (step_size == 0)
        return lstm__fail(LSTM_E_SIZE, "step_size is 0; it must be at least 1");
    if (!isfinite(base_lr) || !isfinite(gamma) || gamma < 0.0)
        return lstm__fail(LSTM_E_ARG, "base_lr %g and gamma %g must be finite, gamma >= 0", base_lr,
                          gamma);
    *lr = base_lr * pow(gamma, (double)(epoch / step_size));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_schedule_cosine(double base_lr, double eta_min, uint64_t t_max,
                                          uint64_t epoch, double *lr)
{
    if (lr == NULL)
        return lstm__fail(LSTM_E_NULL, "lr is NULL");
    if (t_max == 0)
        return lstm__fail(LSTM_E_SIZE, "t_max is 0; it must be at least 1");
    if (!isfinite(base_lr) || !isfinite(eta_min))
        return lstm__fail(LSTM_E_ARG, "base_lr %g and eta_min %g must be finite", base_lr, eta_min);
    const double pi = 3.14159265358979323846;
    /* Halving 1 + cos first is exact and keeps the product from overflowing
     * for rates near DBL_MAX: lr stays between eta_min and base_lr. */
    *lr = eta_min + (base_lr - eta_min) * ((1.0 + cos(pi * (double)epoch / (double)t_max)) / 2.0);
    return LSTM_OK;
}

/* ---- state save and restore ---------------------------------------------- */

/*
 * The documented layout (lstm/optim.h): little-endian whatever the host, so
 * that a saved state is the same bytes in a caller's buffer and in a model
 * file's OPTM section, which io.c stores and reads as it is. Byte offsets
 * of the header:
 */
enum {
    STATE_MAGIC_AT = 0,
    STATE_VERSION_AT = 4,
    STATE_KIND_AT = 8,
    STATE_FLAGS_AT = 12,
    STATE_STEPS_AT = 16,
    STATE_PARAMS_AT = 24,
    STATE_ARRAYS_AT = 32,
    STATE_HEADER_BYTES = 40
};

#define STATE_MAGIC 0x4C4F5054u /* "LOPT" as a big-endian word: bytes "TPOL" here */
#define STATE_VERSION 1u

/* Header plus S arrays of N floats; false when that overflows size_t. */
static bool state_bytes(const lstm_optim *optim, size_t *bytes)
{
    size_t floats, array_bytes;
    return size_mul(optim->param_count, optim->state_arrays, &floats) &&
           size_mul(floats, sizeof(float), &array_bytes) &&
           size_add(STATE_HEADER_BYTES, array_bytes, bytes);
}

LSTM_API lstm_status lstm_optim_state_size(const lstm_optim *optim, size_t *bytes)
{
    if (optim == NULL || bytes == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "bytes");
    if (!state_bytes(optim, bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "the optimizer state overflows size_t");
    return LSTM_OK;
}

/* LSTM_E_SHAPE unless bytes is exactly the state's size. */
static lstm_status check_state_bytes(const lstm_optim *optim, size_t bytes)
{
    size_t expected;
    if (!state_bytes(optim, &expected))
        return lstm__fail(LSTM_E_OVERFLOW, "the optimizer state overflows size_t");
    if (bytes != expected)
        return lstm__fail(LSTM_E_SHAPE, "bytes is %zu; the state is %zu bytes", bytes, expected);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_save_state(const lstm_optim *optim, void *dst, size_t bytes)
{
    if (optim == NULL || dst == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "dst");
    lstm_status status = check_state_bytes(optim, bytes);
    if (status != LSTM_OK)
        return status;
    /* lstm_optim_load_state() refuses non-finite values, so none is saved.
     * Steps and loads never leave one: this only guards that promise. */
    for (size_t s = 0; s < optim->state_arrays; s++) {
        for (size_t n = 0; n < optim->binding_count; n++) {
            const binding *bound = &optim->bindings[n];
            size_t bad = lstm__find_nonfinite(bound->state[s], bound->count);
            if (bad < bound->count)
                return lstm__fail(LSTM_E_NONFINITE,
                                  "state array %zu of buffer %zu holds %g at %zu; "
                                  "nothing was saved",
                                  s, n, (double)bound->state[s][bad], bad);
        }
    }
    unsigned char *out = dst;
    put_u32(out + STATE_MAGIC_AT, STATE_MAGIC);
    put_u32(out + STATE_VERSION_AT, STATE_VERSION);
    put_u32(out + STATE_KIND_AT, (uint32_t)optim->options.kind);
    put_u32(out + STATE_FLAGS_AT, optim->options.flags);
    put_u64(out + STATE_STEPS_AT, optim->steps);
    put_u64(out + STATE_PARAMS_AT, optim->param_count);
    put_u64(out + STATE_ARRAYS_AT, optim->state_arrays);
    out += STATE_HEADER_BYTES;
    for (size_t s = 0; s < optim->state_arrays; s++) {
        for (size_t n = 0; n < optim->binding_count; n++) {
            const binding *bound = &optim->bindings[n];
            for (size_t k = 0; k < bound->count; k++)
                put_f32(out + k * sizeof(float), bound->state[s][k]);
            out += bound->count * sizeof(float);
        }
    }
    return LSTM_OK;
}

LSTM_API lstm_status lstm_optim_load_state(lstm_optim *optim, const void *src, size_t bytes)
{
    if (optim == NULL || src == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "src");
    if (bytes < STATE_HEADER_BYTES)
        return lstm__fail(LSTM_E_SHAPE, "bytes is %zu; a state is at least %d bytes", bytes,
                          STATE_HEADER_BYTES);
    const unsigned char *in = src;
    const uint32_t magic = get_u32(in + STATE_MAGIC_AT), version = get_u32(in + STATE_VERSION_AT);
    const uint32_t kind = get_u32(in + STATE_KIND_AT), flags = get_u32(in + STATE_FLAGS_AT);
    const uint64_t steps = get_u64(in + STATE_STEPS_AT);
    const uint64_t param_count = get_u64(in + STATE_PARAMS_AT);
    const uint64_t array_count = get_u64(in + STATE_ARRAYS_AT);
    if (magic != STATE_MAGIC || version != STATE_VERSION)
        return lstm__fail(LSTM_E_ARG, "not an optimizer state of layout version %u (little-endian)",
                          STATE_VERSION);
    if (kind != (uint32_t)optim->options.kind || flags != optim->options.flags)
        return lstm__fail(LSTM_E_ARG,
                          "the state is of kind %u, flags 0x%x; this optimizer is %u, 0x%x", kind,
                          flags, (unsigned)optim->options.kind, optim->options.flags);
    if (steps > LSTM_OPTIM_MAX_STEPS)
        return lstm__fail(LSTM_E_ARG,
                          "the state's step count %llu is above LSTM_OPTIM_MAX_STEPS, 2^53",
                          (unsigned long long)steps);
    if (param_count != optim->param_count || array_count != optim->state_arrays)
        return lstm__fail(LSTM_E_SHAPE,
                          "the state holds %llu arrays of %llu; this optimizer %zu of %zu",
                          (unsigned long long)array_count, (unsigned long long)param_count,
                          optim->state_arrays, optim->param_count);
    lstm_status status = check_state_bytes(optim, bytes);
    if (status != LSTM_OK)
        return status;
    /* Check every value before writing any. */
    in += STATE_HEADER_BYTES;
    const size_t floats = optim->param_count * optim->state_arrays;
    for (size_t k = 0; k < floats; k++) {
        const float value = get_f32(in + k * sizeof(float));
        if (!isfinite(value))
            return lstm__fail(LSTM_E_NONFINITE, "state value %zu is %g", k, (double)value);
    }
    for (size_t s = 0; s < optim->state_arrays; s++) {
        for (size_t n = 0; n < optim->binding_count; n++) {
            binding *bound = &optim->bindings[n];
            for (size_t k = 0; k < bound->count; k++)
                bound->state[s][k] = get_f32(in + k * sizeof(float));
            in += bound->count * sizeof(float);
        }
    }
    optim->steps = steps;
    return LSTM_OK;
}
