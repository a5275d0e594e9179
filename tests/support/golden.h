/*
 * Reader for the PyTorch golden files written by tests/parity/gen_golden.py.
 *
 * File format, version 1. All integers and floats are little-endian.
 *
 *     offset  size  field
 *          0     8  magic, the ASCII bytes "LSTMGOLD"
 *          8     4  uint32 version = 1
 *         12     4  uint32 flags (GOLDEN_HAS_*): which optional tensors follow
 *         16     4  uint32 T (seq_len)
 *         20     4  uint32 B (batch)
 *         24     4  uint32 I (input_size)
 *         28     4  uint32 H (hidden_size)
 *         32     4  uint32 n, count of float64 values that follow
 *         36     4  uint32 reserved, zero
 *         40   8*n  float64 tensors, row-major, in this order (optional ones
 *                   only when their flag is set):
 *                     W [4H][H+I], b [4H], x [T][B][I], h0 [B][H]?, c0 [B][H]?,
 *                     y [T][B][H], hT [B][H], cT [B][H],
 *                     dy [T][B][H]?, dhT [B][H]?, dcT [B][H]?,
 *                     dx [T][B][I], dh0 [B][H], dc0 [B][H], dW [4H][H+I], db [4H]
 *     40+8*n     4  uint32 CRC-32 (IEEE, as zlib.crc32) of every byte before it
 *
 * W, b, x, h0, c0, dy, dhT and dcT hold float32 values (the loader checks
 * that they convert to float exactly); the outputs and gradients are the
 * float64 reference. dh0 and dc0 are present even without h0/c0: they are
 * then the gradients with respect to the zero initial state.
 */
#ifndef LSTM_TESTS_GOLDEN_H
#define LSTM_TESTS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define GOLDEN_VERSION 1u

#define GOLDEN_HAS_H0 0x01u
#define GOLDEN_HAS_C0 0x02u
#define GOLDEN_HAS_DY 0x04u
#define GOLDEN_HAS_DHT 0x08u
#define GOLDEN_HAS_DCT 0x10u
#define GOLDEN_HAS_ALL 0x1Fu

/** Largest T, B, I or H the reader accepts; keeps every size product small. */
#define GOLDEN_MAX_DIM 65536u

typedef enum golden_status {
    GOLDEN_OK = 0,
    GOLDEN_E_ARG = 1,     /* NULL argument */
    GOLDEN_E_IO = 2,      /* cannot open or read the file */
    GOLDEN_E_NOMEM = 3,   /* allocation failed */
    GOLDEN_E_FORMAT = 4,  /* bad magic, version, flags, sizes or values */
    GOLDEN_E_SIZE = 5,    /* file shorter or longer than its header says */
    GOLDEN_E_CHECKSUM = 6 /* CRC-32 mismatch */
} golden_status;

/**
 * One golden case. Every pointer points into one allocation owned by the
 * case (released by golden_case_free()); absent optional tensors are NULL.
 */
typedef struct golden_case {
    size_t seq_len;     /* T */
    size_t batch;       /* B */
    size_t input_size;  /* I */
    size_t hidden_size; /* H */
    uint32_t flags;     /* GOLDEN_HAS_* */
    /* inputs */
    const double *W, *b, *x, *h0, *c0, *dy, *dhT, *dcT;
    /* reference outputs */
    const double *y, *hT, *cT, *dx, *dh0, *dc0, *dW, *db;
    double *storage; /* the allocation */
} golden_case;

/**
 * Parse a golden file image of @p size bytes. On success fills @p out (free
 * it with golden_case_free()); on failure @p out is zeroed and nothing is
 * allocated.
 */
golden_status golden_case_parse(const unsigned char *data, size_t size, golden_case *out);

/** Read and parse the file at @p path; same contract as golden_case_parse(). */
golden_status golden_case_load(const char *path, golden_case *out);

/** Release a case filled by a successful load; NULL and zeroed cases are fine. */
void golden_case_free(golden_case *gc);

/** Static text for a status. */
const char *golden_strerror(golden_status status);

/** Number of elements of each tensor shape of a case. */
size_t golden_case_weight_count(const golden_case *gc); /* 4H(H+I) */
size_t golden_case_x_count(const golden_case *gc);      /* T*B*I */
size_t golden_case_y_count(const golden_case *gc);      /* T*B*H */
size_t golden_case_state_count(const golden_case *gc);  /* B*H */

#endif /* LSTM_TESTS_GOLDEN_H */
