/**
 * @file lstm/io.h
 * @brief Model files: save and load a model (and an optimizer's state) to a
 *        path or a memory buffer, in the versioned, checksummed format that
 *        docs/model-format.md specifies.
 *
 * Loading validates the whole file before it trusts any of it: a truncated,
 * corrupted, hostile or oversized file returns LSTM_E_FORMAT (or
 * LSTM_E_UNSUPPORTED for a newer required feature) and never a half-built
 * model. Saving to a path is atomic: the previous file survives any failure
 * or crash.
 *
 * Thread rules: as for the model and optimizer given (saving only reads
 * them); files are the caller's to keep apart.
 */
#ifndef LSTM_IO_H
#define LSTM_IO_H

#include <stddef.h>

#include "lstm/common.h"
#include "lstm/model.h"
#include "lstm/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Serialise a model, and optionally an optimizer's state, to memory.
 *
 * @param model    read only; not NULL.
 * @param optim    whose state to include, or NULL.
 * @param buffer   receives the file's bytes; may be NULL to ask for the size.
 * @param capacity bytes available at buffer.
 * @param size     receives the file's size; not NULL.
 * @return LSTM_OK; LSTM_E_SHAPE (and *size set) when capacity is too small,
 *         nothing written; LSTM_E_NONFINITE, nothing written, when a
 *         parameter or an optimizer state value is NaN or infinite.
 */
LSTM_API lstm_status lstm_model_save_buffer(const lstm_model *model, const lstm_optim *optim,
                                            void *buffer, size_t capacity, size_t *size);

/**
 * @brief Save a model, and optionally an optimizer's state, to a file.
 *
 * Writes a temporary file in the directory of @p path, fsyncs it, renames it
 * over @p path and fsyncs the directory: a crash or an error at any point
 * leaves the previous file intact, and an error leaves no temporary file.
 * The temporary file is unnamed (Linux's O_TMPFILE) where the file system
 * has such files, so that a crash leaves nothing behind either; elsewhere
 * it is named .lstm-tmp-XXXXXX (six random characters), a name no model
 * file is given, which a crash can leave: such files are safe to delete
 * whenever no save to that directory is running.
 *
 * A symbolic link at @p path is followed (a chain of up to 40): the file it
 * names is replaced and the link stays a link. A link that another user
 * owns in a sticky world-writable directory such as /tmp, and that the
 * directory's owner does not own either, is refused (LSTM_E_IO), as Linux's
 * fs.protected_symlinks refuses to open it: it may have been planted there
 * to point the save at the caller's files.
 *
 * The new file belongs to the caller. It keeps the permission bits of the
 * file it replaces but never its set-user-ID, set-group-ID or sticky bits;
 * a new file gets 0666 less the umask. An existing @p path that is not a
 * regular file (a directory, a FIFO, a device) is refused and left as it is.
 * An error's detail message gives the system's reason before the path.
 * @return LSTM_OK, LSTM_E_NULL, LSTM_E_NOMEM, LSTM_E_IO, or LSTM_E_NONFINITE
 *         as for lstm_model_save_buffer().
 */
LSTM_API lstm_status lstm_model_save(const lstm_model *model, const lstm_optim *optim,
                                     const char *path);

/**
 * @brief Serialise a model for inference in bf16 or int8: its W and W_hr
 *        as that precision runs them, 2x (bf16) or about 4x (int8) smaller
 *        than in float32; biases and peepholes in float32; no optimizer
 *        (format 1.2, section QTNS of docs/model-format.md).
 *
 * The weights are those lstm_workspace_set_precision() would pack: bf16
 * rounded to nearest even; int8 with one scale per row of W_h, of W_x and
 * of W_hr. A model loaded from such a file holds them as they are (and
 * their float32 values, q s or the bf16 values, as its parameters), so
 * inference in that precision gives the bits of the model that was saved,
 * and saving it again in that precision gives the same bytes, until its
 * parameters change. Anything that may change them ends that, as it ends
 * a kept packing (lstm_workspace_keep_weights()): lstm_model_init(),
 * lstm_model_set_params(), an optimizer's step, and taking the writable
 * view lstm_model_params(), even if nothing is written through it (read
 * them with lstm_model_get_params() instead). The model then runs, and is
 * saved, from its float32 values quantized again, which for a file written
 * elsewhere (PyTorch's q = -128, say) need not give the same bits.
 * @p precision LSTM_PRECISION_FP32 writes the model as
 * lstm_model_save_buffer() does without an optimizer. A network's
 * quantized file (lstm_network_save_quantized_buffer(), lstm/network.h)
 * holds its embedding and its head's W in the precision too (sections
 * EMBQ and HDQ , format 1.3), its biases in float32.
 * @return as lstm_model_save_buffer(); LSTM_E_ARG for a value that is not
 *         an lstm_precision; LSTM_E_NONFINITE also when a weight would
 *         overflow in the precision (|w| at least 0x1.ffp127 in bf16; a
 *         row's int8 scale s with 128 s beyond float32's range), which the
 *         loader would refuse.
 * Exported under the version node LSTM_1.6 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_save_quantized_buffer(const lstm_model *model,
                                                      lstm_precision precision, void *buffer,
                                                      size_t capacity, size_t *size);

/**
 * @brief lstm_model_save_quantized_buffer()'s file, saved atomically as
 *        lstm_model_save() saves.
 * Exported under the version node LSTM_1.6 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_save_quantized(const lstm_model *model, lstm_precision precision,
                                               const char *path);

/**
 * @brief Create a model from a model file's bytes. A network's file
 *        (lstm_network_save(), format 1.1) is checked whole, its network's
 *        sections included, and gives its LSTM stack alone.
 * @param out receives a new model (free with lstm_model_destroy()); untouched
 *            on failure.
 */
LSTM_API lstm_status lstm_model_load_buffer(const void *buffer, size_t size, lstm_model **out);

/**
 * @brief Create a model from a model file.
 *
 * A @p path that is not a regular file (a FIFO, a device, a directory) is
 * LSTM_E_IO at once: the load never waits for a FIFO's writer.
 */
LSTM_API lstm_status lstm_model_load(const char *path, lstm_model **out);

/**
 * @brief Restore an optimizer's state from a model file's bytes.
 *
 * The optimizer must have the kind, flags and bound sizes of the one that
 * was saved (bind the loaded model to it first). The whole file is
 * validated; on failure the optimizer is unchanged.
 * @return LSTM_E_FORMAT when the file holds no optimizer state.
 */
LSTM_API lstm_status lstm_optim_load_buffer(lstm_optim *optim, const void *buffer, size_t size);

/**
 * @brief Restore an optimizer's state from a model file (a regular file, as
 *        for lstm_model_load()), under the rules of lstm_optim_load_buffer().
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_optim_load(lstm_optim *optim, const char *path);

/** @brief The older name of lstm_optim_load() (LSTM_1.0), kept exported. */
LSTM_API lstm_status lstm_optim_load_file(lstm_optim *optim, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_IO_H */
