/* What the golden-file loaders of the tests share (golden_io.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_io.h"

golden_read_status golden_read_file(const char *path, size_t limit, unsigned char **data,
                                    size_t *size)
{
    FILE *file = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t used = 0, cap = 0;
    golden_read_status status = GOLDEN_READ_OK;
    *data = NULL;
    *size = 0;
    if (file == NULL)
        return GOLDEN_READ_IO;
    for (;;) {
        if (used == cap) {
            if (cap >= limit) {
                status = GOLDEN_READ_TOO_BIG;
                break;
            }
            cap = cap == 0 ? 65536 : 2 * cap;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL) {
                status = GOLDEN_READ_NOMEM;
                break;
            }
            buf = grown;
        }
        size_t got = fread(buf + used, 1, cap - used, file);
        used += got;
        if (got == 0) {
            if (ferror(file))
                status = GOLDEN_READ_IO;
            break;
        }
    }
    fclose(file);
    if (status != GOLDEN_READ_OK) {
        free(buf);
        return status;
    }
    *data = buf;
    *size = used;
    return GOLDEN_READ_OK;
}

uint32_t golden_read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

double golden_read_f64(const unsigned char *p)
{
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--)
        bits = (bits << 8) | p[k];
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

uint32_t golden_crc32(const unsigned char *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t k = 0; k < size; k++) {
        crc ^= data[k];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

size_t golden_mul_size(size_t a, size_t b, int *ok)
{
    if (a != 0 && b > SIZE_MAX / a) {
        *ok = 0;
        return 0;
    }
    return a * b;
}

size_t golden_add_size(size_t a, size_t b, int *ok)
{
    if (b > SIZE_MAX - a) {
        *ok = 0;
        return 0;
    }
    return a + b;
}
