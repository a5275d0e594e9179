/* What the golden-file loaders of the tests share: reading a whole file,
 * little-endian fields, CRC-32 (zlib's), and overflow-checked sizes. */
#ifndef LSTM_TESTS_GOLDEN_IO_H
#define LSTM_TESTS_GOLDEN_IO_H

#include <stddef.h>
#include <stdint.h>

/* golden_read_file() results. */
typedef enum golden_read_status {
    GOLDEN_READ_OK = 0,
    GOLDEN_READ_IO,     /* cannot open or read */
    GOLDEN_READ_NOMEM,
    GOLDEN_READ_TOO_BIG /* above the limit */
} golden_read_status;

/* The whole file in a new malloc'd buffer (free() it), refusing files above
 * limit bytes. *data is NULL on failure. */
golden_read_status golden_read_file(const char *path, size_t limit, unsigned char **data,
                                    size_t *size);

uint32_t golden_read_u32(const unsigned char *p);
double golden_read_f64(const unsigned char *p);

/* CRC-32, IEEE 802.3 polynomial, reflected: the same value as zlib.crc32. */
uint32_t golden_crc32(const unsigned char *data, size_t size);

/* a * b and a + b; *ok becomes 0 on overflow (and stays 0). */
size_t golden_mul_size(size_t a, size_t b, int *ok);
size_t golden_add_size(size_t a, size_t b, int *ok);

#endif /* LSTM_TESTS_GOLDEN_IO_H */
