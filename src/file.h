/*
 * Whole files on disk: reading one in, and replacing one atomically and
 * durably. The model-file format (io.c) knows nothing of paths; this module
 * knows nothing of the format.
 */
#ifndef LSTM_FILE_H
#define LSTM_FILE_H

#include <stddef.h>

#include "lstm/common.h"

/*
 * Reads the regular file at path into a new buffer (*data, lstm__mem_free() it;
 * NULL on failure) of *size bytes. Anything but a regular file (a FIFO, a
 * device, a directory) is LSTM_E_IO at once, without blocking.
 */
lstm_status lstm__file_read_all(const char *path, unsigned char **data, size_t *size);

/*
 * Replaces the file at path by size bytes, so that at every instant the
 * name holds either the old file whole or the new one whole, and the new
 * one is on disk when this returns LSTM_OK:
 *   - the bytes go to a temporary file in the same directory: unnamed
 *     (O_TMPFILE) where the system has it, so a crash leaves nothing
 *     behind, else named .lstm-tmp-XXXXXX, which a crash can leave; it is
 *     fsynced, renamed over path, and the directory fsynced;
 *   - a symbolic link at path is followed (through a chain of at most 40)
 *     and the file it names is replaced, so the link stays a link; but not
 *     a link in a sticky world-writable directory (/tmp) owned by someone
 *     else than the caller and the directory's owner, as Linux's
 *     protected_symlinks would refuse to open it;
 *   - the new file gets the permission bits of the file it replaces, never
 *     its set-user-ID, set-group-ID or sticky bits (it belongs to the
 *     caller, not the old owner); a new file gets 0666 less the umask;
 *   - an existing path that is not a regular file is LSTM_E_IO, unchanged.
 * On any failure, path is unchanged and no temporary file remains. The
 * detail message gives the system's reason before the path, so that a long
 * path cannot push it out of the message.
 */
lstm_status lstm__file_replace(const char *path, const unsigned char *bytes, size_t size);

#endif /* LSTM_FILE_H */
