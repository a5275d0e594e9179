/*
 * Reader for the PyTorch golden files of multi-layer, bidirectional,
 * projected, batch-first and variable-length networks, written by
 * tests/parity/gen_network_golden.py (a separate format from tests/support/golden.h).
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
 * network_golden_tensor() locates each of them by that rule.
 *
 * params, x, h0, c0, dy, dhT and dcT hold float32 values (the loader checks
 * that they convert to float exactly); the outputs and gradients are the
 * float64 reference. dh0 and dc0 are present even without h0/c0: they are
 * then the gradients with respect to the zero initial state. With lengths,
 * the padding of x and dy (past each sequence's end) holds large finite
 * garbage that must be ignored, and the padding of y and dx is zero.
 */
#ifndef LSTM_TESTS_NETWORK_GOLDEN_H
#define LSTM_TESTS_NETWORK_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define NETWORK_GOLDEN_VERSION 1u

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

/** Largest T, B, I, H or P the reader accepts; keeps every size product small. */
#define NETWORK_GOLDEN_MAX_DIM 65536u
/** Largest L the reader accepts. */
#define NETWORK_GOLDEN_MAX_LAYERS 64u

typedef enum network_golden_status {
    NETWORK_GOLDEN_OK = 0,
    NETWORK_GOLDEN_E_ARG = 1,     /* NULL argument */
    NETWORK_GOLDEN_E_IO = 2,      /* cannot open or read the file */
    NETWORK_GOLDEN_E_NOMEM = 3,   /* allocation failed */
    NETWORK_GOLDEN_E_FORMAT = 4,  /* bad magic, version, flags, sizes, lengths or values */
    NETWORK_GOLDEN_E_SIZE = 5,    /* file shorter or longer than its header says */
    NETWORK_GOLDEN_E_CHECKSUM = 6 /* CRC-32 mismatch */
} network_golden_status;

/** The tensors of one layer and direction, for network_golden_tensor(). */
typedef enum network_golden_tensor_kind {
    NETWORK_GOLDEN_WEIGHT = 0,    /* W, 4H x (R + I_l) */
    NETWORK_GOLDEN_BIAS = 1,      /* b, 4H x 1 */
    NETWORK_GOLDEN_PROJECTION = 2 /* W_hr, P x H */
} network_golden_tensor_kind;

/**
 * One golden case. Every pointer points into allocations owned by the case
 * (released by network_golden_free()); absent optional parts are NULL.
 */
typedef struct network_golden {
    size_t seq_len;       /* T */
    size_t batch;         /* B */
    size_t input_size;    /* I */
    size_t hidden_size;   /* H */
    size_t num_layers;    /* L */
    size_t proj_size;     /* P, 0 for none */
    uint32_t flags;       /* NETWORK_GOLDEN_HAS_* */
    uint32_t config_flags; /* NETWORK_GOLDEN_BIDIRECTIONAL | NETWORK_GOLDEN_BATCH_FIRST */
    /* derived */
    size_t directions;    /* D */
    size_t state_size;    /* R */
    size_t param_count;   /* N */
    const size_t *lengths; /* B values, or NULL */
    /* inputs */
    const double *params, *x, *h0, *c0, *dy, *dhT, *dcT;
    /* reference outputs */
    const double *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
    double *storage;      /* the float64 allocation */
    size_t *length_storage; /* the lengths allocation */
} network_golden;

/**
 * Parse a golden file image of @p size bytes. On success fills @p out (free
 * it with network_golden_free()); on failure @p out is zeroed and nothing
 * is allocated.
 */
network_golden_status network_golden_parse(const unsigned char *data, size_t size,
                                           network_golden *out);

/** Read and parse the file at @p path; same contract as network_golden_parse(). */
network_golden_status network_golden_load(const char *path, network_golden *out);

/** Release a case filled by a successful load; NULL and zeroed cases are fine. */
void network_golden_free(network_golden *gc);

/** Static text for a status. */
const char *network_golden_strerror(network_golden_status status);

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

#endif /* LSTM_TESTS_NETWORK_GOLDEN_H */
