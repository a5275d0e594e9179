/*
 * Model files (docs/model-format.md), white box:
 *
 *   - save and load give back the same model, bit for bit, for every kind
 *     of configuration, and the bytes written follow the spec field by field
 *     (checked here by a reader written from the spec, not from io.c);
 *   - every corrupted, truncated or extended file is refused cleanly;
 *   - the compatibility rule (unknown optional sections, newer minor
 *     versions) and every validation rule, on files built by hand here with
 *     their checksums recomputed, so that the check under test is the one
 *     that fires;
 *   - saving to a path is atomic: a write failing at any point leaves the
 *     previous file intact and no temporary file behind (through the
 *     lstm__io_write_hook of io_internal.h), and so does a process killed while
 *     it saves, whichever way the temporary file is made (lstm__io_temporary_hook);
 *   - paths: FIFOs and other non-regular files, names of NAME_MAX bytes,
 *     messages of long paths, symbolic links, the modes saved files get;
 *   - an optimizer's state saved in the file resumes training bit for bit;
 *   - tests/unit/data/model-v1.lstm, written by the first version of the format,
 *     still loads, with exactly the parameters it was written with;
 *   - every io function refuses bad arguments.
 *
 * Every load of a mutated file reads from a heap block of exactly the
 * file's size, so that under AddressSanitizer a read past the end is caught.
 */
#define _GNU_SOURCE /* mkdtemp, clock_gettime; O_TMPFILE to know what a crash leaves */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "io_internal.h"
#include "lstm/lstm.h"
#include "test_precision_support.h"

#ifndef DATA_DIR
#  error "DATA_DIR must be defined as the path of tests/unit/data"
#endif

enum {
    HEADER_BYTES = 16,
    SECTION_OVERHEAD = 20, /* tag, flags, length, then the CRC */
    CONF_BYTES = 48,
    TENS_FIXED = 32,
    MAX_SECTIONS = 128,
    PATH_CAPACITY = 1024,
    FORWARD_STEPS = 3, /* T of the forward passes that compare models */
    FORWARD_BATCH = 2  /* B */
};

/* The committed sample, tests/unit/data/model-v1.lstm (see tests/unit/data/README.md). */
#define SAMPLE_PATH DATA_DIR "/model-v1.lstm"
#define SAMPLE_SEED UINT64_C(20240601)
#define SAMPLE_PARAM_COUNT 496u
#define SAMPLE_FILE_SIZE 3144u
#define SAMPLE_PARAMS_CRC UINT32_C(0x181F7EB8)
#define SAMPLE_FILE_CRC UINT32_C(0xD28A0496)
/* Set to write tests/unit/data/model-v1.lstm again. Only ever meant for the
 * first version of the format: the file is a fixed point of history. */
#define SAMPLE_REGENERATE_ENV "LSTM_IO_REGENERATE_SAMPLE"

/* ---- little-endian fields, written from the spec (not from src/bytes.h) --- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v |= (uint32_t)p[k] << (8 * k);
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void putf32(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put32(p, bits);
}

static void putf64(unsigned char *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put64(p, bits);
}

static double getf64(const unsigned char *p)
{
    uint64_t bits = get64(p);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* CRC-32C of a float buffer as the file stores it (little-endian float32). */
static uint32_t floats_crc(const float *values, size_t count)
{
    uint32_t crc = 0;
    for (size_t k = 0; k < count; k++) {
        unsigned char v[4];
        putf32(v, values[k]);
        crc = lstm__crc32c(crc, v, sizeof v);
    }
    return crc;
}

/* ---- small utilities ---------------------------------------------------------- */

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes != 0 ? bytes : 1);
    assert_non_null(block);
    return block;
}

static unsigned char *duplicate(const void *bytes, size_t size)
{
    unsigned char *copy = checked_malloc(size);
    if (size != 0)
        memcpy(copy, bytes, size);
    return copy;
}

/* A pointer no load may write over *out: a failed load leaves it as it was. */
static lstm_model *sentinel(void)
{
    static max_align_t storage;
    return (lstm_model *)(void *)&storage;
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static void join(char *out, const char *dir, const char *name)
{
    int length = snprintf(out, PATH_CAPACITY, "%s/%s", dir, name);
    assert_true(length > 0 && length < PATH_CAPACITY);
}

static unsigned char *file_read(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long length = ftell(file);
    assert_true(length >= 0);
    assert_int_equal(fseek(file, 0, SEEK_SET), 0);
    unsigned char *bytes = checked_malloc((size_t)length);
    assert_int_equal(fread(bytes, 1, (size_t)length, file), (size_t)length);
    fclose(file);
    *size = (size_t)length;
    return bytes;
}

static void file_write(const char *path, const void *bytes, size_t size)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    if (size != 0)
        assert_int_equal(fwrite(bytes, 1, size, file), size);
    assert_int_equal(fclose(file), 0);
}

/* Asserts that dir holds exactly the entry name (nothing when name is NULL):
 * no temporary file left behind. */
static void assert_dir_holds(const char *dir, const char *name)
{
    DIR *listing = opendir(dir);
    assert_non_null(listing);
    size_t entries = 0, matching = 0;
    char others[512] = "";
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        entries++;
        if (name != NULL && strcmp(entry->d_name, name) == 0)
            matching++;
        else if (strlen(others) + strlen(entry->d_name) + 2 < sizeof others) {
            strcat(others, " ");
            strcat(others, entry->d_name);
        }
    }
    closedir(listing);
    size_t want = name != NULL ? 1 : 0;
    if (entries != want || matching != want)
        fail_msg("%s should hold %s only; it holds %zu entries, unexpected:%s", dir,
                 name != NULL ? name : "nothing", entries, others);
}

/* Removes every entry of dir (files and directories), then dir. */
static void dir_remove(const char *dir)
{
    DIR *listing = opendir(dir);
    if (listing == NULL)
        return;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char path[PATH_CAPACITY];
        if (snprintf(path, sizeof path, "%s/%s", dir, entry->d_name) >= (int)sizeof path)
            continue;
        struct stat info;
        if (lstat(path, &info) == 0 && S_ISDIR(info.st_mode))
            dir_remove(path);
        else
            unlink(path);
    }
    closedir(listing);
    rmdir(dir);
}

/* Every test gets a fresh temporary directory, and the write hook back. */
typedef struct fixture {
    char dir[PATH_CAPACITY];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    int length = snprintf(f->dir, sizeof f->dir, "%s/test_io.XXXXXX", base);
    if (length <= 0 || length >= (int)sizeof f->dir || mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    lstm__io_write_hook = write;
    lstm__io_temporary_hook = IO_TEMPORARY_ANY;
    dir_remove(f->dir);
    free(f);
    return 0;
}

/* ---- models ----------------------------------------------------------------- */

static lstm_config make_config(size_t input_size, size_t hidden_size, size_t num_layers,
                               size_t proj_size, uint32_t flags, double dropout)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = input_size;
    config.hidden_size = hidden_size;
    config.num_layers = num_layers;
    config.proj_size = proj_size;
    config.flags = flags;
    config.dropout = dropout;
    return config;
}

static lstm_model *model_new(const lstm_config *config, uint64_t seed)
{
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, seed, 0), LSTM_OK);
    return model;
}

static lstm_config config_of(const lstm_model *model)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    assert_int_equal(lstm_model_get_config(model, &config), LSTM_OK);
    return config;
}

static float *params_of(const lstm_model *model, size_t *count)
{
    *count = lstm_model_param_count(model);
    float *params = checked_malloc(*count * sizeof *params);
    assert_int_equal(lstm_model_get_params(model, params, *count), LSTM_OK);
    return params;
}

/* The file's bytes: size asked first (buffer NULL), then written. */
static unsigned char *model_bytes(const lstm_model *model, const lstm_optim *optim, size_t *size)
{
    *size = 0;
    assert_int_equal(lstm_model_save_buffer(model, optim, NULL, 0, size), LSTM_OK);
    assert_true(*size > HEADER_BYTES);
    unsigned char *bytes = checked_malloc(*size);
    size_t written = 0;
    assert_int_equal(lstm_model_save_buffer(model, optim, bytes, *size, &written), LSTM_OK);
    assert_int_equal(written, *size);
    return bytes;
}

/* A fixed input x and, written to one buffer, y, hT and cT of a forward pass. */
/* y, hT and cT of an inference call in the precision, one after another. */
static float *forward_output_in(const lstm_model *model, lstm_precision precision, size_t *count)
{
    const lstm_config c = config_of(model);
    const size_t D = (c.flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    const size_t R = c.proj_size != 0 ? c.proj_size : c.hidden_size;
    const size_t LD = c.num_layers * D, T = FORWARD_STEPS, B = FORWARD_BATCH;
    const size_t nx = T * B * c.input_size, ny = T * B * D * R, nh = LD * B * R;
    const size_t nc = LD * B * c.hidden_size;
    float *x = checked_malloc(nx * sizeof *x);
    for (size_t k = 0; k < nx; k++)
        x[k] = (float)((k * 7) % 11) * 0.2f - 1.0f;
    *count = ny + nh + nc;
    float *out = checked_malloc(*count * sizeof *out);
    memset(out, 0, *count * sizeof *out);
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    assert_int_equal(lstm_workspace_set_precision(workspace, precision), LSTM_OK);
    assert_int_equal(lstm_model_forward(model, workspace, T, B, NULL, x, NULL, NULL, out, out + ny,
                                        out + ny + nh),
                     LSTM_OK);
    lstm_workspace_destroy(workspace);
    free(x);
    for (size_t k = 0; k < *count; k++)
        assert_true(isfinite(out[k]));
    return out;
}

static float *forward_output(const lstm_model *model, size_t *count)
{
    return forward_output_in(model, LSTM_PRECISION_FP32, count);
}

static void assert_config_equal(const lstm_config *a, const lstm_config *b)
{
    assert_int_equal(a->struct_size, b->struct_size);
    assert_int_equal(a->input_size, b->input_size);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->num_layers, b->num_layers);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->proj_size, b->proj_size);
    assert_memory_equal(&a->dropout, &b->dropout, sizeof a->dropout);
}

/* Same configuration, same parameters bit for bit, same forward output. */
static void assert_models_equal(const lstm_model *a, const lstm_model *b)
{
    const lstm_config config_a = config_of(a), config_b = config_of(b);
    assert_config_equal(&config_a, &config_b);
    size_t count_a, count_b;
    float *params_a = params_of(a, &count_a), *params_b = params_of(b, &count_b);
    assert_int_equal(count_a, count_b);
    assert_memory_equal(params_a, params_b, count_a * sizeof *params_a);
    free(params_a);
    free(params_b);
    float *out_a = forward_output(a, &count_a), *out_b = forward_output(b, &count_b);
    assert_int_equal(count_a, count_b);
    assert_memory_equal(out_a, out_b, count_a * sizeof *out_a);
    free(out_a);
    free(out_b);
}

/* ---- a reader of the spec, to check what the writer wrote ---------------------- */

/* The name the spec gives a tensor. */
static size_t spec_name(char *name, size_t capacity, uint32_t layer, uint32_t direction,
                        uint32_t kind)
{
    static const char *const prefixes[4] = {"weight", "bias", "projection", "peephole"};
    assert_true(kind < 4);
    int length = snprintf(name, capacity, "%s_l%u%s", prefixes[kind], (unsigned)layer,
                          direction == 1 ? "_reverse" : "");
    assert_true(length > 0 && (size_t)length < capacity);
    return (size_t)length;
}

/*
 * Checks a saved file against docs/model-format.md and the model it was
 * saved from: header, CONF's fields, one TENS per tensor of the model with
 * the spec's name, lstm_model_tensor()'s shape and the model's values, an
 * OPTM exactly when one was saved, and END last.
 */
static void check_against_spec(const unsigned char *bytes, size_t size, const lstm_model *model,
                               const lstm_optim *optim)
{
    assert_true(size >= HEADER_BYTES);
    assert_memory_equal(bytes, "LSTMFILE", 8);
    assert_int_equal(bytes[8] | bytes[9] << 8, 1);   /* major */
    assert_int_equal(bytes[10] | bytes[11] << 8, 1); /* minor: 1.1 */
    assert_int_equal(get32(bytes + 12), lstm__crc32c(0, bytes, 12));

    const lstm_config config = config_of(model);
    const size_t D = (config.flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    size_t count;
    float *params = params_of(model, &count);
    size_t expected_tensors = 0, seen_tensors = 0;
    unsigned char seen[3][2][4] = {{{0}}};
    assert_true(config.num_layers <= 3);
    for (size_t layer = 0; layer < config.num_layers; layer++)
        for (size_t d = 0; d < D; d++)
            for (int kind = 0; kind < 4; kind++) {
                size_t offset;
                if (lstm_model_tensor(model, layer, d, (lstm_tensor)kind, &offset, NULL, NULL) ==
                    LSTM_OK)
                    expected_tensors++;
            }

    size_t at = HEADER_BYTES, index = 0;
    bool ended = false, have_optimizer = false;
    while (!ended) {
        assert_true(size - at >= SECTION_OVERHEAD);
        const unsigned char *s = bytes + at, *payload = s + 16;
        const uint32_t flags = get32(s + 4);
        const uint64_t length = get64(s + 8);
        assert_true(length <= size - at - SECTION_OVERHEAD);
        assert_int_equal(get32(payload + length), lstm__crc32c(0, s, 16 + (size_t)length));
        if (index == 0) {
            assert_memory_equal(s, "CONF", 4);
            assert_int_equal(flags, 1);
            assert_int_equal(length, CONF_BYTES);
            assert_int_equal(get64(payload), config.input_size);
            assert_int_equal(get64(payload + 8), config.hidden_size);
            assert_int_equal(get64(payload + 16), config.num_layers);
            assert_int_equal(get64(payload + 24), config.proj_size);
            assert_int_equal(get32(payload + 32), config.flags);
            assert_int_equal(get32(payload + 36), 0);
            double dropout = getf64(payload + 40);
            assert_memory_equal(&dropout, &config.dropout, sizeof dropout);
        } else if (memcmp(s, "TENS", 4) == 0) {
            assert_int_equal(flags, 1);
            assert_true(length >= TENS_FIXED);
            const uint32_t layer = get32(payload), direction = get32(payload + 4);
            const uint32_t kind = get32(payload + 8), name_length = get32(payload + 12);
            const uint64_t rows = get64(payload + 16), cols = get64(payload + 24);
            size_t offset, want_rows, want_cols;
            assert_true(kind < 4 && layer < 3 && direction < 2);
            assert_int_equal(lstm_model_tensor(model, layer, direction, (lstm_tensor)kind, &offset,
                                               &want_rows, &want_cols),
                             LSTM_OK);
            assert_int_equal(seen[layer][direction][kind], 0);
            seen[layer][direction][kind] = 1;
            seen_tensors++;
            assert_int_equal(rows, want_rows);
            assert_int_equal(cols, want_cols);
            char name[64];
            size_t want_name = spec_name(name, sizeof name, layer, direction, kind);
            assert_int_equal(name_length, want_name);
            assert_memory_equal(payload + TENS_FIXED, name, want_name);
            assert_int_equal(length, TENS_FIXED + want_name + 4 * rows * cols);
            const unsigned char *values = payload + TENS_FIXED + want_name;
            for (size_t k = 0; k < rows * cols; k++) {
                unsigned char v[4];
                putf32(v, params[offset + k]);
                assert_memory_equal(values + 4 * k, v, 4);
            }
        } else if (memcmp(s, "OPTM", 4) == 0) {
            assert_non_null(optim);
            assert_false(have_optimizer);
            have_optimizer = true;
            assert_int_equal(flags, 0);
            size_t state_bytes = 0;
            assert_int_equal(lstm_optim_state_size(optim, &state_bytes), LSTM_OK);
            assert_int_equal(length, state_bytes);
            assert_int_equal(get32(payload), 0x4C4F5054u);
            assert_int_equal(get32(payload + 4), 1);
            uint64_t steps = 0;
            assert_int_equal(lstm_optim_step_count(optim, &steps), LSTM_OK);
            assert_int_equal(get64(payload + 16), steps);
            assert_int_equal(get64(payload + 24), lstm_optim_param_count(optim));
            /* One encoding: the payload is lstm_optim_save_state()'s buffer,
             * byte for byte, on every host (lstm/optim.h). */
            unsigned char *saved = checked_malloc(state_bytes);
            assert_int_equal(lstm_optim_save_state(optim, saved, state_bytes), LSTM_OK);
            assert_memory_equal(payload, saved, state_bytes);
            free(saved);
        } else {
            assert_memory_equal(s, "END ", 4);
            assert_int_equal(flags, 1);
            assert_int_equal(length, 0);
            ended = true;
        }
        at += SECTION_OVERHEAD + (size_t)length;
        index++;
    }
    assert_int_equal(at, size);
    assert_int_equal(seen_tensors, expected_tensors);
    assert_int_equal(have_optimizer, optim != NULL);
    free(params);
}

/* ---- files built by hand ------------------------------------------------------ */

typedef struct section {
    char tag[4];
    uint32_t flags;
    size_t length;
    unsigned char *payload; /* owned */
} section;

typedef struct image {
    unsigned char magic[8];
    uint16_t major, minor;
    size_t count;
    section sections[MAX_SECTIONS];
} image;

/* Splits a well-formed file into its sections (checking every CRC). */
static void image_parse(image *img, const unsigned char *bytes, size_t size)
{
    memset(img, 0, sizeof *img);
    assert_true(size >= HEADER_BYTES);
    assert_int_equal(get32(bytes + 12), lstm__crc32c(0, bytes, 12));
    memcpy(img->magic, bytes, 8);
    img->major = (uint16_t)(bytes[8] | bytes[9] << 8);
    img->minor = (uint16_t)(bytes[10] | bytes[11] << 8);
    for (size_t at = HEADER_BYTES; at < size;) {
        assert_true(size - at >= SECTION_OVERHEAD);
        assert_true(img->count < MAX_SECTIONS);
        section *s = &img->sections[img->count++];
        const uint64_t length = get64(bytes + at + 8);
        assert_true(length <= size - at - SECTION_OVERHEAD);
        assert_int_equal(get32(bytes + at + 16 + length), lstm__crc32c(0, bytes + at, 16 + length));
        memcpy(s->tag, bytes + at, 4);
        s->flags = get32(bytes + at + 4);
        s->length = (size_t)length;
        s->payload = duplicate(bytes + at + 16, s->length);
        at += SECTION_OVERHEAD + s->length;
    }
}

static void image_free(image *img)
{
    for (size_t k = 0; k < img->count; k++)
        free(img->sections[k].payload);
    img->count = 0;
}

static void image_copy(image *dst, const image *src)
{
    *dst = *src;
    for (size_t k = 0; k < src->count; k++)
        dst->sections[k].payload = duplicate(src->sections[k].payload, src->sections[k].length);
}

/* The file's bytes, with the header CRC and every section CRC computed. */
static unsigned char *image_build(const image *img, size_t *size)
{
    size_t total = HEADER_BYTES;
    for (size_t k = 0; k < img->count; k++)
        total += SECTION_OVERHEAD + img->sections[k].length;
    unsigned char *bytes = checked_malloc(total);
    memcpy(bytes, img->magic, 8);
    bytes[8] = (unsigned char)(img->major & 0xFF);
    bytes[9] = (unsigned char)(img->major >> 8);
    bytes[10] = (unsigned char)(img->minor & 0xFF);
    bytes[11] = (unsigned char)(img->minor >> 8);
    put32(bytes + 12, lstm__crc32c(0, bytes, 12));
    size_t at = HEADER_BYTES;
    for (size_t k = 0; k < img->count; k++) {
        const section *s = &img->sections[k];
        memcpy(bytes + at, s->tag, 4);
        put32(bytes + at + 4, s->flags);
        put64(bytes + at + 8, s->length);
        if (s->length != 0)
            memcpy(bytes + at + 16, s->payload, s->length);
        put32(bytes + at + 16 + s->length, lstm__crc32c(0, bytes + at, 16 + s->length));
        at += SECTION_OVERHEAD + s->length;
    }
    *size = total;
    return bytes;
}

static void image_insert(image *img, size_t index, const char tag[4], uint32_t flags,
                         const void *payload, size_t length)
{
    assert_true(img->count < MAX_SECTIONS && index <= img->count);
    memmove(&img->sections[index + 1], &img->sections[index],
            (img->count - index) * sizeof img->sections[0]);
    section *s = &img->sections[index];
    memcpy(s->tag, tag, 4);
    s->flags = flags;
    s->length = length;
    s->payload = duplicate(payload, length);
    img->count++;
}

static void image_remove(image *img, size_t index)
{
    assert_true(index < img->count);
    free(img->sections[index].payload);
    memmove(&img->sections[index], &img->sections[index + 1],
            (img->count - index - 1) * sizeof img->sections[0]);
    img->count--;
}

/* Replaces a section's payload. */
static void image_set_payload(image *img, size_t index, const void *payload, size_t length)
{
    assert_true(index < img->count);
    unsigned char *copy = duplicate(payload, length);
    free(img->sections[index].payload);
    img->sections[index].payload = copy;
    img->sections[index].length = length;
}

static size_t image_find(const image *img, const char tag[4])
{
    for (size_t k = 0; k < img->count; k++)
        if (memcmp(img->sections[k].tag, tag, 4) == 0)
            return k;
    fail_msg("no %.4s section", tag);
    return 0;
}

static size_t image_find_tensor(const image *img, uint32_t layer, uint32_t direction, uint32_t kind)
{
    for (size_t k = 0; k < img->count; k++) {
        const section *s = &img->sections[k];
        if (memcmp(s->tag, "TENS", 4) == 0 && get32(s->payload) == layer &&
            get32(s->payload + 4) == direction && get32(s->payload + 8) == kind)
            return k;
    }
    fail_msg("no tensor %u of layer %u, direction %u", (unsigned)kind, (unsigned)layer,
             (unsigned)direction);
    return 0;
}

/*
 * Loads bytes (from an exact-size heap copy) and expects the status want;
 * on failure *out must stay untouched and, when why is not NULL, the detail
 * message must name the check that fired.
 */
static void expect_load(const char *what, const unsigned char *bytes, size_t size, lstm_status want,
                        const char *why)
{
    unsigned char *copy = duplicate(bytes, size);
    lstm_model *out = sentinel();
    lstm_status status = lstm_model_load_buffer(copy, size, &out);
    free(copy);
    if (status != want)
        fail_msg("%s: status %d (%s), expected %d; message: %s", what, (int)status,
                 lstm_strerror(status), (int)want, lstm_error_message());
    if (want == LSTM_OK) {
        assert_ptr_not_equal(out, sentinel());
        lstm_model_destroy(out);
        return;
    }
    assert_ptr_equal(out, sentinel());
    if (why != NULL && strstr(lstm_error_message(), why) == NULL)
        fail_msg("%s: the message \"%s\" does not say \"%s\"", what, lstm_error_message(), why);
}

static void expect_image(const char *what, const image *img, lstm_status want, const char *why)
{
    size_t size;
    unsigned char *bytes = image_build(img, &size);
    expect_load(what, bytes, size, want, why);
    free(bytes);
}

/* Loads an image that must load, and checks it equals model. */
static void expect_image_equals(const char *what, const image *img, const lstm_model *model)
{
    size_t size;
    unsigned char *bytes = image_build(img, &size);
    lstm_model *loaded = NULL;
    lstm_status status = lstm_model_load_buffer(bytes, size, &loaded);
    if (status != LSTM_OK)
        fail_msg("%s: status %d; message: %s", what, (int)status, lstm_error_message());
    assert_models_equal(model, loaded);
    lstm_model_destroy(loaded);
    free(bytes);
}

/* A TENS payload built from its fields. */
static unsigned char *tensor_payload(uint32_t layer, uint32_t direction, uint32_t kind,
                                     const char *name, uint64_t rows, uint64_t cols,
                                     size_t value_count, size_t *length)
{
    const size_t name_length = strlen(name);
    *length = TENS_FIXED + name_length + 4 * value_count;
    unsigned char *p = checked_malloc(*length);
    put32(p, layer);
    put32(p + 4, direction);
    put32(p + 8, kind);
    put32(p + 12, (uint32_t)name_length);
    put64(p + 16, rows);
    put64(p + 24, cols);
    memcpy(p + TENS_FIXED, name, name_length);
    for (size_t k = 0; k < value_count; k++)
        putf32(p + TENS_FIXED + name_length + 4 * k, 0.125f * (float)(k % 5));
    return p;
}

/* ---- 1. round trips ------------------------------------------------------------ */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(lstm__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(lstm__crc32c(0, "", 0), 0);
    /* Extending a CRC piece by piece gives the CRC of the whole. */
    assert_int_equal(lstm__crc32c(lstm__crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    /* The table-driven CRC against one bit at a time, at every length and
     * alignment around the 8-byte step. */
    unsigned char data[96];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (unsigned char)(k * 37 + 11);
    for (size_t start = 0; start < 8; start++) {
        for (size_t length = 0; start + length <= sizeof data; length++) {
            uint32_t crc = 0xFFFFFFFFu;
            for (size_t k = 0; k < length; k++) {
                crc ^= data[start + k];
                for (int bit = 0; bit < 8; bit++)
                    crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
            }
            assert_int_equal(lstm__crc32c(0, data + start, length), ~crc);
        }
    }
}

/*
 * Layers 1-3 x uni/bidirectional x projection or not x peepholes or not x
 * batch_first or not x dropout 0/0.25: the bytes follow the spec, saving is
 * deterministic, the file equals the buffer, and both load back into the
 * same model.
 */
static void test_round_trip_every_configuration(void **state)
{
    fixture *f = *state;
    char path[PATH_CAPACITY];
    join(path, f->dir, "model.lstm");
    uint64_t seed = 1000;
    size_t configurations = 0;
    for (size_t layers = 1; layers <= 3; layers++)
        for (int bidirectional = 0; bidirectional < 2; bidirectional++)
            for (int projection = 0; projection < 2; projection++)
                for (int peephole = 0; peephole < 2; peephole++)
                    for (int batch_first = 0; batch_first < 2; batch_first++)
                        for (int dropout = 0; dropout < 2; dropout++) {
                            const uint32_t flags = (bidirectional ? LSTM_BIDIRECTIONAL : 0u) |
                                                   (peephole ? LSTM_PEEPHOLE : 0u) |
                                                   (batch_first ? LSTM_BATCH_FIRST : 0u);
                            const lstm_config config = make_config(3, 5, layers, projection ? 2 : 0,
                                                                   flags, dropout ? 0.25 : 0.0);
                            lstm_model *model = model_new(&config, seed++);

                            /* Size query, then a write that stays within its size. */
                            size_t size = 0, written = 0;
                            assert_int_equal(lstm_model_save_buffer(model, NULL, NULL, 0, &size),
                                             LSTM_OK);
                            unsigned char *bytes = checked_malloc(size + 1);
                            bytes[size] = 0x5A;
                            assert_int_equal(
                                lstm_model_save_buffer(model, NULL, bytes, size, &written),
                                LSTM_OK);
                            assert_int_equal(written, size);
                            assert_int_equal(bytes[size], 0x5A);
                            check_against_spec(bytes, size, model, NULL);

                            /* Deterministic: saving again gives the same bytes. */
                            size_t again_size;
                            unsigned char *again = model_bytes(model, NULL, &again_size);
                            assert_int_equal(again_size, size);
                            assert_memory_equal(again, bytes, size);
                            free(again);

                            /* The file holds the buffer's bytes, and nothing else is left. */
                            assert_int_equal(lstm_model_save(model, NULL, path), LSTM_OK);
                            assert_dir_holds(f->dir, "model.lstm");
                            size_t file_size;
                            unsigned char *file = file_read(path, &file_size);
                            assert_int_equal(file_size, size);
                            assert_memory_equal(file, bytes, size);
                            free(file);

                            lstm_model *from_buffer = NULL, *from_file = NULL;
                            assert_int_equal(lstm_model_load_buffer(bytes, size, &from_buffer),
                                             LSTM_OK);
                            assert_int_equal(lstm_model_load(path, &from_file), LSTM_OK);
                            assert_models_equal(model, from_buffer);
                            assert_models_equal(model, from_file);

                            /* A loaded model saves back to the same bytes. */
                            unsigned char *resaved = model_bytes(from_file, NULL, &again_size);
                            assert_int_equal(again_size, size);
                            assert_memory_equal(resaved, bytes, size);
                            free(resaved);

                            lstm_model_destroy(from_file);
                            lstm_model_destroy(from_buffer);
                            lstm_model_destroy(model);
                            free(bytes);
                            configurations++;
                        }
    assert_int_equal(configurations, 96);
}

/* ---- 2. corruption ----------------------------------------------------------- */

/* An Adam optimizer bound to model, with two steps of made-up gradients
 * taken, so that its state is not all zero. */
static lstm_optim *adam_with_state(lstm_model *model)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(optim, model), LSTM_OK);
    float *grads;
    size_t count;
    assert_int_equal(lstm_model_grads(model, &grads, &count), LSTM_OK);
    for (int step = 0; step < 2; step++) {
        for (size_t k = 0; k < count; k++)
            grads[k] = 0.01f * (float)((k * 3 + (size_t)step) % 7) - 0.03f;
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
    return optim;
}

static unsigned char *optim_state(const lstm_optim *optim, size_t *bytes)
{
    assert_int_equal(lstm_optim_state_size(optim, bytes), LSTM_OK);
    unsigned char *state = checked_malloc(*bytes);
    assert_int_equal(lstm_optim_save_state(optim, state, *bytes), LSTM_OK);
    return state;
}

/* A corrupted file: the model load must refuse it, and so must the
 * optimizer load, leaving the optimizer as it was. */
static void expect_corrupt_refused(const char *what, size_t at, unsigned mask,
                                   const unsigned char *bytes, size_t size, lstm_optim *optim,
                                   const unsigned char *optim_before, size_t optim_bytes)
{
    unsigned char *copy = duplicate(bytes, size);
    lstm_model *out = sentinel();
    lstm_status status = lstm_model_load_buffer(copy, size, &out);
    if (status != LSTM_E_FORMAT && status != LSTM_E_UNSUPPORTED)
        fail_msg("%s (byte %zu, mask 0x%02x, size %zu): status %d (%s)", what, at, mask, size,
                 (int)status, lstm_strerror(status));
    assert_ptr_equal(out, sentinel());
    if (optim != NULL) {
        status = lstm_optim_load_buffer(optim, copy, size);
        if (status != LSTM_E_FORMAT && status != LSTM_E_UNSUPPORTED)
            fail_msg("%s (byte %zu, mask 0x%02x, size %zu): optimizer load gave %d (%s)", what, at,
                     mask, size, (int)status, lstm_strerror(status));
        size_t now_bytes;
        unsigned char *now = optim_state(optim, &now_bytes);
        assert_int_equal(now_bytes, optim_bytes);
        assert_memory_equal(now, optim_before, optim_bytes);
        free(now);
    }
    free(copy);
}

static void check_every_corruption(const unsigned char *bytes, size_t size, lstm_optim *optim)
{
    static const unsigned masks[] = {0x01, 0x80, 0xFF};
    size_t optim_bytes = 0;
    unsigned char *before = optim != NULL ? optim_state(optim, &optim_bytes) : NULL;
    if (optim != NULL) /* the intact file is one this optimizer accepts */
        assert_int_equal(lstm_optim_load_buffer(optim, bytes, size), LSTM_OK);

    unsigned char *flipped = duplicate(bytes, size);
    for (size_t at = 0; at < size; at++) {
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
            flipped[at] = (unsigned char)(bytes[at] ^ masks[m]);
            expect_corrupt_refused("flipped", at, masks[m], flipped, size, optim, before,
                                   optim_bytes);
        }
        flipped[at] = bytes[at];
    }
    free(flipped);

    /* Every truncation: always LSTM_E_FORMAT. */
    for (size_t length = 0; length < size; length++) {
        unsigned char *cut = duplicate(bytes, length);
        lstm_model *out = sentinel();
        lstm_status status = lstm_model_load_buffer(cut, length, &out);
        if (status != LSTM_E_FORMAT)
            fail_msg("truncated to %zu of %zu bytes: status %d (%s)", length, size, (int)status,
                     lstm_strerror(status));
        assert_ptr_equal(out, sentinel());
        if (optim != NULL)
            assert_int_equal(lstm_optim_load_buffer(optim, cut, length), LSTM_E_FORMAT);
        free(cut);
    }

    /* One byte more, whatever it is. */
    unsigned char *longer = checked_malloc(size + 1);
    memcpy(longer, bytes, size);
    for (unsigned extra = 0; extra < 256; extra += 85) {
        longer[size] = (unsigned char)extra;
        expect_corrupt_refused("one trailing byte", size, extra, longer, size + 1, optim, before,
                               optim_bytes);
        expect_load("one trailing byte", longer, size + 1, LSTM_E_FORMAT, NULL);
    }
    free(longer);

    if (optim != NULL) {
        size_t after_bytes;
        unsigned char *after = optim_state(optim, &after_bytes);
        assert_memory_equal(after, before, optim_bytes);
        free(after);
    }
    free(before);
}

static void test_every_byte_corrupted(void **state)
{
    (void)state;
    const lstm_config config = make_config(2, 3, 1, 0, 0, 0.0);
    lstm_model *model = model_new(&config, 7);
    size_t size;
    unsigned char *bytes = model_bytes(model, NULL, &size);
    expect_load("intact", bytes, size, LSTM_OK, NULL);
    check_every_corruption(bytes, size, NULL);
    free(bytes);

    /* With an optimizer's state after the tensors. */
    lstm_optim *optim = adam_with_state(model);
    bytes = model_bytes(model, optim, &size);
    check_against_spec(bytes, size, model, optim);
    expect_load("intact, with OPTM", bytes, size, LSTM_OK, NULL);
    check_every_corruption(bytes, size, optim);
    free(bytes);
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
}

/* ---- quantized files (format 1.2, QTNS) ----------------------------------- */

enum { QTNS_FIXED = 40 };

static uint16_t bf16_bits_of(float v)
{
    const float rounded = test_bf16(v);
    uint32_t bits;
    memcpy(&bits, &rounded, sizeof bits);
    return (uint16_t)(bits >> 16);
}

/*
 * A quantized file against the format's text: header 1.2, the sections in
 * order, a QTNS for every W and W_hr (the split at R; int8 scales per row
 * of each part, max |w| / 127, and q = round(w / s); bf16 rounded to
 * nearest even), the other tensors as TENS.
 */
static void check_quantized_spec(const unsigned char *bytes, size_t size, const lstm_model *model,
                                 lstm_precision precision)
{
    image img;
    image_parse(&img, bytes, size);
    assert_int_equal(img.minor, 2);
    const lstm_config c = config_of(model);
    const size_t D = c.flags & LSTM_BIDIRECTIONAL ? 2 : 1;
    const size_t R = c.proj_size != 0 ? c.proj_size : c.hidden_size;
    size_t count;
    float *params = params_of(model, &count);
    size_t qtns = 0;
    for (size_t k = 0; k < img.count; k++) {
        const section *sec = &img.sections[k];
        if (memcmp(sec->tag, "QTNS", 4) != 0)
            continue;
        qtns++;
        assert_int_equal(sec->flags, 1);
        const unsigned char *p = sec->payload;
        const uint32_t layer = get32(p), direction = get32(p + 4), kind = get32(p + 8);
        assert_true(kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_PROJECTION);
        assert_int_equal(get32(p + 12), precision);
        size_t offset, rows, cols;
        assert_int_equal(lstm_model_tensor(model, layer, direction, kind, &offset, &rows, &cols),
                         LSTM_OK);
        assert_int_equal(get64(p + 16), rows);
        assert_int_equal(get64(p + 24), cols);
        const size_t split = kind == LSTM_TENSOR_WEIGHT ? R : cols;
        const size_t parts = split < cols ? 2 : 1;
        assert_int_equal(get64(p + 32), split);
        const float *w = params + offset;
        const unsigned char *data = p + QTNS_FIXED;
        if (precision == LSTM_PRECISION_BF16) {
            assert_int_equal(sec->length, QTNS_FIXED + 2 * rows * cols);
            for (size_t i = 0; i < rows * cols; i++)
                assert_int_equal(data[2 * i] | data[2 * i + 1] << 8, bf16_bits_of(w[i]));
            continue;
        }
        assert_int_equal(sec->length, QTNS_FIXED + 4 * rows * parts + rows * cols);
        for (size_t part = 0; part < parts; part++)
            for (size_t j = 0; j < rows; j++) {
                const size_t first = part == 0 ? 0 : split, end = part == 0 ? split : cols;
                float largest = 0.0f;
                for (size_t i = first; i < end; i++)
                    largest = fmaxf(largest, fabsf(w[j * cols + i]));
                const float scale = largest / 127.0f;
                uint32_t bits;
                memcpy(&bits, &scale, sizeof bits);
                assert_int_equal(get32(data + 4 * (part * rows + j)), bits);
                for (size_t i = first; i < end; i++) {
                    const float ratio = fminf(fmaxf(w[j * cols + i] / scale, -127.0f), 127.0f);
                    const int8_t q = scale > 0.0f ? (int8_t)nearbyintf(ratio) : 0;
                    assert_int_equal((int8_t)data[4 * parts * rows + j * cols + i], q);
                }
            }
    }
    assert_int_equal(qtns, c.num_layers * D * (c.proj_size != 0 ? 2 : 1));
    free(params);
    image_free(&img);
}

static void test_quantized_files(void **state)
{
    (void)state;
    const lstm_config configs[] = {
        make_config(5, 8, 2, 3, LSTM_PEEPHOLE | LSTM_BIDIRECTIONAL, 0.0),
        make_config(7, 16, 1, 0, 0, 0.0),
    };
    const lstm_precision precisions[] = {LSTM_PRECISION_BF16, LSTM_PRECISION_INT8};
    for (size_t n = 0; n < sizeof configs / sizeof configs[0]; n++) {
        lstm_model *model = model_new(&configs[n], 40 + n);
        size_t fp32_size;
        unsigned char *fp32_file = model_bytes(model, NULL, &fp32_size);
        for (size_t p = 0; p < 2; p++) {
            size_t size;
            assert_int_equal(lstm_model_save_quantized_buffer(model, precisions[p], NULL, 0, &size),
                             LSTM_OK);
            unsigned char *bytes = checked_malloc(size);
            assert_int_equal(
                lstm_model_save_quantized_buffer(model, precisions[p], bytes, size, &size),
                LSTM_OK);
            check_quantized_spec(bytes, size, model, precisions[p]);
            print_message("config %zu: float32 file %zu bytes, %s %zu\n", n, fp32_size,
                          precisions[p] == LSTM_PRECISION_BF16 ? "bf16" : "int8", size);
            assert_true(size < fp32_size);

            /* loaded: the same bits in its precision; its parameters the
             * dequantized weights; saved again, the same bytes */
            lstm_model *loaded = NULL;
            assert_int_equal(lstm_model_load_buffer(bytes, size, &loaded), LSTM_OK);
            size_t count;
            float *before = forward_output_in(model, precisions[p], &count);
            float *after = forward_output_in(loaded, precisions[p], &count);
            assert_memory_equal(before, after, count * sizeof *before);
            size_t again_size;
            assert_int_equal(
                lstm_model_save_quantized_buffer(loaded, precisions[p], NULL, 0, &again_size),
                LSTM_OK);
            assert_int_equal(again_size, size);
            unsigned char *again = checked_malloc(again_size);
            assert_int_equal(lstm_model_save_quantized_buffer(loaded, precisions[p], again,
                                                              again_size, &again_size),
                             LSTM_OK);
            assert_memory_equal(again, bytes, size);
            /* and every corruption of it is refused */
            if (n == 1)
                check_every_corruption(bytes, size, NULL);
            free(again);
            free(before);
            free(after);
            lstm_model_destroy(loaded);
            free(bytes);
        }
        free(fp32_file);
        lstm_model_destroy(model);
    }
}

/* QTNS sections that break a rule, each refused with the rule named. */
static void test_quantized_rules(void **state)
{
    (void)state;
    const lstm_config config = make_config(3, 4, 1, 2, 0, 0.0);
    lstm_model *model = model_new(&config, 50);
    image int8_file, bf16_file, fp32_file;
    size_t size;
    unsigned char *bytes;
    const lstm_precision kinds[] = {LSTM_PRECISION_INT8, LSTM_PRECISION_BF16};
    image *images[] = {&int8_file, &bf16_file};
    for (size_t p = 0; p < 2; p++) {
        assert_int_equal(lstm_model_save_quantized_buffer(model, kinds[p], NULL, 0, &size),
                         LSTM_OK);
        bytes = checked_malloc(size);
        assert_int_equal(lstm_model_save_quantized_buffer(model, kinds[p], bytes, size, &size),
                         LSTM_OK);
        image_parse(images[p], bytes, size);
        free(bytes);
    }
    bytes = model_bytes(model, NULL, &size);
    image_parse(&fp32_file, bytes, size);
    free(bytes);
    expect_image("int8 intact", &int8_file, LSTM_OK, NULL);
    expect_image("bf16 intact", &bf16_file, LSTM_OK, NULL);

    const size_t w = image_find(&int8_file, "QTNS"); /* layer 0's W */
    image img;
#define EDIT(what, why, edit) \
  do { \
    image_copy(&img, &int8_file); \
    section *sec = &img.sections[w]; \
    (void)sec; \
    edit; \
    expect_image(what, &img, LSTM_E_FORMAT, why); \
    image_free(&img); \
  } while (0)
    EDIT("precision 3", "unknown precision", put32(sec->payload + 12, 3));
    EDIT("precision 0", "unknown precision", put32(sec->payload + 12, 0));
    EDIT("kind 1 (a bias)", "does not have", put32(sec->payload + 8, 1));
    EDIT("layer 1", "does not have", put32(sec->payload, 1));
    EDIT("wrong rows", "wrong shape", put64(sec->payload + 16, 9));
    EDIT("split at 1", "split", put64(sec->payload + 32, 1));
    EDIT("one byte short", "wrong length", sec->length--);
    EDIT("too short", "too short", sec->length = 12);
    EDIT("a NaN scale", "scale", putf32(sec->payload + QTNS_FIXED, NAN));
    EDIT("a negative scale", "scale", putf32(sec->payload + QTNS_FIXED + 4, -0.5f));
    EDIT("a scale whose q s overflows", "scale", putf32(sec->payload + QTNS_FIXED, 3e36f));
    EDIT("the section optional", "not marked required", sec->flags = 0);
#undef EDIT
    /* the largest scale that keeps every q s finite loads */
    image_copy(&img, &int8_file);
    putf32(img.sections[w].payload + QTNS_FIXED, 2e36f);
    expect_image("a large scale", &img, LSTM_OK, NULL);
    image_free(&img);

    /* bf16 values: NaN, infinity and subnormals are refused */
    const size_t b = image_find(&bf16_file, "QTNS");
    const unsigned short bad[] = {0x7fc0, 0xff80, 0x0001, 0x807f};
    const char *const why[] = {"NaN or infinity", "NaN or infinity", "subnormal", "subnormal"};
    for (size_t k = 0; k < 4; k++) {
        image_copy(&img, &bf16_file);
        img.sections[b].payload[QTNS_FIXED + 6] = (unsigned char)(bad[k] & 0xff);
        img.sections[b].payload[QTNS_FIXED + 7] = (unsigned char)(bad[k] >> 8);
        expect_image("a bf16 value", &img, LSTM_E_FORMAT, why[k]);
        image_free(&img);
    }

    /* two precisions; float32 and quantized weights in one file; a weight twice */
    image_copy(&img, &int8_file);
    image_set_payload(&img, w, bf16_file.sections[b].payload, bf16_file.sections[b].length);
    expect_image("two precisions", &img, LSTM_E_FORMAT, "two precisions");
    image_free(&img);
    const size_t float_w = image_find_tensor(&fp32_file, 0, 0, LSTM_TENSOR_WEIGHT);
    image_copy(&img, &int8_file);
    image_set_payload(&img, w, fp32_file.sections[float_w].payload,
                      fp32_file.sections[float_w].length);
    memcpy(img.sections[w].tag, "TENS", 4);
    expect_image("a float32 W in a quantized file", &img, LSTM_E_FORMAT, "float32 in a quantized");
    image_free(&img);
    image_copy(&img, &int8_file);
    image_insert(&img, w, "TENS", 1, fp32_file.sections[float_w].payload,
                 fp32_file.sections[float_w].length);
    expect_image("W as TENS and QTNS", &img, LSTM_E_FORMAT, "given twice");
    image_free(&img);

    /* weights that would overflow in the file's precision are refused */
    size_t w_at;
    assert_int_equal(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_WEIGHT, &w_at, NULL, NULL),
                     LSTM_OK);
    float *params;
    assert_int_equal(lstm_model_params(model, &params, NULL), LSTM_OK);
    const float kept = params[w_at];
    params[w_at] = 0x1.ffp127f; /* the tie between bf16's largest and infinity */
    assert_int_equal(lstm_model_save_quantized_buffer(model, LSTM_PRECISION_BF16, NULL, 0, &size),
                     LSTM_E_NONFINITE);
    params[w_at] = 0x1.fefffep127f; /* below it: bf16's largest */
    assert_int_equal(lstm_model_save_quantized_buffer(model, LSTM_PRECISION_BF16, NULL, 0, &size),
                     LSTM_OK);
    params[w_at] = 3.39e38f; /* its int8 scale s has 128 s infinite */
    assert_int_equal(lstm_model_save_quantized_buffer(model, LSTM_PRECISION_INT8, NULL, 0, &size),
                     LSTM_E_NONFINITE);
    params[w_at] = 3.3e38f;
    assert_int_equal(lstm_model_save_quantized_buffer(model, LSTM_PRECISION_INT8, NULL, 0, &size),
                     LSTM_OK);
    params[w_at] = kept;

    /* a precision that is not one */
    assert_int_equal(lstm_model_save_quantized_buffer(model, (lstm_precision)5, NULL, 0, &size),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_save_quantized_buffer(NULL, LSTM_PRECISION_INT8, NULL, 0, &size),
                     LSTM_E_NULL);
    image_free(&int8_file);
    image_free(&bf16_file);
    image_free(&fp32_file);
    lstm_model_destroy(model);
}

/* ---- 3. the compatibility rule and the validation rules --------------------- */

/* The model the hand-built files start from: every kind of tensor, two
 * layers, both directions. */
static lstm_model *base_model(image *img)
{
    const lstm_config config = make_config(2, 3, 2, 2, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.0);
    lstm_model *model = model_new(&config, 11);
    size_t size;
    unsigned char *bytes = model_bytes(model, NULL, &size);
    image_parse(img, bytes, size);
    /* The image rebuilds to the very same bytes. */
    size_t rebuilt_size;
    unsigned char *rebuilt = image_build(img, &rebuilt_size);
    assert_int_equal(rebuilt_size, size);
    assert_memory_equal(rebuilt, bytes, size);
    free(rebuilt);
    free(bytes);
    return model;
}

static void test_compatibility_rule(void **state)
{
    (void)state;
    image base, img;
    lstm_model *model = base_model(&base);
    const size_t end = image_find(&base, "END ");
    const unsigned char extra[] = "a later version's optional data";

    /* (a) unknown optional sections are skipped, anywhere after CONF */
    image_copy(&img, &base);
    image_insert(&img, end, "ZZZZ", 0, extra, sizeof extra);
    expect_image_equals("optional ZZZZ before END", &img, model);
    image_insert(&img, 1, "ZZZZ", 0, NULL, 0);
    image_insert(&img, 4, "zz00", 0, extra, 3);
    expect_image_equals("optional sections between tensors", &img, model);
    image_free(&img);

    /* (b) an unknown required section is refused */
    image_copy(&img, &base);
    image_insert(&img, end, "ZZZZ", 1, extra, sizeof extra);
    expect_image("required ZZZZ", &img, LSTM_E_UNSUPPORTED, "ZZZZ");
    image_free(&img);
    image_copy(&img, &base);
    image_insert(&img, 1, "ZZZZ", 1, NULL, 0);
    expect_image("required ZZZZ after CONF", &img, LSTM_E_UNSUPPORTED, "ZZZZ");
    image_free(&img);

    /* (c) another major version is refused (the field is a 16-bit integer) */
    static const uint16_t majors[] = {2, 0, 0x0101, 0xFFFF};
    for (size_t k = 0; k < sizeof majors / sizeof majors[0]; k++) {
        image_copy(&img, &base);
        img.major = majors[k];
        expect_image("another major version", &img, LSTM_E_UNSUPPORTED, "version");
        image_free(&img);
    }

    /* (d) any minor version of major 1 loads */
    static const uint16_t minors[] = {7, 1, 0xFFFF};
    for (size_t k = 0; k < sizeof minors / sizeof minors[0]; k++) {
        image_copy(&img, &base);
        img.minor = minors[k];
        expect_image_equals("a later minor version", &img, model);
        image_free(&img);
    }

    /* A later minor version with a new optional section, both at once. */
    image_copy(&img, &base);
    img.minor = 7;
    image_insert(&img, end, "ZZZZ", 0, extra, sizeof extra);
    expect_image_equals("minor 7 with ZZZZ", &img, model);
    image_free(&img);

    image_free(&base);
    lstm_model_destroy(model);
}

/* Sets one u64 (or, with bytes 4, u32) field of a section's payload. */
static void patch_field(image *img, size_t index, size_t offset, uint64_t value, size_t bytes)
{
    section *s = &img->sections[index];
    assert_true(offset + bytes <= s->length);
    if (bytes == 4)
        put32(s->payload + offset, (uint32_t)value);
    else
        put64(s->payload + offset, value);
}

static void test_tensor_rules(void **state)
{
    (void)state;
    image base, img;
    lstm_model *model = base_model(&base);

    /* every tensor missing in turn */
    size_t tensors = 0;
    for (size_t k = 0; k < base.count; k++) {
        if (memcmp(base.sections[k].tag, "TENS", 4) != 0)
            continue;
        tensors++;
        image_copy(&img, &base);
        image_remove(&img, k);
        expect_image("a missing tensor", &img, LSTM_E_FORMAT, "missing");
        image_free(&img);
        /* ... or given twice */
        image_copy(&img, &base);
        image_insert(&img, k + 1, "TENS", 1, base.sections[k].payload, base.sections[k].length);
        expect_image("a tensor given twice", &img, LSTM_E_FORMAT, "twice");
        image_free(&img);
    }
    assert_int_equal(tensors, 2 * 2 * 4);

    /* Tensors in any order are fine: here reversed, CONF still first and END last. */
    image_copy(&img, &base);
    for (size_t low = 1, high = img.count - 2; low < high; low++, high--) {
        section swap = img.sections[low];
        img.sections[low] = img.sections[high];
        img.sections[high] = swap;
    }
    expect_image_equals("tensors in reverse order", &img, model);
    image_free(&img);

    /* a wrong name, of the same length and of another */
    const size_t weight = image_find_tensor(&base, 0, 1, 0);
    image_copy(&img, &base);
    memcpy(img.sections[weight].payload + TENS_FIXED, "WEIGHT", 6);
    expect_image("a wrong name", &img, LSTM_E_FORMAT, "name");
    image_free(&img);
    image_copy(&img, &base);
    memcpy(img.sections[weight].payload + TENS_FIXED, "weight_l1", 9); /* layer 0's */
    expect_image("another tensor's name", &img, LSTM_E_FORMAT, "name");
    image_free(&img);
    {
        /* weight_l0 instead of weight_l0_reverse, the payload rebuilt to match */
        size_t rows = get64(base.sections[weight].payload + 16);
        size_t cols = get64(base.sections[weight].payload + 24);
        size_t length;
        unsigned char *p = tensor_payload(0, 1, 0, "weight_l0", rows, cols, rows * cols, &length);
        image_copy(&img, &base);
        image_set_payload(&img, weight, p, length);
        expect_image("the forward name on the reverse tensor", &img, LSTM_E_FORMAT, "name");
        image_free(&img);
        free(p);
        /* a name length pointing far past the payload */
        image_copy(&img, &base);
        patch_field(&img, weight, 12, 0xFFFFFFFFu, 4);
        expect_image("a huge name length", &img, LSTM_E_FORMAT, "name");
        image_free(&img);
        /* a payload longer than its tensor */
        p = tensor_payload(0, 1, 0, "weight_l0_reverse", rows, cols, rows * cols + 1, &length);
        image_copy(&img, &base);
        image_set_payload(&img, weight, p, length);
        expect_image("a payload with a value too many", &img, LSTM_E_FORMAT, "length");
        image_free(&img);
        free(p);
        /* a wrong shape: rows and cols swapped (same count), or one row more */
        image_copy(&img, &base);
        patch_field(&img, weight, 16, cols, 8);
        patch_field(&img, weight, 24, rows, 8);
        expect_image("rows and cols swapped", &img, LSTM_E_FORMAT, "shape");
        image_free(&img);
        p = tensor_payload(0, 1, 0, "weight_l0_reverse", rows + 1, cols, (rows + 1) * cols,
                           &length);
        image_copy(&img, &base);
        image_set_payload(&img, weight, p, length);
        expect_image("a row too many", &img, LSTM_E_FORMAT, "shape");
        image_free(&img);
        free(p);
        /* a payload too short for the fixed fields */
        image_copy(&img, &base);
        image_set_payload(&img, weight, base.sections[weight].payload, TENS_FIXED - 1);
        expect_image("a TENS of 31 bytes", &img, LSTM_E_FORMAT, "short");
        image_free(&img);
    }

    /* tensors the configuration does not have */
    static const struct {
        size_t offset;
        uint32_t value;
    } identities[] = {{0, 2}, {0, 0xFFFFFFFFu}, {4, 2}, {8, 4}, {8, 0xFFFFFFFFu}};
    for (size_t k = 0; k < sizeof identities / sizeof identities[0]; k++) {
        image_copy(&img, &base);
        patch_field(&img, weight, identities[k].offset, identities[k].value, 4);
        expect_image("a tensor the configuration does not have", &img, LSTM_E_FORMAT,
                     "does not have");
        image_free(&img);
    }

    /* non-finite values, first and last of a tensor */
    const size_t bias = image_find_tensor(&base, 1, 0, 1);
    const size_t bias_values = TENS_FIXED + strlen("bias_l1");
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 3; k++) {
        for (int last = 0; last < 2; last++) {
            image_copy(&img, &base);
            section *s = &img.sections[bias];
            putf32(s->payload + (last ? s->length - 4 : bias_values), bad[k]);
            expect_image("a non-finite value", &img, LSTM_E_FORMAT, "NaN");
            image_free(&img);
        }
    }
    /* ... a NaN with another payload, and a subnormal, which is finite */
    image_copy(&img, &base);
    put32(img.sections[bias].payload + bias_values, 0xFFC01234u);
    expect_image("a NaN with a payload", &img, LSTM_E_FORMAT, "NaN");
    image_free(&img);
    image_copy(&img, &base);
    put32(img.sections[bias].payload + bias_values, 0x00000001u);
    expect_image("a subnormal value", &img, LSTM_OK, NULL);
    image_free(&img);

    /* A projection in a model without one. */
    {
        const lstm_config config = make_config(2, 3, 1, 0, 0, 0.0);
        lstm_model *plain = model_new(&config, 3);
        size_t size;
        unsigned char *bytes = model_bytes(plain, NULL, &size);
        image_parse(&img, bytes, size);
        size_t length;
        unsigned char *p = tensor_payload(0, 0, 2, "projection_l0", 2, 3, 6, &length);
        image_insert(&img, image_find(&img, "END "), "TENS", 1, p, length);
        expect_image("a projection without proj_size", &img, LSTM_E_FORMAT, "does not have");
        image_free(&img);
        free(p);
        p = tensor_payload(0, 0, 3, "peephole_l0", 3, 3, 9, &length);
        image_parse(&img, bytes, size);
        image_insert(&img, image_find(&img, "END "), "TENS", 1, p, length);
        expect_image("peepholes without LSTM_PEEPHOLE", &img, LSTM_E_FORMAT, "does not have");
        image_free(&img);
        free(p);
        free(bytes);
        lstm_model_destroy(plain);
    }

    image_free(&base);
    lstm_model_destroy(model);
}

static void test_config_rules(void **state)
{
    (void)state;
    image base, img;
    lstm_model *model = base_model(&base);
    assert_int_equal(image_find(&base, "CONF"), 0);

    /* Configurations lstm_model_create() refuses. */
    static const struct {
        const char *what;
        size_t offset, bytes;
        uint64_t value;
    } bad[] = {
        {"input_size 0", 0, 8, 0},
        {"hidden_size 0", 8, 8, 0},
        {"proj_size = hidden_size", 24, 8, 3},
        {"proj_size > hidden_size", 24, 8, 4},
        {"hidden_size above LSTM_MAX_SIZE", 8, 8, ((uint64_t)1 << 24) + 1},
        {"input_size 2^64 - 1", 0, 8, UINT64_MAX},
        {"num_layers above LSTM_MAX_LAYERS", 16, 8, 1025},
        {"an unknown flag", 32, 4, 0x8 | LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE},
        {"the top flag bit", 32, 4, 0x80000000u | LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        image_copy(&img, &base);
        patch_field(&img, 0, bad[k].offset, bad[k].value, bad[k].bytes);
        expect_image(bad[k].what, &img, LSTM_E_FORMAT, "configuration");
        image_free(&img);
    }
    const double dropouts[] = {1.0, -0.25, 2.0, NAN, INFINITY};
    for (size_t k = 0; k < sizeof dropouts / sizeof dropouts[0]; k++) {
        image_copy(&img, &base);
        putf64(img.sections[0].payload + 40, dropouts[k]);
        expect_image("a dropout out of [0, 1)", &img, LSTM_E_FORMAT, "configuration");
        image_free(&img);
    }

    /* The reserved field, and CONF's length. */
    image_copy(&img, &base);
    patch_field(&img, 0, 36, 1, 4);
    expect_image("CONF's reserved field set", &img, LSTM_E_FORMAT, "reserved");
    image_free(&img);
    {
        unsigned char longer[CONF_BYTES + 8] = {0};
        memcpy(longer, base.sections[0].payload, CONF_BYTES);
        image_copy(&img, &base);
        image_set_payload(&img, 0, longer, sizeof longer);
        expect_image("a CONF of 56 bytes", &img, LSTM_E_FORMAT, "length");
        image_free(&img);
        image_copy(&img, &base);
        image_set_payload(&img, 0, longer, CONF_BYTES - 8);
        expect_image("a CONF of 40 bytes", &img, LSTM_E_FORMAT, "length");
        image_free(&img);
    }

    /* CONF must come first, and once. */
    image_copy(&img, &base);
    image_insert(&img, 2, "CONF", 1, base.sections[0].payload, base.sections[0].length);
    expect_image("two CONF sections", &img, LSTM_E_FORMAT, "CONF");
    image_free(&img);
    image_copy(&img, &base);
    {
        section first = img.sections[0];
        img.sections[0] = img.sections[1];
        img.sections[1] = first;
    }
    expect_image("a tensor before CONF", &img, LSTM_E_FORMAT, "before the configuration");
    image_free(&img);
    image_copy(&img, &base);
    image_insert(&img, 0, "ZZZZ", 0, NULL, 0);
    expect_image("an optional section before CONF", &img, LSTM_E_FORMAT,
                 "before the configuration");
    image_free(&img);
    image_copy(&img, &base);
    while (img.count > 1)
        image_remove(&img, 0);
    expect_image("END alone", &img, LSTM_E_FORMAT, "before the configuration");
    image_free(&img);

    /* A huge model claimed by a tiny file: refused before anything of its
     * size is allocated (2 small allocations: its layout and tensor table). */
    static const struct {
        uint64_t input, hidden, layers;
        uint32_t flags;
        const char *why; /* without a TENS header */
    } huge[] = {
        {2, (uint64_t)1 << 24, 8, 0, "missing"},
        {(uint64_t)1 << 24, (uint64_t)1 << 24, 8, LSTM_BIDIRECTIONAL, "missing"},
        {(uint64_t)1 << 24, (uint64_t)1 << 24, 512, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, "missing"},
        /* 2^63 bytes of parameters: too many for size_t */
        {(uint64_t)1 << 24, (uint64_t)1 << 24, 1024, LSTM_BIDIRECTIONAL, "configuration"},
    };
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        for (int with_header = 0; with_header < 2; with_header++) {
            image_copy(&img, &base);
            while (img.count > 2)
                image_remove(&img, 1); /* CONF and END only */
            patch_field(&img, 0, 0, huge[k].input, 8);
            patch_field(&img, 0, 8, huge[k].hidden, 8);
            patch_field(&img, 0, 16, huge[k].layers, 8);
            patch_field(&img, 0, 24, 0, 8);
            patch_field(&img, 0, 32, huge[k].flags, 4);
            size_t size;
            unsigned char *bytes = image_build(&img, &size);
            const char *why = huge[k].why;
            if (with_header) {
                /* A TENS header claiming weight_l0 at its true length,
                 * 4H x (H + I) floats, followed by the END section. */
                const uint64_t rows = 4 * huge[k].hidden, cols = huge[k].hidden + huge[k].input;
                size_t length;
                unsigned char *p = tensor_payload(0, 0, 0, "weight_l0", rows, cols, 0, &length);
                unsigned char *grown = checked_malloc(size + 16 + length);
                const size_t conf_end = HEADER_BYTES + SECTION_OVERHEAD + CONF_BYTES;
                memcpy(grown, bytes, conf_end);
                memcpy(grown + conf_end, "TENS", 4);
                put32(grown + conf_end + 4, 1);
                put64(grown + conf_end + 8, length + 4 * rows * cols);
                memcpy(grown + conf_end + 16, p, length);
                memcpy(grown + conf_end + 16 + length, bytes + conf_end, size - conf_end);
                free(p);
                free(bytes);
                bytes = grown;
                size += 16 + length;
                if (strcmp(why, "missing") == 0)
                    why = "longer";
            }
            const size_t allocations = lstm__mem_alloc_count();
            const double start = seconds_now();
            expect_load("a huge model in a tiny file", bytes, size, LSTM_E_FORMAT, why);
            const double elapsed = seconds_now() - start;
            const size_t allocated = lstm__mem_alloc_count() - allocations;
            if (allocated > 2 || elapsed > 1.0)
                fail_msg("a %zu-byte file claiming a huge model: %zu allocations, %.3f s", size,
                         allocated, elapsed);
            free(bytes);
            image_free(&img);
        }
    }

    image_free(&base);
    lstm_model_destroy(model);
}

/* Overwrites the 8-byte length of the section starting at byte at (its CRC
 * cannot be made right: the length points past the file). */
static void expect_length_refused(const unsigned char *bytes, size_t size, size_t at,
                                  uint64_t length)
{
    unsigned char *copy = duplicate(bytes, size);
    if (copy == NULL || at + 16 > size) { /* (also tells GCC the write is in bounds) */
        fail_msg("cannot corrupt the section at byte %zu of %zu", at, size);
        return;
    }
    put64(copy + at + 8, length);
    expect_load("a section longer than the file", copy, size, LSTM_E_FORMAT, "longer");
    free(copy);
}

static void test_section_rules(void **state)
{
    (void)state;
    image base, img;
    lstm_model *model = base_model(&base);
    const size_t end = image_find(&base, "END ");
    size_t size;
    unsigned char *bytes = image_build(&base, &size);

    /* a section length larger than the file, by one byte or by 2^64 - 1 */
    const size_t end_at = size - SECTION_OVERHEAD;
    expect_length_refused(bytes, size, end_at, 1);
    expect_length_refused(bytes, size, end_at, UINT64_MAX);
    expect_length_refused(bytes, size, end_at, UINT64_MAX - SECTION_OVERHEAD + 1);
    expect_length_refused(bytes, size, HEADER_BYTES, size - HEADER_BYTES - SECTION_OVERHEAD + 1);
    expect_length_refused(bytes, size, HEADER_BYTES, (uint64_t)1 << 63);
    expect_length_refused(bytes, size, HEADER_BYTES, UINT64_MAX);

    /* bytes after END: a whole valid section, a byte, END twice */
    image_copy(&img, &base);
    image_insert(&img, img.count, "ZZZZ", 0, NULL, 0);
    expect_image("a section after END", &img, LSTM_E_FORMAT, "after the END");
    image_free(&img);
    image_copy(&img, &base);
    image_insert(&img, img.count, "END ", 1, NULL, 0);
    expect_image("END twice", &img, LSTM_E_FORMAT, "after the END");
    image_free(&img);
    {
        unsigned char *longer = checked_malloc(size + 1);
        memcpy(longer, bytes, size);
        longer[size] = 0;
        expect_load("a byte after END", longer, size + 1, LSTM_E_FORMAT, "after the END");
        free(longer);
    }
    /* END before the last tensor */
    image_copy(&img, &base);
    {
        section last = img.sections[end];
        img.sections[end] = img.sections[end - 1];
        img.sections[end - 1] = last;
    }
    expect_image("END before a tensor", &img, LSTM_E_FORMAT, "after the END");
    image_free(&img);
    /* no END */
    image_copy(&img, &base);
    image_remove(&img, end);
    expect_image("no END", &img, LSTM_E_FORMAT, "ends inside");
    image_free(&img);
    /* END with a payload */
    image_copy(&img, &base);
    image_set_payload(&img, end, "x", 1);
    expect_image("END with a payload", &img, LSTM_E_FORMAT, "payload");
    image_free(&img);

    /* reserved flag bits, on known and unknown sections */
    static const uint32_t flags[] = {0x2, 0x3, 0x80000001u};
    static const char *const tags[] = {"CONF", "TENS", "END "};
    for (size_t t = 0; t < 3; t++) {
        for (size_t k = 0; k < 3; k++) {
            image_copy(&img, &base);
            img.sections[image_find(&img, tags[t])].flags = flags[k];
            expect_image("reserved flags set", &img, LSTM_E_FORMAT, "reserved flags");
            image_free(&img);
        }
    }
    image_copy(&img, &base);
    image_insert(&img, end, "ZZZZ", 0x2, NULL, 0);
    expect_image("an optional section with a reserved flag", &img, LSTM_E_FORMAT, "reserved flags");
    image_free(&img);

    /* two OPTM sections (their contents are the optimizer's business) */
    image_copy(&img, &base);
    image_insert(&img, end, "OPTM", 0, "state", 5);
    expect_image("one odd OPTM", &img, LSTM_OK, NULL); /* the model loads all the same */
    image_insert(&img, end, "OPTM", 0, "state", 5);
    expect_image("two OPTM sections", &img, LSTM_E_FORMAT, "OPTM");
    image_free(&img);

    /* not a model file: the magic changed, the header CRC recomputed */
    image_copy(&img, &base);
    memcpy(img.magic, "LSTMFILF", 8);
    expect_image("another magic", &img, LSTM_E_FORMAT, "LSTMFILE");
    image_free(&img);
    /* the header CRC wrong */
    {
        unsigned char *copy = duplicate(bytes, size);
        copy[12] ^= 1;
        expect_load("a wrong header CRC", copy, size, LSTM_E_FORMAT, "checksum");
        /* ... and with major version 2 too: the checksum is checked first */
        copy[12] ^= 1;
        copy[8] = 2;
        expect_load("major 2 with a wrong header CRC", copy, size, LSTM_E_FORMAT, "checksum");
        free(copy);
    }

    free(bytes);
    image_free(&base);
    lstm_model_destroy(model);
}

/* ---- 4. crash safety ------------------------------------------------------- */

static int hook_calls, hook_fail_at;
static size_t hook_short_limit;

/* The hook_fail_at-th write fails as a full disk would. */
static ssize_t failing_write(int fd, const void *data, size_t size)
{
    hook_calls++;
    if (hook_calls == hook_fail_at) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, data, size);
}

/* Every write writes at most hook_short_limit bytes. */
static ssize_t short_write(int fd, const void *data, size_t size)
{
    hook_calls++;
    return write(fd, data, size < hook_short_limit ? size : hook_short_limit);
}

/* Every other write is interrupted by a signal before it writes anything. */
static ssize_t interrupted_write(int fd, const void *data, size_t size)
{
    hook_calls++;
    if (hook_calls % 2 == 1) {
        errno = EINTR;
        return -1;
    }
    return write(fd, data, size);
}

/* Every write writes nothing and reports no error. */
static ssize_t zero_write(int fd, const void *data, size_t size)
{
    (void)fd;
    (void)data;
    (void)size;
    hook_calls++;
    return 0;
}

/* The file at path holds exactly the expected bytes, and loads into a
 * model equal to model. */
static void assert_file_holds(const char *path, const unsigned char *expected, size_t size,
                              const lstm_model *model)
{
    size_t file_size;
    unsigned char *file = file_read(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, expected, size);
    free(file);
    lstm_model *loaded = NULL;
    assert_int_equal(lstm_model_load(path, &loaded), LSTM_OK);
    size_t count_a, count_b;
    float *a = params_of(model, &count_a), *b = params_of(loaded, &count_b);
    assert_int_equal(count_a, count_b);
    assert_memory_equal(a, b, count_a * sizeof *a);
    free(a);
    free(b);
    lstm_model_destroy(loaded);
}

/* Every failing write, for one way of making the temporary file. */
static void crash_safety(fixture *f)
{
    char path[PATH_CAPACITY], fresh[PATH_CAPACITY];
    join(path, f->dir, "model.lstm");
    join(fresh, f->dir, "fresh.lstm");
    /* About 8 MB: several 1 MiB writes. */
    const lstm_config config = make_config(512, 512, 1, 0, 0, 0.0);
    lstm_model *a = model_new(&config, 1), *b = model_new(&config, 2);
    size_t size_a, size_b;
    unsigned char *bytes_a = model_bytes(a, NULL, &size_a);
    unsigned char *bytes_b = model_bytes(b, NULL, &size_b);
    assert_int_equal(size_a, size_b);
    assert_true(size_a > ((size_t)6 << 20));

    assert_int_equal(lstm_model_save(a, NULL, path), LSTM_OK);
    assert_file_holds(path, bytes_a, size_a, a);

    /* The k-th write fails, for every k, until a save needs fewer writes. */
    lstm__io_write_hook = failing_write;
    int failures = 0;
    for (int k = 1;; k++) {
        hook_calls = 0;
        hook_fail_at = k;
        lstm_status status = lstm_model_save(b, NULL, path);
        if (hook_calls < k) { /* the hook never failed */
            assert_int_equal(status, LSTM_OK);
            /* one write a MiB: the file was written once, not again by a fallback */
            assert_int_equal(hook_calls, (size_b + ((size_t)1 << 20) - 1) >> 20);
            break;
        }
        failures++;
        if (status != LSTM_E_IO)
            fail_msg("write %d failing: status %d (%s)", k, (int)status, lstm_strerror(status));
        assert_non_null(strstr(lstm_error_message(), strerror(ENOSPC)));
        assert_dir_holds(f->dir, "model.lstm");
        assert_file_holds(path, bytes_a, size_a, a);
        assert_true(k < 100);
    }
    assert_true(failures >= 6);
    assert_dir_holds(f->dir, "model.lstm");
    assert_file_holds(path, bytes_b, size_b, b);

    /* A failed first save to a new path leaves nothing there. */
    hook_calls = 0;
    hook_fail_at = 3;
    assert_int_equal(lstm_model_save(a, NULL, fresh), LSTM_E_IO);
    assert_dir_holds(f->dir, "model.lstm");

    /* A write that writes nothing and says nothing is a failure too. */
    lstm__io_write_hook = zero_write;
    hook_calls = 0;
    assert_int_equal(lstm_model_save(a, NULL, path), LSTM_E_IO);
    assert_true(hook_calls >= 1);
    assert_dir_holds(f->dir, "model.lstm");
    assert_file_holds(path, bytes_b, size_b, b);

    /* Short writes are continued: the save completes, byte for byte. */
    lstm__io_write_hook = short_write;
    hook_calls = 0;
    hook_short_limit = 777777; /* not a divisor of anything */
    assert_int_equal(lstm_model_save(a, NULL, path), LSTM_OK);
    assert_true((size_t)hook_calls >= size_a / hook_short_limit);
    assert_dir_holds(f->dir, "model.lstm");
    assert_file_holds(path, bytes_a, size_a, a);

    /* Interrupted writes are retried. */
    lstm__io_write_hook = interrupted_write;
    hook_calls = 0;
    assert_int_equal(lstm_model_save(b, NULL, path), LSTM_OK);
    assert_true(hook_calls >= 2);
    assert_dir_holds(f->dir, "model.lstm");
    assert_file_holds(path, bytes_b, size_b, b);

    lstm__io_write_hook = write;
    free(bytes_a);
    free(bytes_b);
    lstm_model_destroy(a);
    lstm_model_destroy(b);
}

/* ...for every way of making the temporary file. */
static void test_crash_safety(void **state)
{
    const io_temporary routes[] = {IO_TEMPORARY_ANY, IO_TEMPORARY_PROC_LINK, IO_TEMPORARY_NAMED};
    for (size_t r = 0; r < sizeof routes / sizeof *routes; r++) {
        lstm__io_temporary_hook = routes[r];
        crash_safety(*state);
    }
    lstm__io_temporary_hook = IO_TEMPORARY_ANY;
}

/* ---- 5. an optimizer's state in the file ----------------------------------- */

enum { TRAIN_STEPS_BEFORE = 4, TRAIN_STEPS_AFTER = 5, TRAIN_T = 5, TRAIN_B = 2 };

/* steps of Adam on a fixed task: y should match a fixed target, with the
 * loss 1/2 sum (y - target)^2, so dL/dy = y - target. */
static void train(lstm_model *model, lstm_optim *optim, int steps)
{
    const lstm_config c = config_of(model);
    const size_t D = (c.flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    const size_t R = c.proj_size != 0 ? c.proj_size : c.hidden_size;
    const size_t nx = TRAIN_T * TRAIN_B * c.input_size, ny = TRAIN_T * TRAIN_B * D * R;
    float *x = checked_malloc(nx * sizeof *x), *y = checked_malloc(ny * sizeof *y);
    float *dy = checked_malloc(ny * sizeof *dy);
    for (size_t k = 0; k < nx; k++)
        x[k] = (float)((k * 5) % 9) * 0.25f - 1.0f;
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    for (int step = 0; step < steps; step++) {
        assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
        assert_int_equal(lstm_model_forward_train(model, workspace, TRAIN_T, TRAIN_B, NULL, x, NULL,
                                                  NULL, y, NULL, NULL),
                         LSTM_OK);
        for (size_t k = 0; k < ny; k++)
            dy[k] = y[k] - ((float)(k % 4) * 0.3f - 0.45f);
        assert_int_equal(lstm_model_backward(model, workspace, dy, NULL, NULL, NULL, NULL, NULL),
                         LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
    lstm_workspace_destroy(workspace);
    free(x);
    free(y);
    free(dy);
}

static lstm_optim *optim_new(lstm_optim_kind kind, uint32_t flags, double lr, lstm_model *model)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, kind), LSTM_OK);
    options.flags = flags;
    options.lr = lr;
    if (kind == LSTM_OPTIM_SGD)
        options.momentum = 0.9;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    if (model != NULL)
        assert_int_equal(lstm_optim_add_model(optim, model), LSTM_OK);
    return optim;
}

/* A load that must fail with want and leave the optimizer as it was. */
static void expect_optim_refused(const char *what, lstm_optim *optim, const void *bytes,
                                 size_t size, lstm_status want)
{
    size_t before_bytes, after_bytes;
    unsigned char *before = optim_state(optim, &before_bytes);
    unsigned char *copy = duplicate(bytes, size);
    lstm_status status = lstm_optim_load_buffer(optim, copy, size);
    free(copy);
    if (status != want)
        fail_msg("%s: status %d (%s), expected %d; message: %s", what, (int)status,
                 lstm_strerror(status), (int)want, lstm_error_message());
    unsigned char *after = optim_state(optim, &after_bytes);
    assert_int_equal(after_bytes, before_bytes);
    assert_memory_equal(after, before, before_bytes);
    free(before);
    free(after);
}

static void test_optimizer_state(void **state)
{
    fixture *f = *state;
    char path[PATH_CAPACITY];
    join(path, f->dir, "checkpoint.lstm");
    const lstm_config config = make_config(3, 5, 2, 2, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.0);
    const double lr = 0.01;

    /* The uninterrupted run, saved part way. */
    lstm_model *model = model_new(&config, 21);
    lstm_optim *optim = optim_new(LSTM_OPTIM_ADAM, 0, lr, model);
    train(model, optim, TRAIN_STEPS_BEFORE);
    assert_int_equal(lstm_model_save(model, optim, path), LSTM_OK);
    size_t size;
    unsigned char *checkpoint = model_bytes(model, optim, &size);
    check_against_spec(checkpoint, size, model, optim);
    size_t saved_state_bytes;
    unsigned char *saved_state = optim_state(optim, &saved_state_bytes);
    train(model, optim, TRAIN_STEPS_AFTER);
    size_t count;
    float *reference = params_of(model, &count);
    size_t reference_state_bytes;
    unsigned char *reference_state = optim_state(optim, &reference_state_bytes);

    /* Resumed from the file, and from the buffer. */
    for (int from_file = 0; from_file < 2; from_file++) {
        lstm_model *loaded = NULL;
        if (from_file)
            assert_int_equal(lstm_model_load(path, &loaded), LSTM_OK);
        else
            assert_int_equal(lstm_model_load_buffer(checkpoint, size, &loaded), LSTM_OK);
        lstm_optim *resumed = optim_new(LSTM_OPTIM_ADAM, 0, lr, loaded);
        if (from_file)
            assert_int_equal(lstm_optim_load_file(resumed, path), LSTM_OK);
        else
            assert_int_equal(lstm_optim_load_buffer(resumed, checkpoint, size), LSTM_OK);
        size_t state_bytes;
        unsigned char *restored = optim_state(resumed, &state_bytes);
        assert_int_equal(state_bytes, saved_state_bytes);
        assert_memory_equal(restored, saved_state, state_bytes);
        free(restored);
        uint64_t steps = 0;
        assert_int_equal(lstm_optim_step_count(resumed, &steps), LSTM_OK);
        assert_int_equal(steps, TRAIN_STEPS_BEFORE);

        train(loaded, resumed, TRAIN_STEPS_AFTER);
        size_t resumed_count;
        float *params = params_of(loaded, &resumed_count);
        assert_int_equal(resumed_count, count);
        assert_memory_equal(params, reference, count * sizeof *params);
        restored = optim_state(resumed, &state_bytes);
        assert_memory_equal(restored, reference_state, reference_state_bytes);
        free(restored);
        free(params);
        lstm_optim_destroy(resumed);
        lstm_model_destroy(loaded);
    }

    /* The OPTM payload as it lies in the file is a state for
     * lstm_optim_load_state(), and the state saved again is that payload. */
    {
        image img;
        image_parse(&img, checkpoint, size);
        const section *optm = &img.sections[image_find(&img, "OPTM")];
        assert_int_equal(optm->length, saved_state_bytes);
        lstm_model *loaded = NULL;
        assert_int_equal(lstm_model_load_buffer(checkpoint, size, &loaded), LSTM_OK);
        lstm_optim *resumed = optim_new(LSTM_OPTIM_ADAM, 0, lr, loaded);
        assert_int_equal(lstm_optim_load_state(resumed, optm->payload, optm->length), LSTM_OK);
        size_t state_bytes;
        unsigned char *restored = optim_state(resumed, &state_bytes);
        assert_int_equal(state_bytes, optm->length);
        assert_memory_equal(restored, optm->payload, state_bytes);
        free(restored);
        lstm_optim_destroy(resumed);
        lstm_model_destroy(loaded);
        image_free(&img);
    }

    /* A file without OPTM: LSTM_E_FORMAT, the optimizer unchanged. */
    {
        size_t plain_size;
        unsigned char *plain = model_bytes(model, NULL, &plain_size);
        expect_optim_refused("a file without OPTM", optim, plain, plain_size, LSTM_E_FORMAT);
        char plain_path[PATH_CAPACITY];
        join(plain_path, f->dir, "plain.lstm");
        assert_int_equal(lstm_model_save(model, NULL, plain_path), LSTM_OK);
        assert_int_equal(lstm_optim_load_file(optim, plain_path), LSTM_E_FORMAT);
        free(plain);
    }

    /* Optimizers the state does not fit: another kind or flags (LSTM_E_ARG),
     * other sizes (LSTM_E_SHAPE). */
    {
        lstm_optim *sgd = optim_new(LSTM_OPTIM_SGD, 0, lr, model);
        expect_optim_refused("an SGD optimizer", sgd, checkpoint, size, LSTM_E_ARG);
        lstm_optim_destroy(sgd);
        lstm_optim *adamw = optim_new(LSTM_OPTIM_ADAMW, 0, lr, model);
        expect_optim_refused("an AdamW optimizer", adamw, checkpoint, size, LSTM_E_ARG);
        lstm_optim_destroy(adamw);
        lstm_optim *amsgrad = optim_new(LSTM_OPTIM_ADAM, LSTM_OPTIM_AMSGRAD, lr, model);
        expect_optim_refused("Adam with AMSGrad", amsgrad, checkpoint, size, LSTM_E_ARG);
        lstm_optim_destroy(amsgrad);
        const lstm_config other = make_config(3, 4, 1, 0, 0, 0.0);
        lstm_model *small = model_new(&other, 5);
        lstm_optim *mismatched = optim_new(LSTM_OPTIM_ADAM, 0, lr, small);
        expect_optim_refused("an optimizer of other sizes", mismatched, checkpoint, size,
                             LSTM_E_SHAPE);
        lstm_optim_destroy(mismatched);
        lstm_model_destroy(small);
    }

    /* OPTM payloads that are not an optimizer's state. */
    {
        image img;
        image_parse(&img, checkpoint, size);
        const size_t optm = image_find(&img, "OPTM");
        const section original = img.sections[optm];
        image changed;
        image_copy(&changed, &img);
        image_set_payload(&changed, optm, original.payload, 36);
        size_t bad_size;
        unsigned char *bad = image_build(&changed, &bad_size);
        expect_optim_refused("an OPTM of 36 bytes", optim, bad, bad_size, LSTM_E_FORMAT);
        free(bad);
        image_set_payload(&changed, optm, original.payload, original.length - 2);
        bad = image_build(&changed, &bad_size);
        expect_optim_refused("an OPTM of a length not a multiple of 4", optim, bad, bad_size,
                             LSTM_E_FORMAT);
        free(bad);
        image_free(&changed);
        image_copy(&changed, &img);
        put32(changed.sections[optm].payload, 0x5054504Cu); /* the magic byte-swapped */
        bad = image_build(&changed, &bad_size);
        expect_optim_refused("an OPTM with another magic", optim, bad, bad_size, LSTM_E_ARG);
        free(bad);
        image_free(&changed);
        image_copy(&changed, &img);
        putf32(changed.sections[optm].payload + changed.sections[optm].length - 4, NAN);
        bad = image_build(&changed, &bad_size);
        expect_optim_refused("an OPTM holding NaN", optim, bad, bad_size, LSTM_E_NONFINITE);
        free(bad);
        image_free(&changed);
        image_free(&img);
    }

    free(reference_state);
    free(saved_state);
    free(reference);
    free(checkpoint);
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
}

/* ---- 6. the file of the first version, kept forever ------------------------- */

static lstm_config sample_config(void)
{
    return make_config(3, 4, 2, 2, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.25);
}

static void test_sample_v1(void **state)
{
    (void)state;
    const lstm_config config = sample_config();
    lstm_model *fresh = model_new(&config, SAMPLE_SEED);
    if (getenv(SAMPLE_REGENERATE_ENV) != NULL) {
        assert_int_equal(lstm_model_save(fresh, NULL, SAMPLE_PATH), LSTM_OK);
        size_t count, size;
        float *params = params_of(fresh, &count);
        unsigned char *bytes = file_read(SAMPLE_PATH, &size);
        printf("wrote %s: %zu bytes, file CRC-32C 0x%08X, %zu parameters, parameter "
               "CRC-32C 0x%08X\n",
               SAMPLE_PATH, size, (unsigned)lstm__crc32c(0, bytes, size), count,
               (unsigned)floats_crc(params, count));
        free(bytes);
        free(params);
    }

    /* The file itself is the one committed. */
    size_t size;
    unsigned char *bytes = file_read(SAMPLE_PATH, &size);
    assert_int_equal(size, SAMPLE_FILE_SIZE);
    assert_int_equal(lstm__crc32c(0, bytes, size), SAMPLE_FILE_CRC);
    assert_memory_equal(bytes, "LSTMFILE\1\0\0\0", 12); /* version 1.0 */
    free(bytes);

    lstm_model *model = NULL;
    assert_int_equal(lstm_model_load(SAMPLE_PATH, &model), LSTM_OK);
    const lstm_config loaded = config_of(model);
    assert_int_equal(loaded.input_size, 3);
    assert_int_equal(loaded.hidden_size, 4);
    assert_int_equal(loaded.num_layers, 2);
    assert_int_equal(loaded.proj_size, 2);
    assert_int_equal(loaded.flags, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE);
    assert_true(loaded.dropout == 0.25);
    assert_config_equal(&loaded, &config);

    size_t count;
    float *params = params_of(model, &count);
    assert_int_equal(count, SAMPLE_PARAM_COUNT);
    assert_int_equal(floats_crc(params, count), SAMPLE_PARAMS_CRC);
    size_t fresh_count;
    float *expected = params_of(fresh, &fresh_count);
    assert_int_equal(fresh_count, count);
    assert_memory_equal(params, expected, count * sizeof *params);

    /* It runs, and runs as the model it was written from. */
    assert_models_equal(model, fresh);

    free(expected);
    free(params);
    lstm_model_destroy(model);
    lstm_model_destroy(fresh);
}

/* ---- 7. bad arguments ------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    char path[PATH_CAPACITY], missing_dir[PATH_CAPACITY], missing[PATH_CAPACITY];
    char empty[PATH_CAPACITY], text[PATH_CAPACITY], subdir[PATH_CAPACITY];
    join(path, f->dir, "model.lstm");
    join(missing_dir, f->dir, "no/such/dir/model.lstm");
    join(missing, f->dir, "missing.lstm");
    join(empty, f->dir, "empty.lstm");
    join(text, f->dir, "text.lstm");
    join(subdir, f->dir, "subdir");
    const lstm_config config = make_config(2, 3, 1, 0, 0, 0.0);
    lstm_model *model = model_new(&config, 5);
    size_t size;
    unsigned char *bytes = model_bytes(model, NULL, &size);
    lstm_optim *optim = optim_new(LSTM_OPTIM_ADAM, 0, 0.01, model);

    /* lstm_model_save_buffer */
    size_t got = 12345;
    unsigned char *buffer = checked_malloc(size + 8);
    assert_int_equal(lstm_model_save_buffer(NULL, NULL, buffer, size, &got), LSTM_E_NULL);
    assert_int_equal(got, 12345);
    assert_int_equal(lstm_model_save_buffer(model, NULL, buffer, size, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_model_save_buffer(model, NULL, NULL, 0, NULL), LSTM_E_NULL);
    const size_t capacities[] = {0, 1, HEADER_BYTES, size - 1};
    for (size_t k = 0; k < sizeof capacities / sizeof capacities[0]; k++) {
        memset(buffer, 0xA5, size + 8);
        got = 0;
        assert_int_equal(lstm_model_save_buffer(model, NULL, buffer, capacities[k], &got),
                         LSTM_E_SHAPE);
        assert_int_equal(got, size);
        for (size_t b = 0; b < size + 8; b++)
            assert_int_equal(buffer[b], 0xA5);
    }
    /* A capacity too small for the optimizer's state too. */
    size_t with_optim = 0;
    assert_int_equal(lstm_model_save_buffer(model, optim, NULL, 0, &with_optim), LSTM_OK);
    assert_true(with_optim > size);
    got = 0;
    memset(buffer, 0xA5, size + 8);
    assert_int_equal(lstm_model_save_buffer(model, optim, buffer, size + 8, &got), LSTM_E_SHAPE);
    assert_int_equal(got, with_optim);
    for (size_t b = 0; b < size + 8; b++)
        assert_int_equal(buffer[b], 0xA5);
    /* A larger capacity: the file's bytes, nothing past them. */
    got = 0;
    assert_int_equal(lstm_model_save_buffer(model, NULL, buffer, size + 8, &got), LSTM_OK);
    assert_int_equal(got, size);
    assert_memory_equal(buffer, bytes, size);
    for (size_t b = size; b < size + 8; b++)
        assert_int_equal(buffer[b], 0xA5);
    free(buffer);

    /* lstm_model_save */
    assert_int_equal(lstm_model_save(NULL, NULL, path), LSTM_E_NULL);
    assert_int_equal(lstm_model_save(model, NULL, NULL), LSTM_E_NULL);
    assert_dir_holds(f->dir, NULL);
    assert_int_equal(lstm_model_save(model, NULL, missing_dir), LSTM_E_IO);
    assert_dir_holds(f->dir, NULL);
    /* A path that is a directory: refused, and no temporary file beside it. */
    assert_int_equal(mkdir(subdir, 0700), 0);
    assert_int_equal(lstm_model_save(model, NULL, subdir), LSTM_E_IO);
    assert_dir_holds(f->dir, "subdir");
    assert_int_equal(rmdir(subdir), 0);

    /* lstm_model_load_buffer */
    lstm_model *out = sentinel();
    assert_int_equal(lstm_model_load_buffer(NULL, size, &out), LSTM_E_NULL);
    assert_ptr_equal(out, sentinel());
    assert_int_equal(lstm_model_load_buffer(bytes, size, NULL), LSTM_E_NULL);
    expect_load("an empty buffer", bytes, 0, LSTM_E_FORMAT, NULL);
    expect_load("text", (const unsigned char *)"hello, world\n", 13, LSTM_E_FORMAT, "LSTMFILE");

    /* lstm_model_load */
    file_write(empty, "", 0);
    file_write(text, "hello, world\n", 13);
    assert_int_equal(mkdir(subdir, 0700), 0);
    assert_int_equal(lstm_model_load(NULL, &out), LSTM_E_NULL);
    assert_int_equal(lstm_model_load(path, NULL), LSTM_E_NULL);
    static const struct {
        const char *name;
        lstm_status want;
    } loads[] = {{"missing", LSTM_E_IO},
                 {"missing_dir", LSTM_E_IO},
                 {"subdir", LSTM_E_IO},
                 {"empty", LSTM_E_FORMAT},
                 {"text", LSTM_E_FORMAT}};
    const char *const load_paths[] = {missing, missing_dir, subdir, empty, text};
    for (size_t k = 0; k < 5; k++) {
        out = sentinel();
        lstm_status status = lstm_model_load(load_paths[k], &out);
        if (status != loads[k].want)
            fail_msg("loading %s: status %d (%s), expected %d", loads[k].name, (int)status,
                     lstm_strerror(status), (int)loads[k].want);
        assert_ptr_equal(out, sentinel());
    }

    /* lstm_optim_load_buffer, lstm_optim_load_file */
    size_t state_bytes;
    unsigned char *before = optim_state(optim, &state_bytes);
    assert_int_equal(lstm_optim_load_buffer(NULL, bytes, size), LSTM_E_NULL);
    assert_int_equal(lstm_optim_load_buffer(optim, NULL, size), LSTM_E_NULL);
    assert_int_equal(lstm_optim_load_buffer(optim, bytes, 0), LSTM_E_FORMAT);
    assert_int_equal(lstm_optim_load_file(NULL, path), LSTM_E_NULL);
    assert_int_equal(lstm_optim_load_file(optim, NULL), LSTM_E_NULL);
    for (size_t k = 0; k < 5; k++) {
        lstm_status status = lstm_optim_load_file(optim, load_paths[k]);
        if (status != loads[k].want)
            fail_msg("loading an optimizer from %s: status %d (%s), expected %d", loads[k].name,
                     (int)status, lstm_strerror(status), (int)loads[k].want);
    }
    unsigned char *after = optim_state(optim, &state_bytes);
    assert_memory_equal(after, before, state_bytes);
    free(after);
    free(before);

    lstm_optim_destroy(optim);
    free(bytes);
    lstm_model_destroy(model);
}

/*
 * Fills the stack below its caller with a pattern, so that a function the
 * caller calls next and that reads a local it never set sees garbage, as it
 * would in a real program, rather than a lucky zero.
 */
static void *(*volatile poison_fill)(void *, int, size_t) = memset; /* never elided */

static void poison_stack(void)
{
    unsigned char junk[16384];
    poison_fill(junk, 0xA5, sizeof junk);
}

/* A path that cannot be opened: LSTM_E_IO, and nothing freed that was never
 * allocated (a free of a stale pointer aborts here, or shows under ASan or
 * valgrind). */
static void test_unopenable_path(void **state)
{
    fixture *f = *state;
    char missing[PATH_CAPACITY], missing_dir[PATH_CAPACITY];
    join(missing, f->dir, "missing.lstm");
    join(missing_dir, f->dir, "no/such/dir/model.lstm");
    const lstm_config config = make_config(2, 3, 1, 0, 0, 0.0);
    lstm_model *model = model_new(&config, 5);
    lstm_optim *optim = optim_new(LSTM_OPTIM_ADAM, 0, 0.01, model);
    const char *const paths[] = {missing, missing_dir};
    for (size_t k = 0; k < 2; k++) {
        lstm_model *out = sentinel();
        poison_stack();
        assert_int_equal(lstm_model_load(paths[k], &out), LSTM_E_IO);
        assert_ptr_equal(out, sentinel());
        poison_stack();
        assert_int_equal(lstm_optim_load_file(optim, paths[k]), LSTM_E_IO);
    }
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
}

/* ---- 6. paths ------------------------------------------------------------------ */

/*
 * Loads path with lstm_model_load() and lstm_optim_load_file() in a child
 * process, which a load that blocks cannot hang: 16 * the first status + the
 * second, or -1 when the child had not finished after 10 s.
 */
static int load_in_child(const char *path)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        lstm_model *loaded = NULL, *model = NULL;
        lstm_optim *optim = NULL;
        const lstm_config config = make_config(2, 3, 1, 0, 0, 0.0);
        lstm_optim_options options;
        lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM);
        if (lstm_model_create(&config, &model) != LSTM_OK ||
            lstm_optim_create(&options, &optim) != LSTM_OK ||
            lstm_optim_add_model(optim, model) != LSTM_OK)
            _exit(255);
        int first = (int)lstm_model_load(path, &loaded);
        int second = (int)lstm_optim_load_file(optim, path);
        _exit(16 * first + second);
    }
    for (int waited = 0; waited < 1000; waited++) {
        int status;
        if (waitpid(child, &status, WNOHANG) == child)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return -1;
}

/* A path that is not a regular file is LSTM_E_IO at once: a FIFO without a
 * writer must not block the load, a directory or a device must not be read. */
static void test_load_not_regular(void **state)
{
    fixture *f = *state;
    char fifo[PATH_CAPACITY];
    join(fifo, f->dir, "fifo.lstm");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *const paths[] = {fifo, f->dir, "/dev/null"};
    for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
        int statuses = load_in_child(paths[k]);
        if (statuses != 16 * LSTM_E_IO + LSTM_E_IO)
            fail_msg("loading %s: %d (-1: blocked); want LSTM_E_IO twice", paths[k], statuses);
    }
    lstm_model *out = sentinel();
    assert_int_equal(lstm_model_load(f->dir, &out), LSTM_E_IO);
    assert_non_null(strstr(lstm_error_message(), "not a regular file"));
    assert_ptr_equal(out, sentinel());
}

/* out: dir/ then n bytes of c. */
static void long_name(char *out, const char *dir, char c, size_t n)
{
    char name[256];
    assert_true(n < sizeof name);
    memset(name, c, n);
    name[n] = '\0';
    join(out, dir, name);
}

/* A name of NAME_MAX bytes can be saved to; under a long path, every
 * failure's message keeps the system's reason, which comes before the path. */
static void test_long_paths(void **state)
{
    fixture *f = *state;
    char longest[PATH_CAPACITY], deep[PATH_CAPACITY], deep_file[PATH_CAPACITY];
    const long name_max = pathconf(f->dir, _PC_NAME_MAX);
    const size_t n = name_max > 0 && name_max < 256 ? (size_t)name_max : 255;
    long_name(longest, f->dir, 'm', n);
    const lstm_config config = make_config(3, 4, 1, 0, 0, 0.0);
    lstm_model *a = model_new(&config, 1), *b = model_new(&config, 2);
    size_t size_a, size_b;
    unsigned char *bytes_a = model_bytes(a, NULL, &size_a);
    unsigned char *bytes_b = model_bytes(b, NULL, &size_b);
    assert_int_equal(lstm_model_save(a, NULL, longest), LSTM_OK);
    assert_file_holds(longest, bytes_a, size_a, a);
    assert_int_equal(lstm_model_save(b, NULL, longest), LSTM_OK);
    assert_file_holds(longest, bytes_b, size_b, b);
    assert_dir_holds(f->dir, longest + strlen(f->dir) + 1);

    /* A path of over 500 bytes whose directory is missing... */
    long_name(deep, f->dir, 'd', 250);
    long_name(deep_file, deep, 'n', 250);
    assert_int_equal(lstm_model_save(a, NULL, deep_file), LSTM_E_IO);
    assert_non_null(strstr(lstm_error_message(), strerror(ENOENT)));
    lstm_model *out = sentinel();
    assert_int_equal(lstm_model_load(deep_file, &out), LSTM_E_IO);
    assert_non_null(strstr(lstm_error_message(), strerror(ENOENT)));
    /* ...and one whose disk is full. */
    assert_int_equal(mkdir(deep, 0700), 0);
    assert_int_equal(lstm_model_save(a, NULL, deep_file), LSTM_OK);
    lstm__io_write_hook = failing_write;
    hook_calls = 0;
    hook_fail_at = 1;
    assert_int_equal(lstm_model_save(b, NULL, deep_file), LSTM_E_IO);
    lstm__io_write_hook = write;
    assert_non_null(strstr(lstm_error_message(), strerror(ENOSPC)));
    assert_file_holds(deep_file, bytes_a, size_a, a);
    assert_dir_holds(deep, deep_file + strlen(deep) + 1);
    free(bytes_a);
    free(bytes_b);
    lstm_model_destroy(a);
    lstm_model_destroy(b);
}

static void assert_is_link(const char *path)
{
    struct stat info;
    assert_int_equal(lstat(path, &info), 0);
    assert_true(S_ISLNK(info.st_mode));
}

/* Saving to a symbolic link replaces the file it names, and the link stays
 * a link; but not a link another user planted in a sticky world-writable
 * directory. */
static void test_save_through_links(void **state)
{
    fixture *f = *state;
    char real[PATH_CAPACITY], link[PATH_CAPACITY], chain[PATH_CAPACITY];
    char sub[PATH_CAPACITY], inner[PATH_CAPACITY], dangling[PATH_CAPACITY];
    char created[PATH_CAPACITY], loop[PATH_CAPACITY];
    join(real, f->dir, "real.lstm");
    join(link, f->dir, "link.lstm");
    join(chain, f->dir, "chain.lstm");
    join(sub, f->dir, "sub");
    join(inner, sub, "inner.lstm");
    join(dangling, f->dir, "dangling.lstm");
    join(created, f->dir, "created.lstm");
    join(loop, f->dir, "loop.lstm");
    const lstm_config config = make_config(3, 4, 1, 0, 0, 0.0);
    lstm_model *models[3];
    unsigned char *bytes[3];
    size_t sizes[3];
    for (int k = 0; k < 3; k++) {
        models[k] = model_new(&config, (uint64_t)k + 1);
        bytes[k] = model_bytes(models[k], NULL, &sizes[k]);
    }
    assert_int_equal(lstm_model_save(models[0], NULL, real), LSTM_OK);
    assert_int_equal(symlink("real.lstm", link), 0);
    assert_int_equal(symlink("link.lstm", chain), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(symlink("../real.lstm", inner), 0); /* relative to its own directory */
    assert_int_equal(symlink("created.lstm", dangling), 0);
    assert_int_equal(symlink("loop.lstm", loop), 0);

    assert_int_equal(lstm_model_save(models[1], NULL, link), LSTM_OK);
    assert_is_link(link);
    assert_file_holds(real, bytes[1], sizes[1], models[1]);
    assert_int_equal(lstm_model_save(models[2], NULL, chain), LSTM_OK);
    assert_is_link(chain);
    assert_is_link(link);
    assert_file_holds(real, bytes[2], sizes[2], models[2]);
    assert_int_equal(lstm_model_save(models[0], NULL, inner), LSTM_OK);
    assert_is_link(inner);
    assert_file_holds(real, bytes[0], sizes[0], models[0]);
    assert_int_equal(lstm_model_save(models[1], NULL, dangling), LSTM_OK);
    assert_is_link(dangling);
    assert_file_holds(created, bytes[1], sizes[1], models[1]);
    assert_int_equal(lstm_model_save(models[1], NULL, loop), LSTM_E_IO);
    assert_non_null(strstr(lstm_error_message(), strerror(ELOOP)));
    assert_is_link(loop);

    /* Another user's link in a sticky world-writable directory: only root
     * can make one. */
    if (geteuid() == 0) {
        char shared[PATH_CAPACITY], planted[PATH_CAPACITY], own[PATH_CAPACITY];
        join(shared, f->dir, "shared");
        join(planted, shared, "planted.lstm");
        join(own, shared, "own.lstm");
        assert_int_equal(mkdir(shared, 0700), 0);
        assert_int_equal(chmod(shared, 01777), 0);
        assert_int_equal(symlink("../real.lstm", planted), 0);
        assert_int_equal(lchown(planted, 65534, 65534), 0);
        assert_int_equal(lstm_model_save(models[2], NULL, planted), LSTM_E_IO);
        assert_non_null(strstr(lstm_error_message(), "symbolic link of another user"));
        assert_is_link(planted);
        assert_file_holds(real, bytes[0], sizes[0], models[0]);
        assert_int_equal(symlink("../real.lstm", own), 0); /* the caller's own: followed */
        assert_int_equal(lstm_model_save(models[2], NULL, own), LSTM_OK);
        assert_file_holds(real, bytes[2], sizes[2], models[2]);
    }
    for (int k = 0; k < 3; k++) {
        free(bytes[k]);
        lstm_model_destroy(models[k]);
    }
}

static mode_t mode_of(const char *path)
{
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    return info.st_mode & 07777;
}

/* The saved file keeps the permission bits of the one it replaces, never
 * its set-id bits; a new one gets 0666 less the umask; a path that is not
 * a regular file is refused and left as it was. */
static void test_save_modes(void **state)
{
    fixture *f = *state;
    char path[PATH_CAPACITY], fresh[PATH_CAPACITY], fifo[PATH_CAPACITY];
    join(path, f->dir, "model.lstm");
    join(fresh, f->dir, "fresh.lstm");
    join(fifo, f->dir, "fifo.lstm");
    const lstm_config config = make_config(3, 4, 1, 0, 0, 0.0);
    lstm_model *model = model_new(&config, 1);
    assert_int_equal(lstm_model_save(model, NULL, path), LSTM_OK);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(lstm_model_save(model, NULL, path), LSTM_OK);
    assert_int_equal(mode_of(path), 0640);
    if (chmod(path, 06755) == 0 && mode_of(path) == 06755) {
        assert_int_equal(lstm_model_save(model, NULL, path), LSTM_OK);
        assert_int_equal(mode_of(path), 0755);
    }
    mode_t old_mask = umask(027);
    assert_int_equal(lstm_model_save(model, NULL, fresh), LSTM_OK);
    umask(old_mask);
    assert_int_equal(mode_of(fresh), 0640);

    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(lstm_model_save(model, NULL, fifo), LSTM_E_IO);
    assert_non_null(strstr(lstm_error_message(), "not a regular file"));
    struct stat info;
    assert_int_equal(lstat(fifo, &info), 0);
    assert_true(S_ISFIFO(info.st_mode));
    lstm_model_destroy(model);
}

/* The process dies, as under SIGKILL, at its first write. */
static ssize_t killing_write(int fd, const void *data, size_t size)
{
    (void)fd;
    (void)data;
    (void)size;
    raise(SIGKILL);
    return -1;
}

/* Whether the file system of dir has unnamed temporary files (O_TMPFILE). */
static bool has_unnamed_files(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
#else
    (void)dir;
    return false;
#endif
}

/* A process killed while it saves leaves the previous file intact, and,
 * where the file system has unnamed temporary files, nothing else. */
/* Removes the named temporary files a killed save left in dir (there must
 * be `expected`) and checks that nothing else but `keep` is there. */
static void remove_leftovers(const char *dir, const char *keep, int expected)
{
    DIR *listing = opendir(dir);
    assert_non_null(listing);
    int found = 0;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 ||
            strcmp(entry->d_name, keep) == 0)
            continue;
        if (strncmp(entry->d_name, ".lstm-tmp-", 10) != 0 || strlen(entry->d_name) != 16)
            fail_msg("%s holds %s, which no save should leave", dir, entry->d_name);
        char path[PATH_CAPACITY];
        join(path, dir, entry->d_name);
        assert_int_equal(unlink(path), 0);
        found++;
    }
    closedir(listing);
    assert_int_equal(found, expected);
}

/* A process killed while it saves leaves the previous file intact; with an
 * unnamed temporary file (linked either way) nothing else, and with a named
 * one (file systems without O_TMPFILE) the .lstm-tmp-XXXXXX files that
 * lstm/io.h names. */
static void test_killed_save(void **state)
{
    fixture *f = *state;
    char path[PATH_CAPACITY];
    join(path, f->dir, "model.lstm");
    const lstm_config config = make_config(3, 4, 1, 0, 0, 0.0);
    lstm_model *a = model_new(&config, 1), *b = model_new(&config, 2);
    size_t size;
    unsigned char *bytes = model_bytes(a, NULL, &size);
    assert_int_equal(lstm_model_save(a, NULL, path), LSTM_OK);
    const io_temporary routes[] = {IO_TEMPORARY_ANY, IO_TEMPORARY_PROC_LINK, IO_TEMPORARY_NAMED};
    for (size_t r = 0; r < sizeof routes / sizeof *routes; r++) {
        enum { KILLS = 3 };
        for (int round = 0; round < KILLS; round++) {
            pid_t child = fork();
            assert_true(child >= 0);
            if (child == 0) {
                lstm__io_temporary_hook = routes[r];
                lstm__io_write_hook = killing_write;
                lstm_model_save(b, NULL, path);
                _exit(0);
            }
            int status;
            assert_int_equal(waitpid(child, &status, 0), child);
            assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }
        assert_file_holds(path, bytes, size, a);
        const bool named = routes[r] == IO_TEMPORARY_NAMED || !has_unnamed_files(f->dir);
        remove_leftovers(f->dir, "model.lstm", named ? KILLS : 0);
    }
    free(bytes);
    lstm_model_destroy(a);
    lstm_model_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crc32c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_every_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_corrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quantized_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quantized_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compatibility_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tensor_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_section_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optimizer_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_through_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_save, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
