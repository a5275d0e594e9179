/* What the white-box tests of model files reach inside file.c. */
#ifndef LSTM_IO_INTERNAL_H
#define LSTM_IO_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Every write of lstm_model_save() goes through this pointer (write(2) by
 * default), so that a test can make the k-th write fail, as a crash or a
 * full disk would, and check that the previous file survives.
 */
typedef ssize_t (*io_write_fn)(int fd, const void *data, size_t size);
extern io_write_fn io_write_hook;

#endif /* LSTM_IO_INTERNAL_H */
