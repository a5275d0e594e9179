/*
 * The one reader of the golden files, the PyTorch reference data that
 * tests/parity/gen_*.py write (each documents its format in its
 * docstring). Three binary formats, each the data of a different kind of
 * case, sharing everything else: a magic and version 1, little-endian
 * uint32 fields, float64 tensors in a fixed order whose inputs must hold
 * exact float32 values, an exact file length and a trailing CRC.
 *
 *   "LSTMNETG"  one forward and backward pass of a network of any shape:
 *               tests/parity/golden/NAME.bin (gen_golden.py: one layer) and
 *               golden/network/NAME.bin (gen_network_golden.py), read by
 *               network_golden_load().
 *   "LSTMTBPT"  a series trained in chunks, truncated BPTT:
 *               golden/tbptt/NAME.bin (gen_tbptt_golden.py), tbptt_golden_load().
 *   "LSTMCVTX"  a converted model's expected outputs:
 *               golden/convert/NAME.expected (gen_convert_golden.py),
 *               convert_golden_load().
 *
 * (golden/head/head_golden.h and golden/optim_golden.h are C data,
 * compiled into their tests: nothing to read.)
 *
 * Every loader fills its struct on success, owns every array it points to
 * (released by the matching _free(), which takes NULL and zeroed structs)
 * and on failure leaves the struct zeroed with nothing allocated.
 */
#ifndef LSTM_TESTS_GOLDEN_H
#define LSTM_TESTS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum golden_status {
    GOLDEN_OK = 0,
    GOLDEN_E_ARG = 1,     /* NULL argument */
    GOLDEN_E_IO = 2,      /* cannot open or read the file */
    GOLDEN_E_NOMEM = 3,   /* allocation failed */
    GOLDEN_E_FORMAT = 4,  /* bad magic, version, flags, sizes, lengths or values */
    GOLDEN_E_SIZE = 5,    /* file shorter or longer than its header says */
    GOLDEN_E_CHECKSUM = 6 /* CRC mismatch */
} golden_status;

/** Static text for a status. */
const char *golden_strerror(golden_status status);

/** Largest T, B, I, H or P the readers accept; keeps every size product small. */
#define GOLDEN_MAX_DIM 65536u
/** Largest L the readers accept. */
#define GOLDEN_MAX_LAYERS 64u

/**
 * The whole file at @p path in a new malloc'd buffer (free() it); files
 * above 1 GiB are refused (GOLDEN_E_SIZE). *data is NULL on failure.
 */
golden_status golden_read_file(const char *path, unsigned char **data, size_t *size);

/* ---- LSTMNETG ------------------------------------------------------------
 *
 * File format "LSTMNETG", version 1. All integers and floats are
 * little-endian.
 *
 *     offset  size  field
 *          0     8  magic, the ASCII bytes "LSTMNETG"
 *          8     4  uint32 version = 1
 *         12     4  uint32 flags (NETWORK_GOLDEN_HAS_*): which optional parts follow
 *         16     4  uint32 config flags, as lstm_config.flags
 *                   (bit 0 bidirectional, bit 1 batch first)
 *         20     4  uint32 T (seq_len)
 *         24     4  uint32 B (batch)
 *         28     4  uint32 I (input_size)
 *         32     4  uint32 H (hidden_size)
 *         36     4  uint32 L (num_layers)
 *         40     4  uint32 P (proj_size; 0 = none, else < H)
 *         44     4  uint32 n, count of float64 values that follow
 *         48     m  lengths: B uint32 values in [1, T] (any order) and 4 zero
 *                   bytes when B is odd, only with NETWORK_GOLDEN_HAS_LENGTHS;
 *                   m = 0 without it
 *       48+m   8*n  float64 tensors, row-major, in this order (optional ones
 *                   only when their flag is set), with D = 2 if bidirectional
 *                   else 1, R = P if P > 0 else H:
 *                     params [N], x [T][B][I], h0 [LD][B][R]?, c0 [LD][B][H]?,
 *                     y [T][B][DR], hT [LD][B][R], cT [LD][B][H],
 *                     dy [T][B][DR]?, dhT [LD][B][R]?, dcT [LD][B][H]?,
 *                     dx [T][B][I], dh0 [LD][B][R], dc0 [LD][B][H], grads [N]
 *                   x, y, dy, dx are [B][T][...] with the batch-first flag.
 *   48+m+8*n     4  uint32 CRC-32 (IEEE, as zlib.crc32) of every byte before it
 *
 * params and grads are in liblstm's flat layout (include/lstm/model.h): per
 * (layer, direction) in the order (0, fwd), (0, rev), (1, fwd), ...:
 * W [4H][R + I_l] = [weight_hh | weight_ih], b [4H] = bias_ih + bias_hh,
 * then W_hr [P][H] when P > 0; I_0 = I, I_l = D R for l > 0.
 * network_golden_tensor() locates each of them by that rule. With one
 * layer, one direction and no projection (gen_golden.py's cases), params
 * is W [4H][H + I] followed by b [4H], and grads dW then db.
 *
 * params, x, h0, c0, dy, dhT and dcT hold float32 values (the loader checks
 * that they convert to float exactly); the outputs and gradients are the
 * float64 reference. dh0 and dc0 are present even without h0/c0: they are
 * then the gradients with respect to the zero initial state. With lengths,
 * the padding of x and dy (past each sequence's end) holds large finite
 * garbage that must be ignored, and the padding of y and dx is zero.
 */

#define NETWORK_GOLDEN_HAS_H0 0x01u
#define NETWORK_GOLDEN_HAS_C0 0x02u
#define NETWORK_GOLDEN_HAS_DY 0x04u
#define NETWORK_GOLDEN_HAS_DHT 0x08u
#define NETWORK_GOLDEN_HAS_DCT 0x10u
#define NETWORK_GOLDEN_HAS_LENGTHS 0x20u
#define NETWORK_GOLDEN_HAS_ALL 0x3Fu

/* Config flags, the values of LSTM_BIDIRECTIONAL and LSTM_BATCH_FIRST. */
#define NETWORK_GOLDEN_BIDIRECTIONAL 0x1u
#define NETWORK_GOLDEN_BATCH_FIRST 0x2u
#define NETWORK_GOLDEN_CONFIG_ALL 0x3u

/** The tensors of one layer and direction, for network_golden_tensor(). */
typedef enum network_golden_tensor_kind {
    NETWORK_GOLDEN_WEIGHT = 0,    /* W, 4H x (R + I_l) */
    NETWORK_GOLDEN_BIAS = 1,      /* b, 4H x 1 */
    NETWORK_GOLDEN_PROJECTION = 2 /* W_hr, P x H */
} network_golden_tensor_kind;

/** One LSTMNETG case; absent optional parts are NULL. */
typedef struct network_golden {
    size_t seq_len;        /* T */
    size_t batch;          /* B */
    size_t input_size;     /* I */
    size_t hidden_size;    /* H */
    size_t num_layers;     /* L */
    size_t proj_size;      /* P, 0 for none */
    uint32_t flags;        /* NETWORK_GOLDEN_HAS_* */
    uint32_t config_flags; /* NETWORK_GOLDEN_BIDIRECTIONAL | NETWORK_GOLDEN_BATCH_FIRST */
    /* derived */
    size_t directions;     /* D */
    size_t state_size;     /* R */
    size_t param_count;    /* N */
    const size_t *lengths; /* B values, or NULL */
    /* inputs */
    const double *params, *x, *h0, *c0, *dy, *dhT, *dcT;
    /* reference outputs */
    const double *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
    double *storage;        /* the float64 allocation */
    size_t *length_storage; /* the lengths allocation */
} network_golden;

/** Parse an LSTMNETG file image of @p size bytes. */
golden_status network_golden_parse(const unsigned char *data, size_t size, network_golden *out);

/** Read and parse the file at @p path; same contract as network_golden_parse(). */
golden_status network_golden_load(const char *path, network_golden *out);

/** Release a case; NULL and zeroed cases are fine. */
void network_golden_free(network_golden *gc);

/**
 * Where a tensor of (layer, direction) lives in params and grads, by the
 * documented layout rule (computed here, independently of the library).
 * Returns 0 on success, -1 for a layer, direction or tensor the case does
 * not have. @p rows and @p cols may be NULL.
 */
int network_golden_tensor(const network_golden *gc, size_t layer, size_t direction,
                          network_golden_tensor_kind kind, size_t *offset, size_t *rows,
                          size_t *cols);

/** Input width of layer @p layer: I for layer 0, D R above. */
size_t network_golden_layer_input(const network_golden *gc, size_t layer);

/** Element counts: x (T B I), y (T B D R), h states (L D B R), c states (L D B H). */
size_t network_golden_x_count(const network_golden *gc);
size_t network_golden_y_count(const network_golden *gc);
size_t network_golden_h_count(const network_golden *gc);
size_t network_golden_c_count(const network_golden *gc);

/* ---- LSTMTBPT ------------------------------------------------------------
 *
 * Format in tests/parity/gen_tbptt_golden.py: after the magic and version,
 * config flags (bit 1 batch first), T, B, I, H, L, P, the chunk count K,
 * K chunk lengths summing to T, the float64 count and the tensors below,
 * then a CRC-32. Unidirectional networks; R = P if P > 0 else H; x, dy, y
 * and dx are [B][T][...] with batch first.
 */

/** One LSTMTBPT case. */
typedef struct tbptt_golden {
    size_t T, B, I, H, L, P, R, N, K; /* R the state size, N the parameter count */
    int batch_first;
    size_t *chunks;       /* K lengths */
    double *storage;      /* every tensor below points into it */
    const double *params; /* [N], float32 values */
    const double *x;      /* [T][B][I], float32 values */
    const double *dy;     /* [T][B][R], float32 values */
    const double *hs;     /* [K+1][L][B][R]: h at each chunk boundary, hs[0] = h0 (float32) */
    const double *cs;     /* [K+1][L][B][H]: likewise for c */
    const double *y;      /* [T][B][R], every chunk's, in series order */
    const double *dx;     /* [T][B][I], likewise */
    const double *dh0;    /* [K][L][B][R]: gradient w.r.t. each chunk's initial h */
    const double *dc0;    /* [K][L][B][H]: likewise for c */
    const double *grads;  /* [K][N]: accumulated parameter gradients after each chunk */
} tbptt_golden;

/** Parse an LSTMTBPT file image of @p size bytes. */
golden_status tbptt_golden_parse(const unsigned char *data, size_t size, tbptt_golden *out);

/** Read and parse the file at @p path; same contract as tbptt_golden_parse(). */
golden_status tbptt_golden_load(const char *path, tbptt_golden *out);

/** Release a case; NULL and zeroed cases are fine. */
void tbptt_golden_free(tbptt_golden *g);

/* ---- LSTMCVTX ------------------------------------------------------------
 *
 * Format in tests/parity/gen_convert_golden.py: after the magic and
 * version, flags (as lstm_config.flags: bidirectional, batch first), T, B,
 * I, H, L, P; then the inputs in float32 and PyTorch's outputs in float64,
 * in the layouts of include/lstm/model.h; then a CRC-32C (the model
 * format's, not the CRC-32 of the other two).
 */

/** One LSTMCVTX file: the input a converted model is run on and PyTorch's outputs. */
typedef struct convert_golden {
    uint32_t flags;
    size_t seq_len, batch, input_size, hidden_size, num_layers, proj_size;
    size_t directions, state_size;
    size_t x_count, h_count, c_count, y_count;
    float *x, *h0, *c0;  /* into float_storage */
    double *y, *hT, *cT; /* into double_storage */
    float *float_storage;
    double *double_storage;
} convert_golden;

/** Parse an LSTMCVTX file image of @p size bytes. */
golden_status convert_golden_parse(const unsigned char *data, size_t size, convert_golden *out);

/** Read and parse the file at @p path; same contract as convert_golden_parse(). */
golden_status convert_golden_load(const char *path, convert_golden *out);

/** Release a case; NULL and zeroed cases are fine. */
void convert_golden_free(convert_golden *e);

#endif /* LSTM_TESTS_GOLDEN_H */
