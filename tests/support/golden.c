/* Reader for the golden files of tests/parity/gen_golden.py; format in golden.h. */
#include "golden.h"
#include "golden_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(double) == 8, "golden files store IEEE-754 binary64");

#define HEADER_BYTES 40u
#define TRAILER_BYTES 4u
#define READ_LIMIT ((size_t)1 << 30) /* refuse files above 1 GiB */

static const unsigned char golden_magic[8] = {'L', 'S', 'T', 'M', 'G', 'O', 'L', 'D'};

size_t golden_case_weight_count(const golden_case *gc)
{
    return 4 * gc->hidden_size * (gc->hidden_size + gc->input_size);
}

size_t golden_case_x_count(const golden_case *gc)
{
    return gc->seq_len * gc->batch * gc->input_size;
}

size_t golden_case_y_count(const golden_case *gc)
{
    return gc->seq_len * gc->batch * gc->hidden_size;
}

size_t golden_case_state_count(const golden_case *gc)
{
    return gc->batch * gc->hidden_size;
}

/* One tensor of the fixed order: where its pointer goes and its length. */
typedef struct tensor_slot {
    const double **dst;
    size_t count;
    uint32_t flag;      /* 0 when always present */
    int float32_exact;  /* inputs hold float32 values */
} tensor_slot;

enum { SLOT_COUNT = 16 };

static int fill_slots(golden_case *gc, tensor_slot slots[SLOT_COUNT])
{
    int ok = 1;
    size_t H = gc->hidden_size, I = gc->input_size;
    size_t weights = golden_mul_size(golden_mul_size(4, H, &ok), golden_add_size(H, I, &ok), &ok);
    size_t bias = golden_mul_size(4, H, &ok);
    size_t xs = golden_mul_size(golden_mul_size(gc->seq_len, gc->batch, &ok), I, &ok);
    size_t ys = golden_mul_size(golden_mul_size(gc->seq_len, gc->batch, &ok), H, &ok);
    size_t state = golden_mul_size(gc->batch, H, &ok);
    const tensor_slot table[SLOT_COUNT] = {
        {&gc->W, weights, 0, 1},
        {&gc->b, bias, 0, 1},
        {&gc->x, xs, 0, 1},
        {&gc->h0, state, GOLDEN_HAS_H0, 1},
        {&gc->c0, state, GOLDEN_HAS_C0, 1},
        {&gc->y, ys, 0, 0},
        {&gc->hT, state, 0, 0},
        {&gc->cT, state, 0, 0},
        {&gc->dy, ys, GOLDEN_HAS_DY, 1},
        {&gc->dhT, state, GOLDEN_HAS_DHT, 1},
        {&gc->dcT, state, GOLDEN_HAS_DCT, 1},
        {&gc->dx, xs, 0, 0},
        {&gc->dh0, state, 0, 0},
        {&gc->dc0, state, 0, 0},
        {&gc->dW, weights, 0, 0},
        {&gc->db, bias, 0, 0},
    };
    memcpy(slots, table, sizeof table);
    return ok;
}

static golden_status parse_header(const unsigned char *data, size_t size, golden_case *gc,
                                  uint32_t *count)
{
    uint32_t dims[4];

    if (size < HEADER_BYTES + TRAILER_BYTES)
        return GOLDEN_E_SIZE;
    if (memcmp(data, golden_magic, sizeof golden_magic) != 0)
        return GOLDEN_E_FORMAT;
    if (golden_read_u32(data + 8) != GOLDEN_VERSION)
        return GOLDEN_E_FORMAT;
    gc->flags = golden_read_u32(data + 12);
    if ((gc->flags & ~GOLDEN_HAS_ALL) != 0)
        return GOLDEN_E_FORMAT;
    for (unsigned k = 0; k < 4; k++) {
        dims[k] = golden_read_u32(data + 16 + 4 * k);
        if (dims[k] == 0 || dims[k] > GOLDEN_MAX_DIM)
            return GOLDEN_E_FORMAT;
    }
    gc->seq_len = dims[0];
    gc->batch = dims[1];
    gc->input_size = dims[2];
    gc->hidden_size = dims[3];
    *count = golden_read_u32(data + 32);
    if (golden_read_u32(data + 36) != 0)
        return GOLDEN_E_FORMAT;
    return GOLDEN_OK;
}

golden_status golden_case_parse(const unsigned char *data, size_t size, golden_case *out)
{
    golden_case gc;
    tensor_slot slots[SLOT_COUNT];
    uint32_t declared = 0;
    size_t total = 0;
    int ok;
    golden_status st;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (data == NULL || out == NULL)
        return GOLDEN_E_ARG;
    memset(&gc, 0, sizeof gc);
    st = parse_header(data, size, &gc, &declared);
    if (st != GOLDEN_OK)
        return st;

    ok = fill_slots(&gc, slots);
    for (unsigned k = 0; k < SLOT_COUNT; k++)
        if (slots[k].flag == 0 || (gc.flags & slots[k].flag) != 0)
            total = golden_add_size(total, slots[k].count, &ok);
    if (!ok || total != declared)
        return GOLDEN_E_FORMAT;
    /* declared < 2^32, so this cannot overflow a 64-bit size_t; check anyway. */
    if (golden_add_size(HEADER_BYTES + TRAILER_BYTES, golden_mul_size(total, 8, &ok), &ok) != size || !ok)
        return GOLDEN_E_SIZE;
    if (golden_crc32(data, size - TRAILER_BYTES) != golden_read_u32(data + size - TRAILER_BYTES))
        return GOLDEN_E_CHECKSUM;

    gc.storage = malloc(total * sizeof(double));
    if (gc.storage == NULL)
        return GOLDEN_E_NOMEM;
    {
        const unsigned char *p = data + HEADER_BYTES;
        double *dst = gc.storage;
        for (unsigned k = 0; k < SLOT_COUNT; k++) {
            if (slots[k].flag != 0 && (gc.flags & slots[k].flag) == 0)
                continue;
            for (size_t e = 0; e < slots[k].count; e++, p += 8) {
                double v = golden_read_f64(p);
                if (!isfinite(v) || (slots[k].float32_exact && (double)(float)v != v)) {
                    free(gc.storage);
                    return GOLDEN_E_FORMAT;
                }
                dst[e] = v;
            }
            *slots[k].dst = dst;
            dst += slots[k].count;
        }
    }
    *out = gc;
    return GOLDEN_OK;
}

golden_status golden_case_load(const char *path, golden_case *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || out == NULL)
        return GOLDEN_E_ARG;
    unsigned char *data;
    size_t size;
    switch (golden_read_file(path, READ_LIMIT, &data, &size)) {
    case GOLDEN_READ_OK: break;
    case GOLDEN_READ_NOMEM: return GOLDEN_E_NOMEM;
    case GOLDEN_READ_TOO_BIG: return GOLDEN_E_SIZE;
    default: return GOLDEN_E_IO;
    }
    golden_status st = golden_case_parse(data, size, out);
    free(data);
    return st;
}

void golden_case_free(golden_case *gc)
{
    if (gc == NULL)
        return;
    free(gc->storage);
    memset(gc, 0, sizeof *gc);
}

const char *golden_strerror(golden_status status)
{
    switch (status) {
    case GOLDEN_OK: return "ok";
    case GOLDEN_E_ARG: return "NULL argument";
    case GOLDEN_E_IO: return "cannot open or read the file";
    case GOLDEN_E_NOMEM: return "out of memory";
    case GOLDEN_E_FORMAT: return "bad magic, version, flags, sizes or values";
    case GOLDEN_E_SIZE: return "file length disagrees with its header";
    case GOLDEN_E_CHECKSUM: return "CRC-32 mismatch";
    }
    return "unknown status";
}
