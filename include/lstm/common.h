/**
 * @file lstm/common.h
 * @brief Export macro, status codes and error reporting shared by every
 *        module, and the rules every module follows on threads,
 *        determinism and NaN or infinity.
 *
 * @par Threads
 * Handles carry no locks. A handle may be used by any number of threads at
 * once as long as all of them only read it; a call that writes a handle
 * needs it to itself. Each call's documentation says which of its handles
 * it only reads (they are const). In practice:
 *  - Shared: a model, for lstm_model_infer(), lstm_model_train_forward(),
 *    lstm_model_infer_stream(), lstm_model_step(), lstm_model_train_chunk(),
 *    lstm_workspace_create(), lstm_state_create(), saving and the getters; a
 *    dense layer, for lstm_dense_forward(); an embedding layer, for
 *    lstm_embedding_forward(). Nothing may write them meanwhile:
 *    not lstm_model_set_params(), lstm_model_init(), lstm_model_train_backward()
 *    (it writes the gradients), an optimizer step, or a write through
 *    lstm_model_params().
 *  - One thread at a time: a workspace, a state, an optimizer together with
 *    the buffers bound to it. They may move between threads.
 *  - Any thread, any time: lstm_strerror(), the losses (the CTC calls of
 *    lstm/ctc.h too), the schedules,
 *    lstm_sequence_last(), the version calls. lstm_error_message() is kept
 *    per thread.
 * The library has no other mutable global state (an allocation counter,
 * the counter that numbers the models' parameter generations, and the CRC
 * table built once). A workspace runs its per-step products on
 * its own pool of worker threads, as many as the BLAS is set to use; the
 * BLAS's thread count is process-wide and belongs to the BLAS (for
 * OpenBLAS, OPENBLAS_NUM_THREADS or openblas_set_num_threads(), set while
 * no call runs). N threads each running a workspace therefore keep N times
 * that many threads busy: with many callers, set the BLAS to 1 thread. An
 * optimizer that uses threads (lstm_optim_options.threads) keeps a pool of
 * its own, started once, not at each step.
 *
 * @par Determinism
 * The same calls, with the same seeds, inputs and BLAS thread count, give
 * the same bits from run to run and from process to process: no result
 * depends on thread scheduling, memory addresses or previous calls (the
 * workspaces' and the optimizers' pools split work into fixed ranges, each
 * element computed by one thread). The LSTM (inference and training, weight
 * gradients included) and the optimizers do not depend on the thread count
 * at all, nor on the BLAS: their products run on the library's own kernel,
 * which sums every element in a fixed order. The dense layer's products are
 * BLAS calls, whose sums a BLAS may order differently for another thread
 * count. What changes the bits: the BLAS library, its version and its
 * thread count (dense layers only), and the CPU (the LSTM's products and
 * activations use FMA where the CPU has it).
 * A library built with LSTM_STEP_PRODUCTS=blas (a CMake option, and the
 * default on CPUs other than x86-64, for which the library has no kernel
 * of its own) runs the LSTM's products on the BLAS too, one SGEMM each,
 * summed in the BLAS's order. There the LSTM's bits also depend on the
 * BLAS, its version and its thread count (OpenBLAS 0.3.21 blocks the sums
 * of some depths differently on more threads), and a sequence's last bits
 * may differ with the batch it runs in, between inference and training,
 * and between a whole-sequence call and a state run chunk by chunk
 * (lstm_state). With the same BLAS and thread count they stay the same
 * from run to run and from process to process, as the BLAS's do.
 *
 * @par NaN and infinity
 *  - Inputs are checked where they enter: every float array a call reads
 *    from the caller (x where a sequence runs, h0, c0, dy, dhT, dcT, a
 *    state's h and c, the values of lstm_model_set_params(), a dense
 *    layer's x and dz, an embedding layer's dout, the rows
 *    lstm_sequence_last() gathers and dlast, the losses' inputs, an
 *    optimizer state) is scanned before anything is written. NaN or
 *    infinity gives LSTM_E_NONFINITE, with the array and index in
 *    lstm_error_message(), and changes nothing. Padding past a sequence's
 *    end is never read and may hold anything. Model files with NaN or
 *    infinity are refused with LSTM_E_FORMAT.
 *  - Parameters written through the views (lstm_model_params(),
 *    lstm_dense_params(), lstm_embedding_params(), buffers bound to an
 *    optimizer) are not checked: that would scan every parameter on every
 *    call. A NaN or infinity there propagates as IEEE arithmetic takes
 *    it, and the calls still return LSTM_OK: outputs, states and gradients
 *    become NaN where it reaches, until the next call that checks its
 *    input (a dense layer, a loss) refuses them.
 *  - Gradients are checked before they are used: lstm_optim_clip_grad_norm()
 *    and lstm_optim_clip_grad_value() return LSTM_E_NONFINITE and change
 *    nothing when a bound gradient is NaN or infinite; lstm_optim_step()
 *    does so whenever any value it would store, parameter or optimizer
 *    state, would be NaN or infinite: a non-finite gradient or parameter,
 *    and finite values that would overflow (a gradient beyond about 1e19
 *    squared into Adam's second moment, a momentum past FLT_MAX). A bad
 *    value never reaches a parameter through training; zero or clip the
 *    gradients, or restore the parameters, to go on.
 *  - Saving writes finite values only: lstm_model_save(),
 *    lstm_model_save_buffer() and lstm_optim_save_state() return
 *    LSTM_E_NONFINITE and write nothing when a parameter or an optimizer
 *    state value is NaN or infinite, since loading would refuse it.
 *  - Outside the optimizer, overflow of finite values is not checked.
 *    Values near FLT_MAX can overflow a product into infinity or NaN,
 *    which then propagates as above; sigmoid and tanh take any
 *    pre-activation, infinite ones included, to their exact limits.
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
    LSTM_OK = 0,          /**< Success. */
    LSTM_E_NULL = 1,      /**< A required pointer argument is NULL. */
    LSTM_E_SIZE = 2,      /**< A size is zero or above its documented limit. */
    LSTM_E_OVERFLOW = 3,  /**< A product of sizes overflows size_t or the BLAS index range. */
    LSTM_E_SHAPE = 4,     /**< Shapes or buffer lengths disagree. */
    LSTM_E_ARG = 5,       /**< An argument value is invalid (unknown flag, mode or struct size). */
    LSTM_E_NONFINITE = 6, /**< An input, gradient or value to save holds NaN or infinity
                               (see "NaN and infinity" above). */
    LSTM_E_NOMEM = 7,     /**< Memory allocation failed. */
    LSTM_E_STATE =
        8, /**< The call is out of order (for example backward without a training forward). */
    LSTM_E_IO = 9, /**< Reading or writing a file failed (the message gives the system's reason). */
    LSTM_E_FORMAT = 10, /**< A model file or buffer is truncated, corrupted or not a model file. */
    LSTM_E_UNSUPPORTED = 11, /**< A model file needs a feature this version does not have. */
    LSTM_E_NOT_FOUND = 12    /**< What was asked for (a metadata key) is not there. */
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
