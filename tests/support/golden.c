/* The one reader of the golden files: three formats (golden.h) on one set
 * of helpers for what they share. */
#include "golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(double) == 8, "golden files store IEEE-754 binary64");
_Static_assert(sizeof(float) == 4, "LSTMCVTX files store IEEE-754 binary32");

#define READ_LIMIT ((size_t)1 << 30) /* refuse files above 1 GiB */
#define CRC_BYTES 4u
#define CRC32_IEEE 0xEDB88320u /* zlib.crc32: LSTMNETG, LSTMTBPT */
#define CRC32C 0x82F63B78u     /* the model files' CRC: LSTMCVTX */

/* ------------------------------------------------------------------------ */
/* Shared */

const char *golden_strerror(golden_status status)
{
    switch (status) {
    case GOLDEN_OK: return "ok";
    case GOLDEN_E_ARG: return "NULL argument";
    case GOLDEN_E_IO: return "cannot open or read the file";
    case GOLDEN_E_NOMEM: return "out of memory";
    case GOLDEN_E_FORMAT: return "bad magic, version, flags, sizes, lengths or values";
    case GOLDEN_E_SIZE: return "file length disagrees with its header";
    case GOLDEN_E_CHECKSUM: return "CRC mismatch";
    }
    return "unknown status";
}

golden_status golden_read_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *file;
    unsigned char *buf = NULL;
    size_t used = 0, cap = 0;
    golden_status status = GOLDEN_OK;

    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (path == NULL || data == NULL || size == NULL)
        return GOLDEN_E_ARG;
    file = fopen(path, "rb");
    if (file == NULL)
        return GOLDEN_E_IO;
    for (;;) {
        if (used == cap) {
            if (cap >= READ_LIMIT) {
                status = GOLDEN_E_SIZE;
                break;
            }
            cap = cap == 0 ? 65536 : 2 * cap;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL) {
                status = GOLDEN_E_NOMEM;
                break;
            }
            buf = grown;
        }
        size_t got = fread(buf + used, 1, cap - used, file);
        used += got;
        if (got == 0) {
            if (ferror(file))
                status = GOLDEN_E_IO;
            break;
        }
    }
    fclose(file);
    if (status != GOLDEN_OK) {
        free(buf);
        return status;
    }
    *data = buf;
    *size = used;
    return GOLDEN_OK;
}

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float read_f32(const unsigned char *p)
{
    uint32_t bits = read_u32(p);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static double read_f64(const unsigned char *p)
{
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--)
        bits = (bits << 8) | p[k];
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* A reflected CRC-32 with polynomial @p poly, bit by bit: CRC32_IEEE gives
 * zlib.crc32's value, CRC32C the Castagnoli CRC of the model files. */
static uint32_t crc32_reflected(uint32_t poly, const unsigned char *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t k = 0; k < size; k++) {
        crc ^= data[k];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (poly & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* The trailing CRC of a file image: over every byte before it. */
static int crc_matches(uint32_t poly, const unsigned char *data, size_t size)
{
    return crc32_reflected(poly, data, size - CRC_BYTES) == read_u32(data + size - CRC_BYTES);
}

/* a * b and a + b; *ok becomes 0 on overflow (and stays 0). */
static size_t mul_size(size_t a, size_t b, int *ok)
{
    if (a != 0 && b > SIZE_MAX / a) {
        *ok = 0;
        return 0;
    }
    return a * b;
}

static size_t add_size(size_t a, size_t b, int *ok)
{
    if (b > SIZE_MAX - a) {
        *ok = 0;
        return 0;
    }
    return a + b;
}

/* What every parser does first: zero its @p out struct (out_size bytes),
 * then check what starts every format: at least header_bytes and a CRC,
 * the magic, version 1. */
static golden_status start_parse(const unsigned char *data, size_t size, void *out, size_t out_size,
                                 const char magic[8], size_t header_bytes)
{
    if (out != NULL)
        memset(out, 0, out_size);
    if (data == NULL || out == NULL)
        return GOLDEN_E_ARG;
    if (size < header_bytes + CRC_BYTES)
        return GOLDEN_E_SIZE;
    if (memcmp(data, magic, 8) != 0 || read_u32(data + 8) != 1)
        return GOLDEN_E_FORMAT;
    return GOLDEN_OK;
}

/* A network's shape as every format stores it: T, B, I, H, L, P, six uint32
 * at @p p, with T, B, I, H in [1, GOLDEN_MAX_DIM], L in [1,
 * GOLDEN_MAX_LAYERS] and P < H. */
typedef struct shape {
    size_t seq_len, batch, input_size, hidden_size, num_layers, proj_size;
} shape;

static int read_shape(const unsigned char *p, shape *s)
{
    uint32_t dims[6];
    for (unsigned k = 0; k < 6; k++)
        dims[k] = read_u32(p + 4 * k);
    for (unsigned k = 0; k < 4; k++)
        if (dims[k] == 0 || dims[k] > GOLDEN_MAX_DIM)
            return 0;
    if (dims[4] == 0 || dims[4] > GOLDEN_MAX_LAYERS || dims[5] >= dims[3])
        return 0;
    s->seq_len = dims[0];
    s->batch = dims[1];
    s->input_size = dims[2];
    s->hidden_size = dims[3];
    s->num_layers = dims[4];
    s->proj_size = dims[5];
    return 1;
}

/* Element counts of a network's sequences and states, with D directions
 * and state size R: x T B I, y T B D R, h L D B R, c L D B H. */
typedef struct network_counts {
    size_t x, y, h, c;
} network_counts;

static network_counts count_network(const shape *s, size_t directions, size_t state_size, int *ok)
{
    size_t TB = mul_size(s->seq_len, s->batch, ok);
    size_t LDB = mul_size(mul_size(s->num_layers, directions, ok), s->batch, ok);
    network_counts n;
    n.x = mul_size(TB, s->input_size, ok);
    n.y = mul_size(TB, mul_size(directions, state_size, ok), ok);
    n.h = mul_size(LDB, state_size, ok);
    n.c = mul_size(LDB, s->hidden_size, ok);
    return n;
}

/* One float64 tensor of a format's fixed order. */
typedef struct tensor_slot {
    const double **dst; /* where its pointer goes; NULL: the rest of the slot before */
    size_t count;
    int present;       /* optional tensors may be absent */
    int float32_exact; /* inputs hold float32 values */
} tensor_slot;

/*
 * The float64 area of a file image, from @p offset to the CRC-32: its
 * @p declared value count must be the present slots', the file exactly that
 * long and its CRC right. Copies the values into a new *storage (finite,
 * the inputs exact float32 values) and points each slot's dst into it.
 */
static golden_status read_tensors(const unsigned char *data, size_t size, size_t offset,
                                  uint32_t declared, const tensor_slot *slots, size_t slot_count,
                                  double **storage)
{
    int ok = 1;
    size_t total = 0;

    *storage = NULL;
    for (size_t k = 0; k < slot_count; k++)
        if (slots[k].present)
            total = add_size(total, slots[k].count, &ok);
    if (!ok || total != declared || total == 0)
        return GOLDEN_E_FORMAT;
    if (add_size(add_size(offset, CRC_BYTES, &ok), mul_size(total, 8, &ok), &ok) != size || !ok)
        return GOLDEN_E_SIZE;
    if (!crc_matches(CRC32_IEEE, data, size))
        return GOLDEN_E_CHECKSUM;

    double *values = malloc(total * sizeof *values);
    if (values == NULL)
        return GOLDEN_E_NOMEM;
    const unsigned char *p = data + offset;
    double *dst = values;
    for (size_t k = 0; k < slot_count; k++) {
        if (!slots[k].present)
            continue;
        for (size_t e = 0; e < slots[k].count; e++, p += 8) {
            double v = read_f64(p);
            if (!isfinite(v) || (slots[k].float32_exact && (double)(float)v != v)) {
                free(values);
                return GOLDEN_E_FORMAT;
            }
            dst[e] = v;
        }
        if (slots[k].dst != NULL)
            *slots[k].dst = dst;
        dst += slots[k].count;
    }
    *storage = values;
    return GOLDEN_OK;
}

/* The three formats, for load(): the file at path read whole and parsed
 * into out (zeroed on failure), which is out_size bytes. */
typedef enum golden_format { FORMAT_NETWORK, FORMAT_TBPTT, FORMAT_CONVERT } golden_format;

static golden_status load(const char *path, golden_format format, void *out, size_t out_size);

/* ------------------------------------------------------------------------ */
/* LSTMNETG */

#define NETWORK_HEADER_BYTES 48u

size_t network_golden_layer_input(const network_golden *gc, size_t layer)
{
    return layer == 0 ? gc->input_size : gc->directions * gc->state_size;
}

/* Floats of one (layer, direction) block: W, b and W_hr. */
static size_t block_count(const network_golden *gc, size_t layer, int *ok)
{
    size_t H = gc->hidden_size, R = gc->state_size;
    size_t cols = add_size(R, network_golden_layer_input(gc, layer), ok);
    size_t weights = mul_size(mul_size(4, H, ok), cols, ok);
    size_t count = add_size(weights, mul_size(4, H, ok), ok);
    return add_size(count, mul_size(gc->proj_size, H, ok), ok);
}

static size_t param_count(const network_golden *gc, int *ok)
{
    size_t total = 0;
    for (size_t layer = 0; layer < gc->num_layers; layer++)
        total = add_size(total, mul_size(gc->directions, block_count(gc, layer, ok), ok), ok);
    return total;
}

int network_golden_tensor(const network_golden *gc, size_t layer, size_t direction,
                          network_golden_tensor_kind kind, size_t *offset, size_t *rows,
                          size_t *cols)
{
    size_t H = gc->hidden_size, R = gc->state_size, off = 0, r, c;
    int ok = 1;

    if (layer >= gc->num_layers || direction >= gc->directions || offset == NULL)
        return -1;
    for (size_t l = 0; l < layer; l++)
        off += gc->directions * block_count(gc, l, &ok);
    off += direction * block_count(gc, layer, &ok);
    switch (kind) {
    case NETWORK_GOLDEN_WEIGHT:
        r = 4 * H;
        c = R + network_golden_layer_input(gc, layer);
        break;
    case NETWORK_GOLDEN_BIAS:
        off += 4 * H * (R + network_golden_layer_input(gc, layer));
        r = 4 * H;
        c = 1;
        break;
    case NETWORK_GOLDEN_PROJECTION:
        if (gc->proj_size == 0)
            return -1;
        off += 4 * H * (R + network_golden_layer_input(gc, layer)) + 4 * H;
        r = gc->proj_size;
        c = H;
        break;
    default: return -1;
    }
    *offset = off;
    if (rows != NULL)
        *rows = r;
    if (cols != NULL)
        *cols = c;
    return ok ? 0 : -1;
}

size_t network_golden_x_count(const network_golden *gc)
{
    return gc->seq_len * gc->batch * gc->input_size;
}

size_t network_golden_y_count(const network_golden *gc)
{
    return gc->seq_len * gc->batch * gc->directions * gc->state_size;
}

size_t network_golden_h_count(const network_golden *gc)
{
    return gc->num_layers * gc->directions * gc->batch * gc->state_size;
}

size_t network_golden_c_count(const network_golden *gc)
{
    return gc->num_layers * gc->directions * gc->batch * gc->hidden_size;
}

/* The header after start_parse(): flags, shape, the float64 count. */
static golden_status network_header(const unsigned char *data, network_golden *gc, shape *s,
                                    uint32_t *declared)
{
    gc->flags = read_u32(data + 12);
    gc->config_flags = read_u32(data + 16);
    if ((gc->flags & ~NETWORK_GOLDEN_HAS_ALL) != 0 ||
        (gc->config_flags & ~NETWORK_GOLDEN_CONFIG_ALL) != 0 || !read_shape(data + 20, s))
        return GOLDEN_E_FORMAT;
    gc->seq_len = s->seq_len;
    gc->batch = s->batch;
    gc->input_size = s->input_size;
    gc->hidden_size = s->hidden_size;
    gc->num_layers = s->num_layers;
    gc->proj_size = s->proj_size;
    gc->directions = (gc->config_flags & NETWORK_GOLDEN_BIDIRECTIONAL) != 0 ? 2 : 1;
    gc->state_size = gc->proj_size > 0 ? gc->proj_size : gc->hidden_size;
    *declared = read_u32(data + 44);
    return GOLDEN_OK;
}

/* The lengths area: B values in [1, T] and the zero padding to 8 bytes. */
static golden_status network_lengths(const unsigned char *p, const network_golden *gc, size_t *dst)
{
    for (size_t b = 0; b < gc->batch; b++) {
        uint32_t n = read_u32(p + 4 * b);
        if (n == 0 || n > gc->seq_len)
            return GOLDEN_E_FORMAT;
        dst[b] = n;
    }
    if (gc->batch % 2 == 1 && read_u32(p + 4 * gc->batch) != 0)
        return GOLDEN_E_FORMAT;
    return GOLDEN_OK;
}

golden_status network_golden_parse(const unsigned char *data, size_t size, network_golden *out)
{
    network_golden gc;
    shape s;
    uint32_t declared = 0;
    size_t length_bytes = 0;
    int ok = 1;
    golden_status st;

    memset(&gc, 0, sizeof gc);
    st = start_parse(data, size, out, sizeof *out, "LSTMNETG", NETWORK_HEADER_BYTES);
    if (st == GOLDEN_OK)
        st = network_header(data, &gc, &s, &declared);
    if (st != GOLDEN_OK)
        return st;

    const uint32_t has = gc.flags;
    const network_counts n = count_network(&s, gc.directions, gc.state_size, &ok);
    gc.param_count = param_count(&gc, &ok);
    const tensor_slot slots[] = {
        {&gc.params, gc.param_count, 1, 1},
        {&gc.x, n.x, 1, 1},
        {&gc.h0, n.h, (has & NETWORK_GOLDEN_HAS_H0) != 0, 1},
        {&gc.c0, n.c, (has & NETWORK_GOLDEN_HAS_C0) != 0, 1},
        {&gc.y, n.y, 1, 0},
        {&gc.hT, n.h, 1, 0},
        {&gc.cT, n.c, 1, 0},
        {&gc.dy, n.y, (has & NETWORK_GOLDEN_HAS_DY) != 0, 1},
        {&gc.dhT, n.h, (has & NETWORK_GOLDEN_HAS_DHT) != 0, 1},
        {&gc.dcT, n.c, (has & NETWORK_GOLDEN_HAS_DCT) != 0, 1},
        {&gc.dx, n.x, 1, 0},
        {&gc.dh0, n.h, 1, 0},
        {&gc.dc0, n.c, 1, 0},
        {&gc.grads, gc.param_count, 1, 0},
    };
    if (!ok)
        return GOLDEN_E_FORMAT;
    if ((has & NETWORK_GOLDEN_HAS_LENGTHS) != 0)
        length_bytes = 4 * (gc.batch + gc.batch % 2);
    st = read_tensors(data, size, NETWORK_HEADER_BYTES + length_bytes, declared, slots,
                      sizeof slots / sizeof slots[0], &gc.storage);
    if (st != GOLDEN_OK)
        return st;
    if ((has & NETWORK_GOLDEN_HAS_LENGTHS) != 0) {
        gc.length_storage = malloc(gc.batch * sizeof(size_t));
        st = gc.length_storage == NULL
                 ? GOLDEN_E_NOMEM
                 : network_lengths(data + NETWORK_HEADER_BYTES, &gc, gc.length_storage);
        if (st != GOLDEN_OK) {
            network_golden_free(&gc);
            return st;
        }
        gc.lengths = gc.length_storage;
    }
    *out = gc;
    return GOLDEN_OK;
}

golden_status network_golden_load(const char *path, network_golden *out)
{
    return load(path, FORMAT_NETWORK, out, sizeof *out);
}

void network_golden_free(network_golden *gc)
{
    if (gc == NULL)
        return;
    free(gc->storage);
    free(gc->length_storage);
    memset(gc, 0, sizeof *gc);
}

/* ------------------------------------------------------------------------ */
/* LSTMTBPT */

#define TBPTT_HEADER_BYTES 44u /* up to the chunk lengths */
#define TBPTT_MAX_CHUNKS 1024u

/* Parameter count by the layout rule of include/lstm/model.h (unidirectional). */
static size_t tbptt_param_count(const tbptt_golden *g, int *ok)
{
    size_t total = 0;
    for (size_t l = 0; l < g->L; l++) {
        size_t in = l == 0 ? g->I : g->R;
        size_t weights = mul_size(mul_size(4, g->H, ok), add_size(g->R, in, ok), ok);
        size_t rest = add_size(mul_size(4, g->H, ok), mul_size(g->P, g->H, ok), ok);
        total = add_size(total, add_size(weights, rest, ok), ok);
    }
    return total;
}

golden_status tbptt_golden_parse(const unsigned char *data, size_t size, tbptt_golden *out)
{
    tbptt_golden g;
    shape s;
    int ok = 1;
    golden_status st;

    memset(&g, 0, sizeof g);
    st = start_parse(data, size, out, sizeof *out, "LSTMTBPT", TBPTT_HEADER_BYTES + 4);
    if (st != GOLDEN_OK)
        return st;
    const uint32_t config = read_u32(data + 12);
    if ((config & ~NETWORK_GOLDEN_BATCH_FIRST) != 0 || !read_shape(data + 16, &s))
        return GOLDEN_E_FORMAT;
    g.T = s.seq_len;
    g.B = s.batch;
    g.I = s.input_size;
    g.H = s.hidden_size;
    g.L = s.num_layers;
    g.P = s.proj_size;
    g.R = g.P > 0 ? g.P : g.H;
    g.K = read_u32(data + 40);
    g.batch_first = (config & NETWORK_GOLDEN_BATCH_FIRST) != 0;
    if (g.K == 0 || g.K > TBPTT_MAX_CHUNKS || g.K > g.T)
        return GOLDEN_E_FORMAT;
    const size_t header = TBPTT_HEADER_BYTES + 4 * g.K + 4; /* the chunks, the float count */
    if (size < header + CRC_BYTES)
        return GOLDEN_E_SIZE;
    size_t sum = 0;
    for (size_t k = 0; k < g.K; k++) {
        uint32_t length = read_u32(data + TBPTT_HEADER_BYTES + 4 * k);
        if (length == 0)
            return GOLDEN_E_FORMAT;
        sum += length;
    }
    if (sum != g.T)
        return GOLDEN_E_FORMAT;

    g.N = tbptt_param_count(&g, &ok);
    const network_counts n = count_network(&s, 1, g.R, &ok); /* h, c: one boundary's */
    const size_t K = g.K;
    const tensor_slot slots[] = {
        {&g.params, g.N, 1, 1},
        {&g.x, n.x, 1, 1},
        {&g.dy, n.y, 1, 1},
        {&g.hs, n.h, 1, 1},                  /* h0 */
        {NULL, mul_size(K, n.h, &ok), 1, 0}, /* the states after each chunk */
        {&g.cs, n.c, 1, 1},
        {NULL, mul_size(K, n.c, &ok), 1, 0},
        {&g.y, n.y, 1, 0},
        {&g.dx, n.x, 1, 0},
        {&g.dh0, mul_size(K, n.h, &ok), 1, 0},
        {&g.dc0, mul_size(K, n.c, &ok), 1, 0},
        {&g.grads, mul_size(K, g.N, &ok), 1, 0},
    };
    if (!ok)
        return GOLDEN_E_FORMAT;
    st = read_tensors(data, size, header, read_u32(data + header - 4), slots,
                      sizeof slots / sizeof slots[0], &g.storage);
    if (st != GOLDEN_OK)
        return st;
    g.chunks = malloc(K * sizeof *g.chunks);
    if (g.chunks == NULL) {
        tbptt_golden_free(&g);
        return GOLDEN_E_NOMEM;
    }
    for (size_t k = 0; k < K; k++)
        g.chunks[k] = read_u32(data + TBPTT_HEADER_BYTES + 4 * k);
    *out = g;
    return GOLDEN_OK;
}

golden_status tbptt_golden_load(const char *path, tbptt_golden *out)
{
    return load(path, FORMAT_TBPTT, out, sizeof *out);
}

void tbptt_golden_free(tbptt_golden *g)
{
    if (g == NULL)
        return;
    free(g->chunks);
    free(g->storage);
    memset(g, 0, sizeof *g);
}

/* ------------------------------------------------------------------------ */
/* LSTMCVTX */

#define CONVERT_HEADER_BYTES 40u

golden_status convert_golden_parse(const unsigned char *data, size_t size, convert_golden *out)
{
    convert_golden e;
    shape s;
    int ok = 1;
    golden_status st;

    memset(&e, 0, sizeof e);
    st = start_parse(data, size, out, sizeof *out, "LSTMCVTX", CONVERT_HEADER_BYTES);
    if (st != GOLDEN_OK)
        return st;
    e.flags = read_u32(data + 12);
    if ((e.flags & ~NETWORK_GOLDEN_CONFIG_ALL) != 0 || !read_shape(data + 16, &s))
        return GOLDEN_E_FORMAT;
    e.seq_len = s.seq_len;
    e.batch = s.batch;
    e.input_size = s.input_size;
    e.hidden_size = s.hidden_size;
    e.num_layers = s.num_layers;
    e.proj_size = s.proj_size;
    e.directions = (e.flags & NETWORK_GOLDEN_BIDIRECTIONAL) != 0 ? 2 : 1;
    e.state_size = e.proj_size != 0 ? e.proj_size : e.hidden_size;
    const network_counts n = count_network(&s, e.directions, e.state_size, &ok);
    e.x_count = n.x;
    e.h_count = n.h;
    e.c_count = n.c;
    e.y_count = n.y;
    /* float32 x, h0, c0, then float64 y, hT, cT */
    const size_t floats = add_size(add_size(n.x, n.h, &ok), n.c, &ok);
    const size_t doubles = add_size(add_size(n.y, n.h, &ok), n.c, &ok);
    const size_t data_bytes = add_size(mul_size(4, floats, &ok), mul_size(8, doubles, &ok), &ok);
    const size_t want = add_size(CONVERT_HEADER_BYTES + CRC_BYTES, data_bytes, &ok);
    if (!ok)
        return GOLDEN_E_FORMAT;
    if (want != size)
        return GOLDEN_E_SIZE;
    if (!crc_matches(CRC32C, data, size))
        return GOLDEN_E_CHECKSUM;

    e.float_storage = malloc(floats * sizeof *e.float_storage);
    e.double_storage = malloc(doubles * sizeof *e.double_storage);
    if (e.float_storage == NULL || e.double_storage == NULL) {
        convert_golden_free(&e);
        return GOLDEN_E_NOMEM;
    }
    const unsigned char *p = data + CONVERT_HEADER_BYTES;
    for (size_t k = 0; k < floats; k++, p += 4) {
        e.float_storage[k] = read_f32(p);
        if (!isfinite(e.float_storage[k])) {
            convert_golden_free(&e);
            return GOLDEN_E_FORMAT;
        }
    }
    for (size_t k = 0; k < doubles; k++, p += 8) {
        e.double_storage[k] = read_f64(p);
        if (!isfinite(e.double_storage[k])) {
            convert_golden_free(&e);
            return GOLDEN_E_FORMAT;
        }
    }
    e.x = e.float_storage;
    e.h0 = e.x + n.x;
    e.c0 = e.h0 + n.h;
    e.y = e.double_storage;
    e.hT = e.y + n.y;
    e.cT = e.hT + n.h;
    *out = e;
    return GOLDEN_OK;
}

golden_status convert_golden_load(const char *path, convert_golden *out)
{
    return load(path, FORMAT_CONVERT, out, sizeof *out);
}

void convert_golden_free(convert_golden *e)
{
    if (e == NULL)
        return;
    free(e->float_storage);
    free(e->double_storage);
    memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------------------------ */
/* Loading: the file read whole, then parsed */

static golden_status load(const char *path, golden_format format, void *out, size_t out_size)
{
    unsigned char *data;
    size_t size;
    golden_status st;

    if (out == NULL)
        return GOLDEN_E_ARG;
    memset(out, 0, out_size);
    st = golden_read_file(path, &data, &size);
    if (st != GOLDEN_OK)
        return st;
    switch (format) {
    case FORMAT_NETWORK: st = network_golden_parse(data, size, out); break;
    case FORMAT_TBPTT: st = tbptt_golden_parse(data, size, out); break;
    case FORMAT_CONVERT: st = convert_golden_parse(data, size, out); break;
    }
    free(data);
    return st;
}
