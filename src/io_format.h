/*
 * Model files (docs/model-format.md), shared by io.c, which frames the file
 * and holds the LSTM's sections and the public calls, and io_network.c,
 * which holds a network's sections (NETW, EMBD or EMBQ, HEAD or HDQ , META):
 * the writer, the sections' framing, and what the reader keeps of a
 * network's sections.
 */
#ifndef LSTM_IO_FORMAT_H
#define LSTM_IO_FORMAT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "crc32c.h"
#include "error.h"
#include "lowp.h"
#include "model_internal.h"
#include "network_internal.h"

enum {
    SECTION_OVERHEAD = 20, /* tag, flags, length; then the CRC */
    REQUIRED = 1           /* the section flag of sections a reader must know */
};

/* Whether a weight w overflows float32 in a precision, so that the loader
 * would refuse its file: a bf16 rounding of at least 0x1.ffp127 is
 * infinite; an int8 row whose largest weight is near FLT_MAX has a scale s
 * with 128 s infinite. */
static inline bool overflows_in(lstm_precision precision, float w)
{
    const float magnitude = w < 0.0f ? -w : w;
    return precision == LSTM_PRECISION_BF16 ? (lstm__lowp_bf16(w) & 0x7f80u) == 0x7f80u
                                            : !isfinite(128.0f * (magnitude / 127.0f));
}

/* ---- writing -------------------------------------------------------------- */

typedef struct writer {
    unsigned char *out; /* NULL: only count */
    size_t size;
} writer;

static inline void emit(writer *w, const void *bytes, size_t count)
{
    if (w->out != NULL && count != 0)
        memcpy(w->out + w->size, bytes, count);
    w->size += count;
}

/* count float32 values, little-endian. */
static inline void emit_floats(writer *w, const float *values, size_t count)
{
    if (w->out != NULL)
        for (size_t k = 0; k < count; k++)
            put_f32(w->out + w->size + 4 * k, values[k]);
    w->size += 4 * count;
}

/* Starts a section; returns where it starts, for section_end(). */
static inline size_t section_begin(writer *w, const char tag[4], uint32_t flags, uint64_t length)
{
    unsigned char head[16];
    memcpy(head, tag, 4);
    put_u32(head + 4, flags);
    put_u64(head + 8, length);
    size_t start = w->size;
    emit(w, head, sizeof head);
    return start;
}

static inline void section_end(writer *w, size_t start)
{
    unsigned char crc[4];
    if (w->out != NULL)
        put_u32(crc, lstm__crc32c(0, w->out + start, w->size - start));
    else
        memset(crc, 0, sizeof crc);
    emit(w, crc, sizeof crc);
}

/* ---- a network's sections ------------------------------------------------- */

/*
 * A network's sections as the reader found them, each checked alone and
 * against the configuration read before it; they point into the file's
 * bytes. lstm__network_sections_check() checks them together at END.
 */
typedef struct network_sections {
    bool have_netw;                         /* NETW read */
    uint32_t input, head, loss;             /* NETW's; 0 without it */
    size_t head_size;                       /* NETW's O */
    const unsigned char *embedding;         /* EMBD's or EMBQ's values [V][E], or NULL */
    lstm_precision embedding_precision;     /* FP32 (EMBD), or EMBQ's */
    lstm_embedding_config embedding_config; /* EMBD's, padding_idx in [0, V) */
    size_t embedding_at;                    /* EMBD's offset in the file */
    const unsigned char *head_values;       /* HEAD's or HDQ's W [O][K] then b [O], or NULL */
    lstm_precision head_precision;          /* FP32 (HEAD), or HDQ's */
    size_t head_out;                        /* HEAD's O */
    size_t head_at;                         /* HEAD's offset in the file */
    const unsigned char **meta;             /* the META payloads, in the file's order */
    size_t meta_count, meta_capacity;
} network_sections;

/* Whether a section's tag is one of a network's. */
bool lstm__network_section_known(const unsigned char *section);

/* Reads and checks the network's section at section (a known tag; its
 * length checked against the file, its CRC checked), at byte at of the
 * file; shape is the configuration read before it, *precision that of the
 * file's quantized sections read before it (FP32 when none), which an EMBQ
 * or HDQ  must share, or sets. */
lstm_status lstm__network_section_read(network_sections *sections, const lstm_model *shape,
                                       lstm_precision *precision, const unsigned char *section,
                                       size_t at);

/* The rules between sections, once END is reached: EMBD iff token input,
 * HEAD iff a head, of NETW's head_size. */
lstm_status lstm__network_sections_check(const network_sections *sections);

void lstm__network_sections_free(network_sections *sections);

/* A network from checked sections and its LSTM's configuration: every part
 * but the LSTM's parameters (which the caller writes) taken from the file,
 * an EMBQ's or HDQ 's int8 rows also as stored (network_internal.h).
 * Nothing is created on failure. */
lstm_status lstm__network_sections_create(const network_sections *sections, const lstm_config *lstm,
                                          lstm_network **out);

/* LSTM_E_NONFINITE when the embedding or the head holds NaN or infinity,
 * or (in a reduced precision) a value the precision overflows on
 * (overflows_in()): the loader would refuse the file. */
lstm_status lstm__network_check_finite(const lstm_network *network, lstm_precision precision);

/* Whether a network's file in the precision holds EMBQ or HDQ  (the
 * network has an embedding or a head, and the precision is reduced). */
bool lstm__network_quantizes(const lstm_network *network, lstm_precision precision);

/* The sections that come before the tensors (NETW, EMBD or EMBQ) and after
 * them (HEAD or HDQ , META), the embedding and the head's W in the
 * precision (network_lowp.h). */
void lstm__network_write_front(writer *w, const lstm_network *network, lstm_precision precision);
void lstm__network_write_back(writer *w, const lstm_network *network, lstm_precision precision);

#endif /* LSTM_IO_FORMAT_H */
