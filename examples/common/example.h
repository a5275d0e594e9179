/*
 * What every example program needs besides liblstm itself: reporting a
 * failed call, deterministic random numbers, timing and a progress line,
 * argument parsing, whole files and CSV outputs, the fetched data sets, a
 * reader for their JSON, and a word vocabulary that travels in a model
 * file's metadata, and inference and training in reduced precision. Compiled once (the
 * static library lstm_example) and linked by every example, so the programs
 * hold only what their task needs.
 */
#ifndef LSTM_EXAMPLE_H
#define LSTM_EXAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <lstm/lstm.h>

/* The exit code of a smoke run whose data set is not fetched: CTest counts
 * it as skipped (the SKIP_RETURN_CODE property), not passed. */
#define EX_SKIP 77

/* Print a failed liblstm call with the library's message; 1 on failure, 0
 * on success, so calls chain with ||. */
int ex_failed(lstm_status status, const char *call);

/* ---- deterministic random numbers (SplitMix64), no rand() ---- */

uint64_t ex_random(uint64_t *state);
double ex_random_unit(uint64_t *state);                /* uniform in [0, 1) */
size_t ex_random_below(uint64_t *state, size_t count); /* uniform in [0, count), count >= 1 */
double ex_random_normal(uint64_t *state);              /* standard normal (Box-Muller) */
void ex_shuffle(size_t *items, size_t count, uint64_t *state); /* Fisher-Yates */

/* ---- time and the progress line ---- */

double ex_seconds_since(const struct timespec *start);           /* CLOCK_MONOTONIC */
void ex_format_duration(double seconds, char *out, size_t size); /* "1h02m", "3m07s", "12s" */

/* The line a training loop prints while it runs, at most every two seconds
 * and at the last step:
 *   step 1200/5000  loss 0.4213  3150 sentences/s  elapsed 1m02s  left 3m16s */
typedef struct ex_progress {
    struct timespec start;
    double last_print; /* seconds since start of the last line printed */
    uint64_t steps;    /* the run's total steps */
    const char *unit;  /* what an example is: "sentences", "tokens", ... */
} ex_progress;

void ex_progress_begin(ex_progress *progress, uint64_t steps, const char *unit);
/* step: steps done (1 .. steps); loss: a recent training loss; examples:
 * examples done since the start. */
void ex_progress_update(ex_progress *progress, uint64_t step, double loss, uint64_t examples);
double ex_progress_seconds(const ex_progress *progress);

/* ---- command-line arguments: 0 on success, 1 with a message ---- */

int ex_parse_count(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out);
int ex_parse_double(const char *name, const char *text, double min, double max, double *out);

/* A table of the options that take a value: a text, or a whole number in
 * [min, max]. */
typedef struct ex_option {
    const char *name, **text;
    uint64_t *number, min, max;
} ex_option;

/* If argv[*k] names one of the options, store its value (argv[*k + 1]) and
 * step *k past it: 1. 0 when argv[*k] is none of them or its value is
 * missing (the caller prints its usage); -1 for a bad number (with a
 * message). */
int ex_take_option(const ex_option *options, size_t count, int argc, char **argv, int *k);

/* ---- files ---- */

/* Read a whole file into a new buffer with a NUL byte after its size bytes
 * (freed with free()); 0 on success, 1 with a message. */
int ex_read_file(const char *path, char **out, size_t *size);

/* Open a CSV output (path "-" is standard output) and write its header
 * line; NULL with a message on failure. Close with ex_close_csv(), which
 * reports a failed write; 0 on success. */
FILE *ex_open_csv(const char *path, const char *header);
int ex_close_csv(FILE *file, const char *path);

/* ---- the fetched data sets (examples/data/fetch.sh NAME) ---- */

/* The directory fetch.sh unpacks data set NAME into: $LSTM_DATA_DIR/NAME,
 * or $XDG_CACHE_HOME/liblstm/data/NAME, or ~/.cache/liblstm/data/NAME.
 * 0 when it exists; EX_SKIP with the command that fetches it when it does
 * not; 1 when the path does not fit. */
int ex_data_dir(const char *name, char *out, size_t size);

/* ---- JSON, as the data sets ship it: a pull reader over a whole text ---- */

typedef enum ex_json_kind {
    EX_JSON_END = 0,      /* the end of the text */
    EX_JSON_ERROR,        /* malformed text; the reader stays here */
    EX_JSON_BEGIN_ARRAY,  /* [ */
    EX_JSON_END_ARRAY,    /* ] */
    EX_JSON_BEGIN_OBJECT, /* { */
    EX_JSON_END_OBJECT,   /* } */
    EX_JSON_KEY,          /* an object's key: text, length */
    EX_JSON_STRING,       /* a string value: text, length (decoded to UTF-8) */
    EX_JSON_NUMBER,       /* number */
    EX_JSON_NULL,
    EX_JSON_TRUE,
    EX_JSON_FALSE
} ex_json_kind;

typedef struct ex_json {
    const char *at, *end;
    char *text;      /* the last string or key, decoded, NUL-terminated */
    size_t length;   /* its length in bytes */
    size_t capacity; /* of text */
    double number;   /* the last number */
} ex_json;

/* Read text[0, size). ex_json_next() returns each token in turn (',' and
 * ':' are checked, not returned); ex_json_free() frees the reader's buffer. */
void ex_json_init(ex_json *json, const char *text, size_t size);
ex_json_kind ex_json_next(ex_json *json);
/* Skip the value that begins with the token just read (for an unknown key). */
int ex_json_skip(ex_json *json, ex_json_kind first);
void ex_json_free(ex_json *json);

/* ---- words ---- */

/* The next token of text[*at, end) into word (lowercase, NUL-terminated,
 * at most capacity - 1 bytes, longer words cut): a run of letters, digits
 * and bytes >= 0x80 with apostrophes inside ("don't"), or one other
 * printable character ("!", ","). Returns its length; 0 at the end. */
size_t ex_next_word(const char **at, const char *end, char *word, size_t capacity);

/* A vocabulary: words and their ids 0, 1, ... in the order they were
 * added, with counts. */
typedef struct ex_vocab {
    char *bytes; /* the words, each followed by a NUL */
    size_t bytes_used, bytes_capacity;
    size_t *offsets;       /* word k starts at bytes + offsets[k] */
    uint64_t *counts;      /* times word k was added */
    size_t size, capacity; /* words; room in offsets and counts */
    int64_t *slots;        /* open addressing: a word's id, or -1 */
    size_t slot_count;     /* a power of two, at least twice size */
} ex_vocab;

void ex_vocab_init(ex_vocab *vocab);
void ex_vocab_free(ex_vocab *vocab);
/* Add one occurrence of word[0, length) (a new word gets the next id);
 * the word's id, or -1 when out of memory. */
int64_t ex_vocab_add(ex_vocab *vocab, const char *word, size_t length);
/* The id of word[0, length), or -1. */
int64_t ex_vocab_find(const ex_vocab *vocab, const char *word, size_t length);
const char *ex_vocab_word(const ex_vocab *vocab, size_t id);

/* A new vocabulary of: the specials (in order, count 0), then every word
 * of from seen at least min_count times, most frequent first (ties in byte
 * order), at most max_size words in all. 0 on success, 1 out of memory. */
int ex_vocab_keep(const ex_vocab *from, uint64_t min_count, size_t max_size,
                  const char *const *specials, size_t special_count, ex_vocab *out);

/* A vocabulary in a network's metadata under key: the words in id order,
 * each followed by '\n' (text when the words are UTF-8). Loading checks that
 * it has exactly expected_size words (0: any). 0 on success, 1 with a message. */
int ex_vocab_save_meta(const ex_vocab *vocab, lstm_network *network, const char *key);
int ex_vocab_load_meta(ex_vocab *vocab, const lstm_network *network, const char *key,
                       size_t expected_size);

/* A text entry of a network's metadata (NUL-terminated, owned by the
 * network); NULL with a message when missing or not text. */
const char *ex_meta_text(const lstm_network *network, const char *key);
int ex_set_meta_text(lstm_network *network, const char *key, const char *text);

/* ---- scores ---- */

size_t ex_argmax(const float *values, size_t count); /* the first largest */
/* probabilities[k] = softmax(logits)[k], in double; returns log sum exp. */
double ex_softmax(const float *logits, size_t count, double *probabilities);

/* ---- inference in reduced precision (lstm_precision) ---- */

/* The precisions an application evaluates its held-out set in, in order:
 * float32, bfloat16, int8 (lstm_workspace_set_precision()). */
enum { EX_PRECISIONS = 3 };
extern const lstm_precision ex_precisions[EX_PRECISIONS];

/* "fp32", "bf16" or "int8". */
const char *ex_precision_name(lstm_precision precision);
/* The value of --precision (fp32, bf16 or int8; NULL: fp32); 0 on success,
 * 1 with a message. */
int ex_parse_precision(const char *text, lstm_precision *out);
/* Set the precision of the inference calls on a workspace and a state,
 * either NULL when not used; 0 on success, 1 with a message. */
int ex_set_precision(lstm_workspace *workspace, lstm_state *state, lstm_precision precision);

/* ---- training in reduced precision (lstm_workspace_set_training_precision) ---- */

/* The value of --train-precision (fp32 or bf16; NULL: fp32); 0 on success,
 * 1 with a message (int8 is for inference only). */
int ex_parse_training_precision(const char *text, lstm_precision *out);
/* Set the precision of the training calls on a workspace; 0 on success, 1
 * with a message. Its inference calls keep their own (ex_set_precision). */
int ex_set_training_precision(lstm_workspace *workspace, lstm_precision precision);

/* An application's held-out evaluation: its metric on the test set from
 * the inference calls on the workspace or state given below. */
typedef int (*ex_evaluation)(void *context, double *metric);

/* metrics[p] = the evaluation run with the workspace and the state (either
 * may be NULL) in ex_precisions[p], all from the same trained network; the
 * workspace and state are back in float32 afterwards, ready for training
 * or for more float32 calls. 0 on success, 1 after a message. */
int ex_evaluate_precisions(lstm_workspace *workspace, lstm_state *state, ex_evaluation evaluate,
                           void *context, double metrics[EX_PRECISIONS]);

/* Print "NAME: fp32 V  bf16 V  int8 V" and a newline, each value with
 * decimals digits after the point and unit after it ("%", or ""). */
void ex_print_precisions(const char *name, const double metrics[EX_PRECISIONS], int decimals,
                         const char *unit);

/* Whether a reduced-precision metric keeps to its float32 value: within
 * tolerance of it (absolute: accuracy points), or within tolerance times
 * |fp32| when relative (perplexity, RMSE, MSE). */
int ex_precision_within(double fp32, double reduced, double tolerance, int relative);

/* Print "  bf16, int8 against fp32: -0.05 points, +0.10 points; within
 * BOUND: yes, NO" (changes in percent of fp32's when relative; bound: the
 * tolerance in words, "0.5 points", "1%") and return 1 when both are. */
int ex_print_precision_bound(const double metrics[EX_PRECISIONS], double tolerance, int relative,
                             const char *bound);

#endif /* LSTM_EXAMPLE_H */
