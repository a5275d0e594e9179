/**
 * @file lstm_mpi.h
 * @brief Data-parallel training of a liblstm model over MPI.
 *
 * Every rank holds a whole copy of the model (and of an optional dense
 * head) and trains it on its own share of each global batch. After each
 * backward pass the ranks average their gradients with MPI_Allreduce, so
 * every rank then holds the gradient of the whole global batch and takes
 * the same optimizer step: the copies stay identical, and the run computes
 * what one process training on the global batch would, up to float rounding.
 *
 * This works because a model's gradients are one contiguous float32 buffer
 * (lstm_model_grads(): every layer and direction, in the layout of
 * lstm/model.h), and a head's are another (lstm_dense_grads()): one
 * reduction per buffer, no packing.
 *
 * A training step, the same on every rank:
 *
 *     lstm_mpi_create(MPI_COMM_WORLD, model, head, &dp);   (once)
 *     lstm_mpi_shard(dp, B, &first, &rows);                (this rank's rows)
 *     ...
 *     lstm_optim_zero_grads(optim);
 *     lstm_model_train_forward(model, ws, &seq, &in, &out); (seq.batch = rows)
 *     ... head forward, loss (a mean over the rank's rows), head backward ...
 *     lstm_mpi_begin_step(dp, rows);       (the head's reduction starts)
 *     lstm_model_train_backward(model, ws, &grads, NULL);
 *     lstm_mpi_end_step(dp, optim);        (the LSTM's; every rank steps)
 *
 * Weighting: the losses of lstm/head.h are means over their rows, so each
 * rank's gradient is a mean over its own rows. lstm_mpi_begin_step() takes
 * the number of terms the rank's mean was over (its weight w_r) and each
 * rank's gradient is scaled by w_r / sum(w) before the sum: the result is
 * the mean over the global batch, also when the batch does not split evenly
 * or when a loss ignores some targets.
 *
 * Overlap: the head's gradients are complete before
 * lstm_model_train_backward() starts, so their reduction is started
 * (MPI_Iallreduce) in lstm_mpi_begin_step() and runs while the LSTM's
 * backward does. The LSTM's own gradients are reduced in one call after its
 * backward, because lstm_model_train_backward() has no per-layer hook. How
 * far a non-blocking reduction advances on its own is up to the MPI
 * library; Open MPI moves it on inside MPI calls, so most of it completes
 * in lstm_mpi_end_step().
 *
 * Failures: a call either fails on every rank with the same status, or (a
 * NULL argument, a call out of order, an allocation before any
 * communication) on its own rank before it communicates, when the other
 * ranks wait for it in vain: the program must then call MPI_Abort(), which
 * ends every rank. MPI errors on the context's communicator are returned
 * (MPI_ERRORS_RETURN) as LSTM_E_IO instead of aborting inside the library.
 * A rank that dies makes the MPI runtime (mpirun) end the others.
 *
 * Threads: only the thread that calls these functions uses MPI, so
 * MPI_THREAD_FUNNELED suffices even while liblstm and the BLAS run their
 * own threads. Set the BLAS to one thread per rank when the ranks share
 * the machine's cores (OPENBLAS_NUM_THREADS=1).
 *
 * This component is built only with MPI and is not installed: its ABI would
 * depend on the MPI implementation (MPI_Comm is an int in MPICH and a
 * pointer in Open MPI). It uses nothing but liblstm's public API, so its two
 * files can be copied into a program and built with that program's mpicc.
 */
#ifndef LSTM_MPI_H
#define LSTM_MPI_H

#include <stddef.h>

#include <mpi.h>

#include <lstm/lstm.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque data-parallel context: a communicator and the buffers it reduces. */
typedef struct lstm_mpi lstm_mpi;

/**
 * @brief Bind a model and an optional head to the ranks of a communicator,
 *        and give every rank rank 0's parameters. Collective.
 *
 * The ranks' models must have the same sizes, layers, directions, projection
 * and peepholes, and either all have a head of the same size or none has:
 * else every rank gets LSTM_E_SHAPE. Then rank 0's parameters (model and
 * head) are broadcast to all; gradients are not touched. An optimizer
 * created before this call has its fresh state, the same on every rank.
 *
 * @param comm  the ranks that train together; duplicated, so the caller's
 *              communicator can be freed or used for other traffic.
 * @param model not NULL; must outlive the context.
 * @param head  a dense layer after the model, or NULL.
 * @param out   receives the context, freed with lstm_mpi_destroy().
 * @return LSTM_OK, LSTM_E_NULL, LSTM_E_NOMEM, LSTM_E_SHAPE or LSTM_E_IO.
 */
lstm_status lstm_mpi_create(MPI_Comm comm, lstm_model *model, lstm_dense *head, lstm_mpi **out);

/**
 * @brief Free a context and its communicator; call it on every rank before
 *        MPI_Finalize(). NULL is accepted.
 */
void lstm_mpi_destroy(lstm_mpi *dp);

/**
 * @brief This rank's rows of a global batch of B rows: [first, first + count).
 *
 * Rows are split in contiguous ranges as evenly as possible: the first
 * B mod size ranks get one row more. A rank gets no rows when B < size; it
 * still calls lstm_mpi_begin_step() with weight 0 and lstm_mpi_end_step().
 * In batch-major layout (LSTM_BATCH_FIRST, or lstm_sequences.layout
 * LSTM_LAYOUT_BATCH_MAJOR) a rank's sequences are one contiguous slice of
 * the global batch's x.
 *
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_SIZE for B = 0.
 */
lstm_status lstm_mpi_shard(const lstm_mpi *dp, size_t global_batch, size_t *first, size_t *count);

/**
 * @brief Start averaging the head's gradients over the ranks. Collective.
 *
 * Call it when the head's gradients are complete (after lstm_dense_backward())
 * and before lstm_model_train_backward(), so that the two overlap; without a
 * head, anywhere before lstm_mpi_end_step(). Every rank's gradients (head and
 * model) are scaled by w_r / sum(w), the head's at once, the model's in
 * lstm_mpi_end_step(): the head's buffer must not be read or written until
 * then.
 *
 * @param weight w_r: how many terms this rank's loss averaged over (its
 *               rows, or its targets not ignored); 0 when it had none.
 * @return LSTM_OK; LSTM_E_STATE when a step is already begun; LSTM_E_ARG on
 *         every rank when all weights are 0; LSTM_E_IO.
 */
lstm_status lstm_mpi_begin_step(lstm_mpi *dp, size_t weight);

/**
 * @brief Finish the step: average the model's gradients over the ranks,
 *        wait for the head's, then step the optimizer. Collective.
 *
 * Afterwards every rank holds the same gradients, those of the global
 * batch, so the same optimizer step gives the same parameters on every
 * rank. A non-finite gradient on any rank reaches every rank, so
 * lstm_optim_step() then fails with LSTM_E_NONFINITE on all of them alike.
 *
 * @param optim bound to the model (and head); stepped when not NULL. Pass
 *              NULL to clip or inspect the averaged gradients first, then
 *              call lstm_optim_step() on every rank.
 * @return LSTM_OK; LSTM_E_STATE without lstm_mpi_begin_step(); LSTM_E_IO;
 *         or the status of lstm_optim_step().
 */
lstm_status lstm_mpi_end_step(lstm_mpi *dp, lstm_optim *optim);

/**
 * @brief Checkpoint: rank 0 saves the model, and the optimizer's state when
 *        optim is not NULL, with lstm_model_save() (docs/model-format.md).
 *        Collective: every rank returns rank 0's status and message.
 *
 * The file holds the LSTM, not the head; the head's parameters are the
 * program's to save (lstm_dense_params()). The copies are the same on every
 * rank, so any rank's file would do; one writer avoids n copies racing for
 * one path on a shared file system.
 *
 * @param optim the optimizer whose state to include, or NULL; read on rank 0.
 * @param path  read on rank 0 only; other ranks may pass NULL.
 * @return LSTM_OK or the status of lstm_model_save() on rank 0; LSTM_E_IO.
 */
lstm_status lstm_mpi_save(lstm_mpi *dp, const lstm_optim *optim, const char *path);

/**
 * @brief Detail message of the most recent failing lstm_mpi_* call on this
 *        thread, with the liblstm message when a liblstm call failed inside;
 *        "" when none failed. Never NULL.
 */
const char *lstm_mpi_error_message(void);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_MPI_H */
