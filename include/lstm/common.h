/**
 * @file lstm/common.h
 * @brief Export macro, status codes and error reporting shared by every module.
 */
#ifndef LSTM_COMMON_H
#define LSTM_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * LSTM_API marks the exported declarations. The library is built with hidden
 * visibility, so nothing else leaves the shared object. LSTM_STATIC is
 * defined by consumers of the static library (the CMake package and lstm.pc
 * do it for them); it changes nothing on ELF platforms.
 */
#if defined(_WIN32) && !defined(LSTM_STATIC)
#  if defined(LSTM_BUILDING)
#    define LSTM_API __declspec(dllexport)
#  else
#    define LSTM_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define LSTM_API __attribute__((visibility("default")))
#else
#  define LSTM_API
#endif

/**
 * @brief Status returned by every fallible call.
 *
 * Values are explicit and never renumbered; new codes are added at the end.
 * A call that returns anything but LSTM_OK has changed none of its outputs
 * and none of the handles it was given, unless its documentation says
 * otherwise.
 */
typedef enum lstm_status {
    LSTM_OK = 0,             /**< Success. */
    LSTM_E_NULL = 1,         /**< A required pointer argument is NULL. */
    LSTM_E_SIZE = 2,         /**< A size is zero or above its documented limit. */
    LSTM_E_OVERFLOW = 3,     /**< A product of sizes overflows size_t or the BLAS index range. */
    LSTM_E_SHAPE = 4,        /**< Shapes or buffer lengths disagree. */
    LSTM_E_ARG = 5,          /**< An argument value is invalid (unknown flag, mode or struct size). */
    LSTM_E_NONFINITE = 6,    /**< An input holds NaN or infinity. */
    LSTM_E_NOMEM = 7,        /**< Memory allocation failed. */
    LSTM_E_STATE = 8,        /**< The call is out of order (for example backward without a training forward). */
    LSTM_E_IO = 9,           /**< Reading or writing a file failed (the message gives the system's reason). */
    LSTM_E_FORMAT = 10,      /**< A model file or buffer is truncated, corrupted or not a model file. */
    LSTM_E_UNSUPPORTED = 11  /**< A model file needs a feature this version does not have. */
} lstm_status;

/**
 * @brief Static English text for a status code.
 *
 * @return text owned by the library, never NULL ("unknown status" for
 *         values this version does not know). Thread-safe.
 */
LSTM_API const char *lstm_strerror(lstm_status status);

/**
 * @brief Detail message of the most recent failing call made on this thread.
 *
 * The message names the offending argument and value, for example
 * "hidden_size is 0; it must be at least 1". It is kept per thread and is
 * meaningful right after a call returned a status other than LSTM_OK; a
 * successful call does not clear it.
 *
 * @return text owned by the library, valid until the next failing call on
 *         this thread; "" when no call has failed on this thread. Never NULL.
 */
LSTM_API const char *lstm_error_message(void);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_COMMON_H */
