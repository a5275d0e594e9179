/* The example programs' shared helpers; see example.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "example.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ex_failed(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return 0;
    fprintf(stderr, "%s failed: %s: %s\n", call, lstm_strerror(status), lstm_error_message());
    return 1;
}

/* ---- random numbers ---- */

uint64_t ex_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

double ex_random_unit(uint64_t *state)
{
    return (double)(ex_random(state) >> 11) * (1.0 / 9007199254740992.0);
}

size_t ex_random_below(uint64_t *state, size_t count)
{
    return (size_t)(ex_random(state) % count);
}

double ex_random_normal(uint64_t *state)
{
    double u = 1.0 - ex_random_unit(state); /* (0, 1]: log(u) is finite */
    double v = ex_random_unit(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

void ex_shuffle(size_t *items, size_t count, uint64_t *state)
{
    for (size_t k = count; k > 1; k--) {
        size_t j = ex_random_below(state, k);
        size_t tmp = items[k - 1];
        items[k - 1] = items[j];
        items[j] = tmp;
    }
}

/* ---- time and progress ---- */

double ex_seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

void ex_format_duration(double seconds, char *out, size_t size)
{
    long total = seconds > 0.0 ? (long)(seconds + 0.5) : 0;
    if (total >= 3600)
        snprintf(out, size, "%ldh%02ldm", total / 3600, (total / 60) % 60);
    else if (total >= 60)
        snprintf(out, size, "%ldm%02lds", total / 60, total % 60);
    else
        snprintf(out, size, "%lds", total);
}

void ex_progress_begin(ex_progress *progress, uint64_t steps, const char *unit)
{
    clock_gettime(CLOCK_MONOTONIC, &progress->start);
    progress->last_print = 0.0;
    progress->steps = steps;
    progress->unit = unit;
}

double ex_progress_seconds(const ex_progress *progress)
{
    return ex_seconds_since(&progress->start);
}

void ex_progress_update(ex_progress *progress, uint64_t step, double loss, uint64_t examples)
{
    double elapsed = ex_seconds_since(&progress->start);
    if (step < progress->steps && elapsed - progress->last_print < 2.0)
        return;
    progress->last_print = elapsed;
    char spent[32], left[32];
    ex_format_duration(elapsed, spent, sizeof spent);
    /* Time left, assuming the remaining steps go as fast as the past ones. */
    ex_format_duration(step ? elapsed * (double)(progress->steps - step) / (double)step : 0.0, left,
                       sizeof left);
    printf("step %llu/%llu  loss %.4f  %.0f %s/s  elapsed %s  left %s\n", (unsigned long long)step,
           (unsigned long long)progress->steps, loss,
           elapsed > 0.0 ? (double)examples / elapsed : 0.0, progress->unit, spent, left);
    fflush(stdout);
}

/* ---- arguments ---- */

int ex_parse_count(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || value < min || value > max) {
        fprintf(stderr, "%s: expected a whole number in [%llu, %llu], got '%s'\n", name,
                (unsigned long long)min, (unsigned long long)max, text);
        return 1;
    }
    *out = value;
    return 0;
}

int ex_parse_double(const char *name, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end || !(value >= min && value <= max)) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got '%s'\n", name, min, max, text);
        return 1;
    }
    *out = value;
    return 0;
}

int ex_take_option(const ex_option *options, size_t count, int argc, char **argv, int *k)
{
    size_t j = 0;
    while (j < count && strcmp(argv[*k], options[j].name) != 0)
        j++;
    if (j == count || *k + 1 == argc)
        return 0;
    const char *value = argv[++*k];
    if (options[j].text) {
        *options[j].text = value;
        return 1;
    }
    return ex_parse_count(options[j].name, value, options[j].min, options[j].max, options[j].number)
               ? -1
               : 1;
}

/* ---- files ---- */

int ex_read_file(const char *path, char **out, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t used = 0, capacity = 1 << 16;
    char *data = malloc(capacity);
    while (data) {
        used += fread(data + used, 1, capacity - used, file);
        if (used < capacity)
            break;
        char *bigger = realloc(data, capacity * 2);
        if (!bigger)
            free(data);
        data = bigger;
        capacity *= 2;
    }
    int bad = ferror(file);
    fclose(file);
    if (!data || bad) {
        fprintf(stderr, "%s: %s\n", path, data ? "read error" : "out of memory");
        free(data);
        return 1;
    }
    data[used] = '\0'; /* used < capacity: the loop ends on a short read */
    *out = data;
    *size = used;
    return 0;
}

FILE *ex_open_csv(const char *path, const char *header)
{
    FILE *file = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!file) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    fprintf(file, "%s\n", header);
    return file;
}

int ex_close_csv(FILE *file, const char *path)
{
    int bad = ferror(file) != 0;
    if (file == stdout)
        bad |= fflush(file) != 0;
    else
        bad |= fclose(file) != 0;
    if (bad)
        fprintf(stderr, "%s: write failed\n", path);
    return bad;
}

/* ---- data sets ---- */

int ex_data_dir(const char *name, char *out, size_t size)
{
    const char *root = getenv("LSTM_DATA_DIR"), *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (root && *root)
        n = snprintf(out, size, "%s/%s", root, name);
    else if (cache && *cache)
        n = snprintf(out, size, "%s/liblstm/data/%s", cache, name);
    else
        n = snprintf(out, size, "%s/.cache/liblstm/data/%s", home ? home : ".", name);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "the data directory's path is too long\n");
        return 1;
    }
    struct stat info;
    if (stat(out, &info) == 0 && S_ISDIR(info.st_mode))
        return 0;
    fprintf(stderr,
            "data set '%s' not found at %s\n"
            "fetch it with: bash examples/data/fetch.sh %s\n",
            name, out, name);
    return EX_SKIP;
}

/* ---- JSON ---- */

void ex_json_init(ex_json *json, const char *text, size_t size)
{
    memset(json, 0, sizeof *json);
    json->at = text;
    json->end = text + size;
}

void ex_json_free(ex_json *json)
{
    free(json->text);
    json->text = NULL;
    json->capacity = 0;
}

static void skip_space(ex_json *json)
{
    while (json->at < json->end &&
           (*json->at == ' ' || *json->at == '\t' || *json->at == '\n' || *json->at == '\r'))
        json->at++;
}

static int append(ex_json *json, const char *bytes, size_t count)
{
    if (json->length + count + 1 > json->capacity) {
        size_t capacity = json->capacity ? json->capacity : 256;
        while (json->length + count + 1 > capacity)
            capacity *= 2;
        char *bigger = realloc(json->text, capacity);
        if (!bigger)
            return 1;
        json->text = bigger;
        json->capacity = capacity;
    }
    memcpy(json->text + json->length, bytes, count);
    json->length += count;
    json->text[json->length] = '\0';
    return 0;
}

static int hex4(const char *at, unsigned *out)
{
    unsigned value = 0;
    for (int k = 0; k < 4; k++) {
        int c = (unsigned char)at[k], digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            digit = (c | 0x20) - 'a' + 10;
        else
            return 1;
        value = value * 16 + (unsigned)digit;
    }
    *out = value;
    return 0;
}

/* A string from the opening quote; escapes decoded, \u to UTF-8 (a lone
 * surrogate becomes U+FFFD). */
static int read_string(ex_json *json)
{
    json->length = 0;
    if (append(json, "", 0))
        return 1;
    const char *at = json->at + 1;
    while (at < json->end && *at != '"') {
        const char *run = at;
        while (at < json->end && *at != '"' && *at != '\\')
            at++;
        if (append(json, run, (size_t)(at - run)))
            return 1;
        if (at >= json->end || *at == '"')
            break;
        if (json->end - at < 2)
            return 1;
        char c = at[1], one;
        at += 2;
        switch (c) {
        case 'n': one = '\n'; break;
        case 't': one = '\t'; break;
        case 'r': one = '\r'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case '"':
        case '\\':
        case '/': one = c; break;
        case 'u': {
            unsigned code, low;
            if (json->end - at < 4 || hex4(at, &code))
                return 1;
            at += 4;
            if (code >= 0xD800 && code < 0xDC00 && json->end - at >= 6 && at[0] == '\\' &&
                at[1] == 'u' && !hex4(at + 2, &low) && low >= 0xDC00 && low < 0xE000) {
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                at += 6;
            } else if (code >= 0xD800 && code < 0xE000) {
                code = 0xFFFD;
            }
            char utf8[4];
            size_t n;
            if (code < 0x80) {
                utf8[0] = (char)code, n = 1;
            } else if (code < 0x800) {
                utf8[0] = (char)(0xC0 | code >> 6), utf8[1] = (char)(0x80 | (code & 0x3F)), n = 2;
            } else if (code < 0x10000) {
                utf8[0] = (char)(0xE0 | code >> 12), utf8[1] = (char)(0x80 | ((code >> 6) & 0x3F));
                utf8[2] = (char)(0x80 | (code & 0x3F)), n = 3;
            } else {
                utf8[0] = (char)(0xF0 | code >> 18), utf8[1] = (char)(0x80 | ((code >> 12) & 0x3F));
                utf8[2] = (char)(0x80 | ((code >> 6) & 0x3F)),
                utf8[3] = (char)(0x80 | (code & 0x3F));
                n = 4;
            }
            if (append(json, utf8, n))
                return 1;
            continue;
        }
        default: return 1;
        }
        if (append(json, &one, 1))
            return 1;
    }
    if (at >= json->end)
        return 1;
    json->at = at + 1;
    return 0;
}

ex_json_kind ex_json_next(ex_json *json)
{
    skip_space(json);
    if (json->at < json->end && (*json->at == ',' || *json->at == ':')) {
        json->at++;
        skip_space(json);
    }
    if (json->at >= json->end)
        return EX_JSON_END;
    const char *start = json->at;
    switch (*start) {
    case '[': json->at++; return EX_JSON_BEGIN_ARRAY;
    case ']': json->at++; return EX_JSON_END_ARRAY;
    case '{': json->at++; return EX_JSON_BEGIN_OBJECT;
    case '}': json->at++; return EX_JSON_END_OBJECT;
    case '"': {
        if (read_string(json)) {
            json->at = start;
            return EX_JSON_ERROR;
        }
        skip_space(json);
        return json->at < json->end && *json->at == ':' ? EX_JSON_KEY : EX_JSON_STRING;
    }
    }
    static const struct {
        const char *word;
        ex_json_kind kind;
    } words[] = {{"null", EX_JSON_NULL}, {"true", EX_JSON_TRUE}, {"false", EX_JSON_FALSE}};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(words[k].word);
        if ((size_t)(json->end - start) >= n && memcmp(start, words[k].word, n) == 0) {
            json->at += n;
            return words[k].kind;
        }
    }
    /* A number: strtod needs a NUL-terminated copy, numbers are short. */
    char digits[64];
    size_t n = 0;
    while (start + n < json->end && n < sizeof digits - 1 && strchr("+-.0123456789eE", start[n]))
        n++;
    memcpy(digits, start, n);
    digits[n] = '\0';
    char *end;
    json->number = strtod(digits, &end);
    if (n == 0 || end != digits + n)
        return EX_JSON_ERROR;
    json->at += n;
    return EX_JSON_NUMBER;
}

int ex_json_skip(ex_json *json, ex_json_kind first)
{
    size_t depth = first == EX_JSON_BEGIN_ARRAY || first == EX_JSON_BEGIN_OBJECT;
    if (first == EX_JSON_ERROR || first == EX_JSON_END)
        return 1;
    while (depth > 0) {
        ex_json_kind kind = ex_json_next(json);
        if (kind == EX_JSON_ERROR || kind == EX_JSON_END)
            return 1;
        if (kind == EX_JSON_BEGIN_ARRAY || kind == EX_JSON_BEGIN_OBJECT)
            depth++;
        else if (kind == EX_JSON_END_ARRAY || kind == EX_JSON_END_OBJECT)
            depth--;
    }
    return 0;
}

/* ---- words ---- */

static int word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

size_t ex_next_word(const char **at, const char *end, char *word, size_t capacity)
{
    const char *p = *at;
    while (p < end && !isgraph((unsigned char)*p) && (unsigned char)*p < 0x80)
        p++;
    size_t n = 0;
    if (p >= end) {
        *at = p;
        word[0] = '\0';
        return 0;
    }
    if (!word_byte((unsigned char)*p)) {
        word[n++] = *p++;
    } else {
        /* Letters, digits, and an apostrophe with a word byte on both sides. */
        while (p < end && (word_byte((unsigned char)*p) ||
                           (*p == '\'' && p + 1 < end && word_byte((unsigned char)p[1]) && n))) {
            if (n + 1 < capacity)
                word[n++] = (char)tolower((unsigned char)*p);
            p++;
        }
    }
    word[n] = '\0';
    *at = p;
    return n;
}

static uint64_t hash_word(const char *word, size_t length)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t k = 0; k < length; k++)
        h = (h ^ (unsigned char)word[k]) * 0x100000001b3u;
    return h;
}

void ex_vocab_init(ex_vocab *vocab)
{
    memset(vocab, 0, sizeof *vocab);
}

void ex_vocab_free(ex_vocab *vocab)
{
    free(vocab->bytes);
    free(vocab->offsets);
    free(vocab->counts);
    free(vocab->slots);
    ex_vocab_init(vocab);
}

const char *ex_vocab_word(const ex_vocab *vocab, size_t id)
{
    return vocab->bytes + vocab->offsets[id];
}

/* The slot holding word, or the empty slot where it would go. */
static size_t find_slot(const ex_vocab *vocab, const char *word, size_t length)
{
    size_t mask = vocab->slot_count - 1, slot = (size_t)hash_word(word, length) & mask;
    for (;;) {
        int64_t id = vocab->slots[slot];
        if (id < 0)
            return slot;
        const char *other = ex_vocab_word(vocab, (size_t)id);
        if (strlen(other) == length && memcmp(other, word, length) == 0)
            return slot;
        slot = (slot + 1) & mask;
    }
}

int64_t ex_vocab_find(const ex_vocab *vocab, const char *word, size_t length)
{
    if (vocab->slot_count == 0)
        return -1;
    return vocab->slots[find_slot(vocab, word, length)];
}

static int grow_slots(ex_vocab *vocab)
{
    size_t count = vocab->slot_count ? vocab->slot_count * 2 : 1024;
    int64_t *slots = malloc(count * sizeof *slots);
    if (!slots)
        return 1;
    for (size_t k = 0; k < count; k++)
        slots[k] = -1;
    free(vocab->slots);
    vocab->slots = slots;
    vocab->slot_count = count;
    for (size_t id = 0; id < vocab->size; id++) {
        const char *word = ex_vocab_word(vocab, id);
        slots[find_slot(vocab, word, strlen(word))] = (int64_t)id;
    }
    return 0;
}

int64_t ex_vocab_add(ex_vocab *vocab, const char *word, size_t length)
{
    if (2 * (vocab->size + 1) > vocab->slot_count && grow_slots(vocab))
        return -1;
    size_t slot = find_slot(vocab, word, length);
    if (vocab->slots[slot] >= 0) {
        vocab->counts[vocab->slots[slot]]++;
        return vocab->slots[slot];
    }
    if (vocab->size == vocab->capacity) {
        size_t capacity = vocab->capacity ? vocab->capacity * 2 : 1024;
        size_t *offsets = realloc(vocab->offsets, capacity * sizeof *offsets);
        if (offsets)
            vocab->offsets = offsets;
        uint64_t *counts = realloc(vocab->counts, capacity * sizeof *counts);
        if (counts)
            vocab->counts = counts;
        if (!offsets || !counts)
            return -1;
        vocab->capacity = capacity;
    }
    if (vocab->bytes_used + length + 1 > vocab->bytes_capacity) {
        size_t capacity = vocab->bytes_capacity ? vocab->bytes_capacity : 1 << 14;
        while (vocab->bytes_used + length + 1 > capacity)
            capacity *= 2;
        char *bytes = realloc(vocab->bytes, capacity);
        if (!bytes)
            return -1;
        vocab->bytes = bytes;
        vocab->bytes_capacity = capacity;
    }
    memcpy(vocab->bytes + vocab->bytes_used, word, length);
    vocab->bytes[vocab->bytes_used + length] = '\0';
    vocab->offsets[vocab->size] = vocab->bytes_used;
    vocab->counts[vocab->size] = 1;
    vocab->bytes_used += length + 1;
    vocab->slots[slot] = (int64_t)vocab->size;
    return (int64_t)vocab->size++;
}

static const ex_vocab *sort_vocab; /* qsort has no context argument */

static int by_count(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint64_t cx = sort_vocab->counts[x], cy = sort_vocab->counts[y];
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(ex_vocab_word(sort_vocab, x), ex_vocab_word(sort_vocab, y));
}

int ex_vocab_keep(const ex_vocab *from, uint64_t min_count, size_t max_size,
                  const char *const *specials, size_t special_count, ex_vocab *out)
{
    ex_vocab_init(out);
    size_t *order = malloc((from->size ? from->size : 1) * sizeof *order);
    if (!order)
        return 1;
    for (size_t k = 0; k < from->size; k++)
        order[k] = k;
    sort_vocab = from;
    qsort(order, from->size, sizeof *order, by_count);
    int bad = 0;
    for (size_t k = 0; k < special_count && !bad; k++) {
        bad = ex_vocab_add(out, specials[k], strlen(specials[k])) < 0;
        if (!bad)
            out->counts[out->size - 1] = 0;
    }
    for (size_t k = 0; k < from->size && out->size < max_size && !bad; k++) {
        const char *word = ex_vocab_word(from, order[k]);
        if (from->counts[order[k]] < min_count)
            break;
        if (ex_vocab_find(out, word, strlen(word)) >= 0)
            continue; /* a word spelled as a special */
        int64_t id = ex_vocab_add(out, word, strlen(word));
        bad = id < 0;
        if (!bad)
            out->counts[id] = from->counts[order[k]];
    }
    free(order);
    if (bad)
        ex_vocab_free(out);
    return bad;
}

int ex_vocab_save_meta(const ex_vocab *vocab, lstm_network *network, const char *key)
{
    /* The bytes array is the words with NULs between them: the same with
     * newlines is the entry. */
    char *text = malloc(vocab->bytes_used ? vocab->bytes_used : 1);
    if (!text) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (vocab->bytes_used)
        memcpy(text, vocab->bytes, vocab->bytes_used);
    for (size_t k = 0; k < vocab->bytes_used; k++)
        if (text[k] == '\0')
            text[k] = '\n';
    lstm_status status =
        lstm_network_set_meta(network, key, LSTM_META_TEXT, text, vocab->bytes_used);
    if (status == LSTM_E_ARG) /* words that are not UTF-8: keep them as bytes */
        status = lstm_network_set_meta(network, key, LSTM_META_BYTES, text, vocab->bytes_used);
    free(text);
    return ex_failed(status, "lstm_network_set_meta(vocabulary)");
}

int ex_vocab_load_meta(ex_vocab *vocab, const lstm_network *network, const char *key,
                       size_t expected_size)
{
    const void *value;
    size_t size;
    ex_vocab_init(vocab);
    if (ex_failed(lstm_network_get_meta(network, key, NULL, &value, &size),
                  "lstm_network_get_meta(vocabulary)"))
        return 1;
    const char *at = value, *end = at + size;
    while (at < end) {
        const char *newline = memchr(at, '\n', (size_t)(end - at));
        if (!newline)
            break;
        size_t before = vocab->size;
        int64_t id = ex_vocab_add(vocab, at, (size_t)(newline - at));
        if (id < 0 || (size_t)id != before) {
            fprintf(stderr, "vocabulary '%s': %s\n", key,
                    id < 0 ? "out of memory" : "a word appears twice");
            ex_vocab_free(vocab);
            return 1;
        }
        at = newline + 1;
    }
    if (at != end || (expected_size && vocab->size != expected_size)) {
        fprintf(stderr, "vocabulary '%s' has %zu words, the network expects %zu\n", key,
                vocab->size, expected_size);
        ex_vocab_free(vocab);
        return 1;
    }
    return 0;
}

const char *ex_meta_text(const lstm_network *network, const char *key)
{
    const void *value;
    uint32_t kind;
    if (lstm_network_get_meta(network, key, &kind, &value, NULL) != LSTM_OK ||
        kind != LSTM_META_TEXT) {
        fprintf(stderr, "the model file has no text entry '%s'\n", key);
        return NULL;
    }
    return value;
}

int ex_set_meta_text(lstm_network *network, const char *key, const char *text)
{
    return ex_failed(lstm_network_set_meta(network, key, LSTM_META_TEXT, text, strlen(text)),
                     "lstm_network_set_meta");
}

/* ---- scores ---- */

size_t ex_argmax(const float *values, size_t count)
{
    size_t best = 0;
    for (size_t k = 1; k < count; k++)
        if (values[k] > values[best])
            best = k;
    return best;
}

double ex_softmax(const float *logits, size_t count, double *probabilities)
{
    double max = logits[ex_argmax(logits, count)], total = 0.0;
    for (size_t k = 0; k < count; k++)
        total += probabilities[k] = exp((double)logits[k] - max);
    for (size_t k = 0; k < count; k++)
        probabilities[k] /= total;
    return max + log(total);
}

/* ---- inference in reduced precision ---- */

const lstm_precision ex_precisions[EX_PRECISIONS] = {LSTM_PRECISION_FP32, LSTM_PRECISION_BF16,
                                                     LSTM_PRECISION_INT8};

const char *ex_precision_name(lstm_precision precision)
{
    switch (precision) {
    case LSTM_PRECISION_FP32: return "fp32";
    case LSTM_PRECISION_BF16: return "bf16";
    case LSTM_PRECISION_INT8: return "int8";
    }
    return "?";
}

int ex_parse_precision(const char *text, lstm_precision *out)
{
    *out = LSTM_PRECISION_FP32;
    if (!text)
        return 0;
    for (size_t p = 0; p < EX_PRECISIONS; p++)
        if (strcmp(text, ex_precision_name(ex_precisions[p])) == 0) {
            *out = ex_precisions[p];
            return 0;
        }
    fprintf(stderr, "--precision: expected fp32, bf16 or int8, not '%s'\n", text);
    return 1;
}

int ex_set_precision(lstm_workspace *workspace, lstm_state *state, lstm_precision precision)
{
    return (workspace && ex_failed(lstm_workspace_set_precision(workspace, precision),
                                   "lstm_workspace_set_precision")) ||
           (state &&
            ex_failed(lstm_state_set_precision(state, precision), "lstm_state_set_precision"));
}

int ex_parse_training_precision(const char *text, lstm_precision *out)
{
    *out = LSTM_PRECISION_FP32;
    if (!text || strcmp(text, "fp32") == 0)
        return 0;
    if (strcmp(text, "bf16") == 0) {
        *out = LSTM_PRECISION_BF16;
        return 0;
    }
    fprintf(stderr, "--train-precision: expected fp32 or bf16, not '%s'%s\n", text,
            strcmp(text, "int8") == 0 ? " (int8 is for inference: --precision)" : "");
    return 1;
}

int ex_set_training_precision(lstm_workspace *workspace, lstm_precision precision)
{
    return ex_failed(lstm_workspace_set_training_precision(workspace, precision),
                     "lstm_workspace_set_training_precision");
}

int ex_evaluate_precisions(lstm_workspace *workspace, lstm_state *state, ex_evaluation evaluate,
                           void *context, double metrics[EX_PRECISIONS])
{
    int status = 0;
    for (size_t p = 0; p < EX_PRECISIONS && status == 0; p++)
        status =
            ex_set_precision(workspace, state, ex_precisions[p]) || evaluate(context, &metrics[p]);
    /* Training and the callers' other evaluations expect float32 again. */
    if (ex_set_precision(workspace, state, LSTM_PRECISION_FP32))
        status = 1;
    return status;
}

void ex_print_precisions(const char *name, const double metrics[EX_PRECISIONS], int decimals,
                         const char *unit)
{
    printf("%s:", name);
    for (size_t p = 0; p < EX_PRECISIONS; p++)
        printf("%s%s %.*f%s", p ? "  " : " ", ex_precision_name(ex_precisions[p]), decimals,
               metrics[p], unit);
    printf("\n");
}

int ex_precision_within(double fp32, double reduced, double tolerance, int relative)
{
    double allowed = relative ? tolerance * fabs(fp32) : tolerance;
    return fabs(reduced - fp32) <= allowed;
}

int ex_print_precision_bound(const double metrics[EX_PRECISIONS], double tolerance, int relative,
                             const char *bound)
{
    int kept = 1;
    printf("  bf16, int8 against fp32:");
    for (size_t p = 1; p < EX_PRECISIONS; p++) {
        double change = metrics[p] - metrics[0];
        if (relative)
            printf("%s %+.2f%%", p > 1 ? "," : "",
                   metrics[0] != 0.0 ? 100.0 * change / metrics[0] : 0.0);
        else
            printf("%s %+.2f points", p > 1 ? "," : "", change);
    }
    printf("; within %s:", bound);
    for (size_t p = 1; p < EX_PRECISIONS; p++) {
        int within = ex_precision_within(metrics[0], metrics[p], tolerance, relative);
        printf("%s %s", p > 1 ? "," : "", within ? "yes" : "NO");
        kept = kept && within;
    }
    printf("\n");
    return kept;
}
