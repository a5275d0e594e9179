/* Reader for the golden files of tests/parity/gen_network_golden.py; format in network_golden.h. */
#include "network_golden.h"
#include "golden_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(double) == 8, "golden files store IEEE-754 binary64");

#define HEADER_BYTES 48u
#define TRAILER_BYTES 4u
#define READ_LIMIT ((size_t)1 << 30) /* refuse files above 1 GiB */

static const unsigned char network_magic[8] = {'L', 'S', 'T', 'M', 'N', 'E', 'T', 'G'};

size_t network_golden_layer_input(const network_golden *gc, size_t layer)
{
    return layer == 0 ? gc->input_size : gc->directions * gc->state_size;
}

/* Floats of one (layer, direction) block: W, b and W_hr. */
static size_t block_count(const network_golden *gc, size_t layer, int *ok)
{
    size_t H = gc->hidden_size, R = gc->state_size;
    size_t cols = golden_add_size(R, network_golden_layer_input(gc, layer), ok);
    size_t weights = golden_mul_size(golden_mul_size(4, H, ok), cols, ok);
    size_t count = golden_add_size(weights, golden_mul_size(4, H, ok), ok);
    return golden_add_size(count, golden_mul_size(gc->proj_size, H, ok), ok);
}

static size_t param_count(const network_golden *gc, int *ok)
{
    size_t total = 0;
    for (size_t layer = 0; layer < gc->num_layers; layer++)
        total = golden_add_size(total, golden_mul_size(gc->directions, block_count(gc, layer, ok), ok), ok);
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
    default:
        return -1;
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

/* One tensor of the fixed order: where its pointer goes and its length. */
typedef struct tensor_slot {
    const double **dst;
    size_t count;
    uint32_t flag;     /* 0 when always present */
    int float32_exact; /* inputs hold float32 values */
} tensor_slot;

enum { SLOT_COUNT = 14 };

static int fill_slots(network_golden *gc, tensor_slot slots[SLOT_COUNT])
{
    int ok = 1;
    size_t TB = golden_mul_size(gc->seq_len, gc->batch, &ok);
    size_t LDB = golden_mul_size(golden_mul_size(gc->num_layers, gc->directions, &ok), gc->batch, &ok);
    size_t params = param_count(gc, &ok);
    size_t xs = golden_mul_size(TB, gc->input_size, &ok);
    size_t ys = golden_mul_size(TB, golden_mul_size(gc->directions, gc->state_size, &ok), &ok);
    size_t hs = golden_mul_size(LDB, gc->state_size, &ok);
    size_t cs = golden_mul_size(LDB, gc->hidden_size, &ok);
    const tensor_slot table[SLOT_COUNT] = {
        {&gc->params, params, 0, 1},
        {&gc->x, xs, 0, 1},
        {&gc->h0, hs, NETWORK_GOLDEN_HAS_H0, 1},
        {&gc->c0, cs, NETWORK_GOLDEN_HAS_C0, 1},
        {&gc->y, ys, 0, 0},
        {&gc->hT, hs, 0, 0},
        {&gc->cT, cs, 0, 0},
        {&gc->dy, ys, NETWORK_GOLDEN_HAS_DY, 1},
        {&gc->dhT, hs, NETWORK_GOLDEN_HAS_DHT, 1},
        {&gc->dcT, cs, NETWORK_GOLDEN_HAS_DCT, 1},
        {&gc->dx, xs, 0, 0},
        {&gc->dh0, hs, 0, 0},
        {&gc->dc0, cs, 0, 0},
        {&gc->grads, params, 0, 0},
    };
    memcpy(slots, table, sizeof table);
    gc->param_count = params;
    return ok;
}

static network_golden_status parse_header(const unsigned char *data, size_t size,
                                          network_golden *gc, uint32_t *count)
{
    uint32_t dims[6];

    if (size < HEADER_BYTES + TRAILER_BYTES)
        return NETWORK_GOLDEN_E_SIZE;
    if (memcmp(data, network_magic, sizeof network_magic) != 0)
        return NETWORK_GOLDEN_E_FORMAT;
    if (golden_read_u32(data + 8) != NETWORK_GOLDEN_VERSION)
        return NETWORK_GOLDEN_E_FORMAT;
    gc->flags = golden_read_u32(data + 12);
    gc->config_flags = golden_read_u32(data + 16);
    if ((gc->flags & ~NETWORK_GOLDEN_HAS_ALL) != 0 ||
        (gc->config_flags & ~NETWORK_GOLDEN_CONFIG_ALL) != 0)
        return NETWORK_GOLDEN_E_FORMAT;
    for (unsigned k = 0; k < 6; k++)
        dims[k] = golden_read_u32(data + 20 + 4 * k);
    /* T, B, I, H, L at least 1; P may be 0. */
    for (unsigned k = 0; k < 5; k++)
        if (dims[k] == 0 || dims[k] > NETWORK_GOLDEN_MAX_DIM)
            return NETWORK_GOLDEN_E_FORMAT;
    if (dims[4] > NETWORK_GOLDEN_MAX_LAYERS || dims[5] >= dims[3])
        return NETWORK_GOLDEN_E_FORMAT;
    gc->seq_len = dims[0];
    gc->batch = dims[1];
    gc->input_size = dims[2];
    gc->hidden_size = dims[3];
    gc->num_layers = dims[4];
    gc->proj_size = dims[5];
    gc->directions = (gc->config_flags & NETWORK_GOLDEN_BIDIRECTIONAL) != 0 ? 2 : 1;
    gc->state_size = gc->proj_size > 0 ? gc->proj_size : gc->hidden_size;
    *count = golden_read_u32(data + 44);
    return NETWORK_GOLDEN_OK;
}

/* The lengths area: B values in [1, T] and the zero padding to 8 bytes. */
static network_golden_status parse_lengths(const unsigned char *p, const network_golden *gc,
                                           size_t *dst)
{
    for (size_t b = 0; b < gc->batch; b++) {
        uint32_t n = golden_read_u32(p + 4 * b);
        if (n == 0 || n > gc->seq_len)
            return NETWORK_GOLDEN_E_FORMAT;
        dst[b] = n;
    }
    if (gc->batch % 2 == 1 && golden_read_u32(p + 4 * gc->batch) != 0)
        return NETWORK_GOLDEN_E_FORMAT;
    return NETWORK_GOLDEN_OK;
}

static network_golden_status parse_tensors(const unsigned char *p, network_golden *gc,
                                           const tensor_slot slots[SLOT_COUNT])
{
    double *dst = gc->storage;
    for (unsigned k = 0; k < SLOT_COUNT; k++) {
        if (slots[k].flag != 0 && (gc->flags & slots[k].flag) == 0)
            continue;
        for (size_t e = 0; e < slots[k].count; e++, p += 8) {
            double v = golden_read_f64(p);
            if (!isfinite(v) || (slots[k].float32_exact && (double)(float)v != v))
                return NETWORK_GOLDEN_E_FORMAT;
            dst[e] = v;
        }
        *slots[k].dst = dst;
        dst += slots[k].count;
    }
    return NETWORK_GOLDEN_OK;
}

network_golden_status network_golden_parse(const unsigned char *data, size_t size,
                                           network_golden *out)
{
    network_golden gc;
    tensor_slot slots[SLOT_COUNT];
    uint32_t declared = 0;
    size_t total = 0, length_bytes = 0;
    int ok;
    network_golden_status st;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (data == NULL || out == NULL)
        return NETWORK_GOLDEN_E_ARG;
    memset(&gc, 0, sizeof gc);
    st = parse_header(data, size, &gc, &declared);
    if (st != NETWORK_GOLDEN_OK)
        return st;

    ok = fill_slots(&gc, slots);
    for (unsigned k = 0; k < SLOT_COUNT; k++)
        if (slots[k].flag == 0 || (gc.flags & slots[k].flag) != 0)
            total = golden_add_size(total, slots[k].count, &ok);
    if (!ok || total != declared)
        return NETWORK_GOLDEN_E_FORMAT;
    if ((gc.flags & NETWORK_GOLDEN_HAS_LENGTHS) != 0)
        length_bytes = 4 * (gc.batch + gc.batch % 2);
    if (golden_add_size(HEADER_BYTES + TRAILER_BYTES + length_bytes, golden_mul_size(total, 8, &ok), &ok) !=
            size ||
        !ok)
        return NETWORK_GOLDEN_E_SIZE;
    if (golden_crc32(data, size - TRAILER_BYTES) != golden_read_u32(data + size - TRAILER_BYTES))
        return NETWORK_GOLDEN_E_CHECKSUM;

    gc.storage = malloc(total * sizeof(double));
    if (gc.storage == NULL)
        return NETWORK_GOLDEN_E_NOMEM;
    if ((gc.flags & NETWORK_GOLDEN_HAS_LENGTHS) != 0) {
        gc.length_storage = malloc(gc.batch * sizeof(size_t));
        if (gc.length_storage == NULL) {
            st = NETWORK_GOLDEN_E_NOMEM;
            goto fail;
        }
        st = parse_lengths(data + HEADER_BYTES, &gc, gc.length_storage);
        if (st != NETWORK_GOLDEN_OK)
            goto fail;
        gc.lengths = gc.length_storage;
    }
    st = parse_tensors(data + HEADER_BYTES + length_bytes, &gc, slots);
    if (st != NETWORK_GOLDEN_OK)
        goto fail;
    *out = gc;
    return NETWORK_GOLDEN_OK;
fail:
    free(gc.storage);
    free(gc.length_storage);
    return st;
}

network_golden_status network_golden_load(const char *path, network_golden *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || out == NULL)
        return NETWORK_GOLDEN_E_ARG;
    unsigned char *data;
    size_t size;
    switch (golden_read_file(path, READ_LIMIT, &data, &size)) {
    case GOLDEN_READ_OK: break;
    case GOLDEN_READ_NOMEM: return NETWORK_GOLDEN_E_NOMEM;
    case GOLDEN_READ_TOO_BIG: return NETWORK_GOLDEN_E_SIZE;
    default: return NETWORK_GOLDEN_E_IO;
    }
    network_golden_status st = network_golden_parse(data, size, out);
    free(data);
    return st;
}

void network_golden_free(network_golden *gc)
{
    if (gc == NULL)
        return;
    free(gc->storage);
    free(gc->length_storage);
    memset(gc, 0, sizeof *gc);
}

const char *network_golden_strerror(network_golden_status status)
{
    switch (status) {
    case NETWORK_GOLDEN_OK: return "ok";
    case NETWORK_GOLDEN_E_ARG: return "NULL argument";
    case NETWORK_GOLDEN_E_IO: return "cannot open or read the file";
    case NETWORK_GOLDEN_E_NOMEM: return "out of memory";
    case NETWORK_GOLDEN_E_FORMAT: return "bad magic, version, flags, sizes, lengths or values";
    case NETWORK_GOLDEN_E_SIZE: return "file length disagrees with its header";
    case NETWORK_GOLDEN_E_CHECKSUM: return "CRC-32 mismatch";
    }
    return "unknown status";
}
