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
extern io_write_fn lstm__io_write_hook;

/*
 * Which ways lstm_model_save() may make its temporary file (file.c), so that
 * a test can take each: any (an unnamed file linked with AT_EMPTY_PATH, else
 * through /proc, else a named one), the named one only (as on a file system
 * without O_TMPFILE), or an unnamed one linked through /proc only (as
 * without CAP_DAC_READ_SEARCH). IO_TEMPORARY_ANY by default.
 */
typedef enum io_temporary {
    IO_TEMPORARY_ANY,
    IO_TEMPORARY_NAMED,
    IO_TEMPORARY_PROC_LINK
} io_temporary;
extern io_temporary lstm__io_temporary_hook;

#endif /* LSTM_IO_INTERNAL_H */
