/* CRC-32C (Castagnoli), the checksum of model files. */
#ifndef LSTM_CRC32C_H
#define LSTM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over size bytes; lstm__crc32c(0, "123456789", 9) is
 * 0xE3069283. */
uint32_t lstm__crc32c(uint32_t crc, const void *data, size_t size);

#endif /* LSTM_CRC32C_H */
