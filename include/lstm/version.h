/**
 * @file lstm/version.h
 * @brief Release version of liblstm: the single source of truth.
 *
 * The release number (MAJOR.MINOR.PATCH) is independent of the ABI number
 * carried in the SONAME (liblstm.so.1). CMake and pkg-config read the
 * version from this file.
 */
#ifndef LSTM_VERSION_H
#define LSTM_VERSION_H

#include "lstm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LSTM_VERSION_MAJOR 0
#define LSTM_VERSION_MINOR 8
#define LSTM_VERSION_PATCH 0

/** Packed version: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define LSTM_VERSION_NUMBER \
  (LSTM_VERSION_MAJOR * 10000 + LSTM_VERSION_MINOR * 100 + LSTM_VERSION_PATCH)

#define LSTM_STRINGIFY_(x) #x
#define LSTM_STRINGIFY(x) LSTM_STRINGIFY_(x)
/** Version as a string, "MAJOR.MINOR.PATCH". */
#define LSTM_VERSION_STRING \
  LSTM_STRINGIFY(LSTM_VERSION_MAJOR) \
  "." LSTM_STRINGIFY(LSTM_VERSION_MINOR) "." LSTM_STRINGIFY(LSTM_VERSION_PATCH)

/**
 * @brief Version of the library actually loaded, as LSTM_VERSION_NUMBER.
 *
 * Compare with LSTM_VERSION_NUMBER to detect a header/library mismatch.
 * Thread-safe; never fails.
 */
LSTM_API unsigned lstm_version_number(void);

/**
 * @brief Version of the library actually loaded, as "MAJOR.MINOR.PATCH".
 *
 * @return static text owned by the library. Thread-safe; never fails.
 */
LSTM_API const char *lstm_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_VERSION_H */
