/*
 * speech.c: recognise spoken digit strings ("two nine three four zero")
 * from MFCC features with a bidirectional LSTM trained by connectionist
 * temporal classification (CTC), against a dynamic-time-warping baseline.
 *
 * Data (bash examples/data/fetch.sh speech; examples/data/synthesize-speech.sh):
 *   TRAINING IS SYNTHETIC. No recordings of many speakers are reachable, so
 *   the training audio is espeak-ng (6 English accents x 8 voice variants,
 *   3 speeds, 3 pitches) saying 2000 seeded random strings of 1-7 digits
 *   (zero, oh, one .. nine) plus every word once per voice, with sox tempo
 *   changes and noise. Held-out test sets, voices never heard in training:
 *     test-espeak  2 other espeak-ng accents (Caribbean, West Midlands) with
 *                  other variants (m2, m6, f2, f4, klatt3)
 *     test-awb, test-rms, test-slt, test-kal   flite's English voices
 *     tidigits     31 real TIDIGITS strings of 2 speakers (man.ah, woman.ak)
 *                  as Debian's pocketsphinx-testdata ships them: MFCC files
 *                  with transcripts. The only real speech here, and small.
 *   Every feature file comes from the same front end, sphinx_fe with the
 *   TIDIGITS model's feat.params (13 cepstra, 100 frames/s). The program
 *   reads examples/data's manifest.tsv and applies cepstral mean
 *   normalisation per utterance, then divides each coefficient by its
 *   standard deviation over the training frames (kept in the model file).
 *
 * Model: 3 frames stacked per step (39 inputs, 33 steps/s) -> bidirectional
 * LSTM, 2 layers -> a dense head on every step over 12 classes (the CTC
 * blank and the 11 words) -> CTC loss (lstm_ctc_loss, given to the network
 * as d loss / d logits with LSTM_LOSS_NONE). Adam, gradient norm clipped,
 * cosine learning-rate decay, dropout 0.2 between the layers. Training
 * batches are augmented to vary the voices further: a random speed (frames
 * resampled by 0.8-1.25), a random gain per coefficient, a time mask and
 * Gaussian noise. Decoding: greedy (best path).
 *
 * Baselines, same run, same features: dynamic time warping (DTW) against
 * word templates, the training voices' isolated words with silence trimmed
 * by energy:
 *   isolated  each held-out single-word utterance gets the word of its
 *             nearest template (every template, path-length normalised);
 *   connected one-pass DTW (Vintsyuk; Ney 1984) over the whole string with
 *             a few templates per word and a word-entry penalty chosen on
 *             training strings: the string-level baseline.
 * Metric: word error rate, (substitutions + deletions + insertions) /
 * reference words, on each held-out set.
 *
 * Published reference: none comparable, and none compared. TIDIGITS
 * (Leonard, ICASSP 1984: 326 speakers, 77 digit strings each) results come
 * from systems trained on its real speakers; this program trains on
 * synthetic voices and tests on 31 real strings, so it states its numbers
 * for what they are.
 *
 * Usage:
 *   speech [--csv FILE] [--predictions FILE] [--model FILE] [--seed S]
 *          [--epochs N] [--hidden H] [--batch B] [--train N] [--lr R]
 *          [--dropout P] [--augment|--no-augment]
 *          [--train-precision fp32|bf16] [--smoke]
 *   speech --model FILE [--precision fp32|bf16|int8] --transcribe FILE.wav|FILE.mfc ...
 *   --csv FILE          learning curve: epoch,train_loss,heldout_wer,dtw_wer
 *                       (test-espeak WERs in percent)
 *   --predictions FILE  every held-out utterance: split,voice,reference,lstm,dtw
 *   --model FILE        where the trained network goes (default speech.lstm):
 *                       weights, labels, normalisation and the front end's
 *                       parameters in its metadata
 *   --train N           use the first N training utterances (default all)
 *   --train-precision P training's arithmetic: fp32 (default) or bf16
 *                       (lstm_workspace_set_training_precision: every
 *                       product of the forward and backward passes in
 *                       bf16, sums, weights and Adam's state in float32)
 *   --smoke             a short run for ctest: 2000 training utterances,
 *                       8 epochs of a 2 x 48 model at lr 0.02 (dropout and
 *                       augmentation as in a full run), 40 utterances of
 *                       each held-out set. It exits 0 when, over the five
 *                       synthetic held-out sets together (unheard espeak-ng
 *                       voices and flite's four), its word error rate is
 *                       below 0.9 x connected DTW's, and the reloaded model
 *                       gives the same outputs. (On one set alone, 40
 *                       utterances are too few to rank the two reliably.)
 *   --transcribe        load only the model file and print each file's words.
 *                       A .mfc file (Sphinx features, either byte order) is
 *                       read directly; any other file is audio, converted by
 *                       running sox (to 16 kHz mono) and sphinx_fe with the
 *                       front-end parameters stored in the model: both must
 *                       be installed (Debian: sox, sphinxbase-utils).
 *   --precision P       the arithmetic of --transcribe: fp32 (default), bf16
 *                       or int8 (lstm_workspace_set_precision: the LSTM
 *                       layers' products and the head's).
 * After training every held-out set is decoded again by the same network
 * in bf16 and in int8, and the three word error rates are printed on one
 * line per set. A smoke run also needs the synthetic held-out sets' WER in
 * bf16 and int8 within SMOKE_PRECISION_POINTS of float32's.
 * Exit status: 0 on success (a smoke run: when it passes, as above), 77
 * when the data is missing, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkstemp, posix_spawnp */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lstm/lstm.h>
#include <lstm/ctc.h>

#include "example.h"

extern char **environ;

enum {
    CEPSTRA = 13,             /* coefficients per frame (sphinx_fe -ncep) */
    STACK = 3,                /* frames per LSTM step */
    INPUTS = CEPSTRA * STACK, /* LSTM inputs */
    WORDS = 11,               /* zero, oh, one .. nine */
    CLASSES = WORDS + 1,      /* and the blank, class 0 */
    BLANK = 0,
    MAX_LABELS = 32,   /* words in one utterance */
    MAX_FRAMES = 6000, /* 60 s */
    EVAL_BATCH = 32,
    MAX_UTTERANCES = 20000,
    SMOKE_EPOCHS = 8,
    SMOKE_HIDDEN = 48,
    SMOKE_TRAIN = 2000,
    SMOKE_TEST = 40 /* utterances of each held-out set in a smoke run */
};

static const char *const WORD_NAMES[WORDS] = {"zero", "oh",  "one",   "two",   "three", "four",
                                              "five", "six", "seven", "eight", "nine"};

/* The held-out sets, in report order, after the training set. */
enum { SPLIT_TRAIN = 0, SPLIT_COUNT = 7 };
static const char *const SPLIT_NAMES[SPLIT_COUNT] = {
    "train", "test-espeak", "test-awb", "test-rms", "test-slt", "test-kal", "tidigits"};

static const double CLIP_NORM = 5.0;
/* Training augmentation (fill_augmented_batch). */
static const double AUGMENT_RATE_MIN = 0.8, AUGMENT_RATE_MAX = 1.25; /* speed factors */
static const double AUGMENT_GAIN = 0.1;  /* std of each coefficient's gain */
static const double AUGMENT_NOISE = 0.1; /* std of the added noise (features have std 1) */
enum { AUGMENT_MASK_STEPS = 4 };         /* longest time mask, in steps */
static const double SMOKE_MARGIN = 0.9;  /* smoke: WER below 0.9 x connected DTW's */
/* Reduced precision against float32, in WER points: the issue's bound for
 * accuracy, and the smoke run's looser one (its 200 synthetic held-out
 * utterances make about 700 words). */
static const double PRECISION_POINTS = 0.5, SMOKE_PRECISION_POINTS = 2.0;
static const double SMOKE_LEARNING_RATE = 0.02; /* a small model learns fast enough */
static const double TRIM_LEVEL = 0.4;           /* an edge frame is silence when its c0 (log
                                                   energy) is below min + 0.4 (peak - min) */

typedef struct utterance {
    float *frames; /* [frame_count][CEPSTRA], normalised */
    size_t frame_count;
    size_t frame_offset;             /* of frames in the corpus's pool */
    size_t speech_begin, speech_end; /* frames above the energy threshold, for DTW */
    int32_t labels[MAX_LABELS];      /* classes 1 .. WORDS */
    size_t label_count;
    int split;
    char voice[40];
} utterance;

typedef struct settings {
    const char *csv_path, *predictions_path, *model_path;
    const char **transcribe;
    size_t transcribe_count;
    uint64_t seed, epochs, hidden, batch, train_limit, templates_per_word;
    double learning_rate, dropout;
    int smoke, no_augment;
    lstm_precision precision;       /* of --transcribe */
    lstm_precision train_precision; /* of the training calls */
} settings;

typedef struct corpus {
    utterance *items;
    size_t count;
    float *frame_pool;   /* every utterance's frames */
    double std[CEPSTRA]; /* of the training frames after mean normalisation */
    char fe_args[1024];
} corpus;

/* ---------------------------------------------------------------- features */

/* A Sphinx feature file: an int32 count of floats, then the floats, in the
 * byte order that makes the count match the file's size. */
static int read_mfc(const char *path, float *frames, size_t capacity, size_t *frame_count)
{
    char *bytes;
    size_t size;
    if (ex_read_file(path, &bytes, &size))
        return 1;
    const unsigned char *b = (const unsigned char *)bytes;
    uint32_t little = 0, big = 0;
    int swap = -1;
    if (size >= 4) {
        little = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        big = (uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 | (uint32_t)b[0] << 24;
        if ((uint64_t)little * 4 + 4 == size)
            swap = 0;
        else if ((uint64_t)big * 4 + 4 == size)
            swap = 1;
    }
    size_t values = swap == 1 ? big : little;
    if (swap < 0 || values % CEPSTRA != 0 || values == 0 || values / CEPSTRA > capacity) {
        fprintf(stderr,
                "%s: not a Sphinx feature file of %d cepstra per frame (or longer than %d "
                "frames)\n",
                path, CEPSTRA, (int)capacity);
        free(bytes);
        return 1;
    }
    for (size_t k = 0; k < values; k++) {
        const unsigned char *at = b + 4 + 4 * k;
        uint32_t word = swap ? (uint32_t)at[3] | (uint32_t)at[2] << 8 | (uint32_t)at[1] << 16 |
                                   (uint32_t)at[0] << 24
                             : (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 |
                                   (uint32_t)at[3] << 24;
        memcpy(&frames[k], &word, sizeof word);
        if (!isfinite(frames[k])) {
            fprintf(stderr, "%s: value %zu is not finite\n", path, k);
            free(bytes);
            return 1;
        }
    }
    *frame_count = values / CEPSTRA;
    free(bytes);
    return 0;
}

/* The speech region for DTW: from the first to the last frame whose c0
 * (log energy, before normalisation) is above the silence threshold. */
static void find_speech(utterance *u)
{
    float peak = -INFINITY, low = INFINITY;
    for (size_t f = 0; f < u->frame_count; f++) {
        peak = fmaxf(peak, u->frames[f * CEPSTRA]);
        low = fminf(low, u->frames[f * CEPSTRA]);
    }
    float threshold = low + (float)TRIM_LEVEL * (peak - low);
    size_t begin = 0, end = u->frame_count;
    while (begin + 1 < end && u->frames[begin * CEPSTRA] < threshold)
        begin++;
    while (end - 1 > begin && u->frames[(end - 1) * CEPSTRA] < threshold)
        end--;
    u->speech_begin = begin;
    u->speech_end = end;
}

/* Cepstral mean normalisation over the utterance (sphinx's -cmn current). */
static void subtract_mean(float *frames, size_t frame_count)
{
    for (size_t c = 0; c < CEPSTRA; c++) {
        double sum = 0;
        for (size_t f = 0; f < frame_count; f++)
            sum += frames[f * CEPSTRA + c];
        float mean = (float)(sum / (double)frame_count);
        for (size_t f = 0; f < frame_count; f++)
            frames[f * CEPSTRA + c] -= mean;
    }
}

static void scale(float *frames, size_t frame_count, const double *std)
{
    for (size_t f = 0; f < frame_count; f++)
        for (size_t c = 0; c < CEPSTRA; c++)
            frames[f * CEPSTRA + c] = (float)(frames[f * CEPSTRA + c] / std[c]);
}

static size_t steps_of(size_t frame_count)
{
    return (frame_count + STACK - 1) / STACK;
}

/* x[t][b][k STACK + c] for sequence b of a batch of B: frames t STACK + k,
 * the last frame repeated past the end. */
static void stack_frames(const float *frames, size_t frame_count, size_t b, size_t B, float *x)
{
    size_t T = steps_of(frame_count);
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < STACK; k++) {
            size_t f = t * STACK + k < frame_count ? t * STACK + k : frame_count - 1;
            memcpy(&x[(t * B + b) * INPUTS + k * CEPSTRA], &frames[f * CEPSTRA],
                   CEPSTRA * sizeof *x);
        }
}

/* ---------------------------------------------------------------- corpus */

static int word_class(const char *word, size_t length)
{
    for (int w = 0; w < WORDS; w++)
        if (strlen(WORD_NAMES[w]) == length && memcmp(WORD_NAMES[w], word, length) == 0)
            return w + 1;
    return -1;
}

/* "two nine three" -> classes; 0 on success, 1 with a message. */
static int parse_transcript(const char *text, size_t length, utterance *u, const char *where)
{
    const char *at = text, *end = text + length;
    u->label_count = 0;
    while (at < end) {
        while (at < end && *at == ' ')
            at++;
        const char *word = at;
        while (at < end && *at != ' ')
            at++;
        if (at == word)
            break;
        int cls = word_class(word, (size_t)(at - word));
        if (cls < 0 || u->label_count == MAX_LABELS) {
            fprintf(stderr, "%s: transcript '%.*s': not up to %d of zero, oh, one .. nine\n", where,
                    (int)length, text, MAX_LABELS);
            return 1;
        }
        u->labels[u->label_count++] = cls;
    }
    return 0;
}

/* manifest.tsv: path, transcript, voice, split, after a header line. */
static int read_corpus(const char *dir, corpus *c)
{
    char path[4096], *text = NULL;
    size_t size, frames_total = 0, capacity = 0;
    float *scratch = malloc((size_t)MAX_FRAMES * CEPSTRA * sizeof *scratch);
    int n_path = snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    c->items = calloc(MAX_UTTERANCES, sizeof *c->items);
    if (n_path < 0 || (size_t)n_path >= sizeof path || !scratch || !c->items ||
        ex_read_file(path, &text, &size)) {
        free(scratch);
        free(text);
        return 1;
    }
    char *line = strchr(text, '\n');
    int status = line ? 0 : 1;
    size_t line_number = 1;
    while (status == 0 && line && *++line) {
        char *end = strchr(line, '\n'), *fields[4];
        line_number++;
        if (end)
            *end = '\0';
        size_t n = 0;
        for (char *at = line; n < 4; n++) {
            fields[n] = at;
            at = strchr(at, '\t');
            if (!at)
                break;
            *at++ = '\0';
        }
        utterance *u = &c->items[c->count];
        char where[80];
        snprintf(where, sizeof where, "manifest.tsv line %zu", line_number);
        u->split = -1;
        for (int s = 0; n == 3 && s < SPLIT_COUNT; s++)
            if (strcmp(fields[3], SPLIT_NAMES[s]) == 0)
                u->split = s;
        if (n != 3 || u->split < 0 || c->count == MAX_UTTERANCES) {
            fprintf(stderr, "%s: expected path, transcript, voice and a known split\n", where);
            status = 1;
            break;
        }
        snprintf(u->voice, sizeof u->voice, "%s", fields[2]);
        n_path = snprintf(path, sizeof path, "%s/%s", dir, fields[0]);
        if (n_path < 0 || (size_t)n_path >= sizeof path) {
            fprintf(stderr, "%s: path too long\n", where);
            status = 1;
            break;
        }
        status = parse_transcript(fields[1], strlen(fields[1]), u, where) ||
                 read_mfc(path, scratch, MAX_FRAMES, &u->frame_count);
        if (status)
            break;
        /* Frames go to one pool that grows by doubling while reading. */
        if (frames_total + u->frame_count > capacity) {
            size_t grown = capacity ? 2 * capacity : 1 << 20;
            while (grown < frames_total + u->frame_count)
                grown *= 2;
            float *pool = realloc(c->frame_pool, grown * CEPSTRA * sizeof *pool);
            if (!pool) {
                fprintf(stderr, "out of memory\n");
                status = 1;
                break;
            }
            c->frame_pool = pool;
            capacity = grown;
        }
        memcpy(c->frame_pool + frames_total * CEPSTRA, scratch,
               u->frame_count * CEPSTRA * sizeof *scratch);
        u->frame_offset = frames_total; /* the pool may still move */
        frames_total += u->frame_count;
        c->count++;
        line = end;
    }
    free(text);
    free(scratch);
    if (status)
        return 1;
    if (c->count == 0) {
        fprintf(stderr, "%s/manifest.tsv: no utterances\n", dir);
        return 1;
    }
    for (size_t k = 0; k < c->count; k++) {
        utterance *u = &c->items[k];
        u->frames = c->frame_pool + u->frame_offset * CEPSTRA;
        find_speech(u);
        subtract_mean(u->frames, u->frame_count);
    }
    /* The training frames' standard deviation, after mean normalisation. */
    double sum[CEPSTRA] = {0};
    size_t count = 0;
    for (size_t k = 0; k < c->count; k++)
        if (c->items[k].split == SPLIT_TRAIN) {
            for (size_t f = 0; f < c->items[k].frame_count; f++)
                for (size_t q = 0; q < CEPSTRA; q++) {
                    double v = c->items[k].frames[f * CEPSTRA + q];
                    sum[q] += v * v;
                }
            count += c->items[k].frame_count;
        }
    if (count == 0) {
        fprintf(stderr, "%s/manifest.tsv: no training utterances\n", dir);
        return 1;
    }
    for (size_t q = 0; q < CEPSTRA; q++)
        c->std[q] = sqrt(sum[q] / (double)count) + 1e-6;
    for (size_t k = 0; k < c->count; k++)
        scale(c->items[k].frames, c->items[k].frame_count, c->std);
    n_path = snprintf(path, sizeof path, "%s/fe-args.txt", dir);
    if (n_path < 0 || (size_t)n_path >= sizeof path || ex_read_file(path, &text, &size))
        return 1;
    text[strcspn(text, "\n")] = '\0';
    snprintf(c->fe_args, sizeof c->fe_args, "%s", text);
    free(text);
    return 0;
}

/* ---------------------------------------------------------------- scoring */

/* Word-level edit distance between two label sequences. */
static size_t edit_distance(const int32_t *ref, size_t ref_count, const int32_t *hyp,
                            size_t hyp_count)
{
    size_t row[2][MAX_LABELS * 4 + 1];
    if (hyp_count > MAX_LABELS * 4)
        hyp_count = MAX_LABELS * 4; /* beyond this, every extra word is an insertion anyway */
    for (size_t j = 0; j <= hyp_count; j++)
        row[0][j] = j;
    for (size_t i = 1; i <= ref_count; i++) {
        size_t *prev = row[(i - 1) & 1], *cur = row[i & 1];
        cur[0] = i;
        for (size_t j = 1; j <= hyp_count; j++) {
            size_t best = prev[j - 1] + (ref[i - 1] != hyp[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
    }
    return row[ref_count & 1][hyp_count];
}

static void format_words(const int32_t *labels, size_t count, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < count && used + 8 < size; k++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", k ? " " : "",
                                 WORD_NAMES[labels[k] - 1]);
}

/* ---------------------------------------------------------------- DTW baseline */

static float frame_distance(const float *a, const float *b)
{
    float sum = 0;
    for (size_t c = 0; c < CEPSTRA; c++) {
        float d = a[c] - b[c];
        sum += d * d;
    }
    return sqrtf(sum);
}

/* Isolated-word DTW: steps (1,0), (0,1), (1,1), the cost over n + m. row
 * holds 2 (m + 1) floats. */
static float dtw_isolated(const float *a, size_t n, const float *b, size_t m, float *row)
{
    float *prev = row, *cur = row + m + 1;
    prev[0] = 0;
    for (size_t j = 1; j <= m; j++)
        prev[j] = INFINITY;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = INFINITY;
        for (size_t j = 1; j <= m; j++) {
            float best = fminf(prev[j - 1], fminf(prev[j], cur[j - 1]));
            cur[j] = best + frame_distance(a + (i - 1) * CEPSTRA, b + (j - 1) * CEPSTRA);
        }
        float *swap = prev;
        prev = cur;
        cur = swap;
    }
    return prev[m] / (float)(n + m);
}

typedef struct templates {
    const utterance **items; /* the isolated training words */
    size_t count;
    const utterance **connected; /* a few per word for connected DTW */
    size_t connected_count;
    size_t connected_frames;    /* their speech frames in all */
    size_t *offset;             /* of each connected template in the DP rows */
    float *cost, *cost_prev;    /* [connected_frames] */
    size_t *start, *start_prev; /* the test frame where the current word began */
    float *end_cost;            /* [MAX_FRAMES]: best cost of a word ending at frame i */
    int32_t *end_word;
    size_t *end_start;
    float *row;     /* isolated DTW rows */
    double penalty; /* word-entry penalty */
} templates;

static const float *speech_frames(const utterance *u, size_t *count)
{
    *count = u->speech_end - u->speech_begin;
    return u->frames + u->speech_begin * CEPSTRA;
}

static int32_t dtw_classify(templates *tp, const utterance *u)
{
    size_t n, m;
    const float *a = speech_frames(u, &n);
    float best = INFINITY;
    int32_t word = 1;
    for (size_t k = 0; k < tp->count; k++) {
        const float *b = speech_frames(tp->items[k], &m);
        float d = dtw_isolated(a, n, b, m, tp->row);
        if (d < best) {
            best = d;
            word = tp->items[k]->labels[0];
        }
    }
    return word;
}

/* One-pass connected-word DTW: at every test frame each template frame j
 * continues from j, j - 1 or j - 2 of the previous test frame; a template's
 * first frame may also start a word after the best word ending at the
 * previous frame, paying the penalty. Backtracking the word ends gives the
 * words. Returns the word count written to words. */
static size_t dtw_connected(templates *tp, const utterance *u, int32_t *words, size_t capacity)
{
    size_t n;
    const float *x = speech_frames(u, &n);
    for (size_t i = 0; i < n; i++) {
        const float *frame = x + i * CEPSTRA;
        float entry = i ? tp->end_cost[i - 1] + (float)tp->penalty : 0;
        tp->end_cost[i] = INFINITY;
        for (size_t k = 0; k < tp->connected_count; k++) {
            size_t m, at = tp->offset[k];
            const float *ref = speech_frames(tp->connected[k], &m);
            for (size_t j = 0; j < m; j++) {
                float best = INFINITY;
                size_t start = 0;
                if (i > 0) {
                    for (size_t back = 0; back <= 2 && back <= j; back++)
                        if (tp->cost_prev[at + j - back] < best) {
                            best = tp->cost_prev[at + j - back];
                            start = tp->start_prev[at + j - back];
                        }
                }
                if (j == 0 && entry < best) {
                    best = entry;
                    start = i;
                }
                tp->cost[at + j] = best + frame_distance(frame, ref + j * CEPSTRA);
                tp->start[at + j] = start;
            }
            if (tp->cost[at + m - 1] < tp->end_cost[i]) {
                tp->end_cost[i] = tp->cost[at + m - 1];
                tp->end_word[i] = tp->connected[k]->labels[0];
                tp->end_start[i] = tp->start[at + m - 1];
            }
        }
        float *swap = tp->cost;
        tp->cost = tp->cost_prev;
        tp->cost_prev = swap;
        size_t *swap_start = tp->start;
        tp->start = tp->start_prev;
        tp->start_prev = swap_start;
    }
    /* Backtrack from the last frame, then reverse. */
    size_t count = 0;
    for (size_t i = n; i > 0 && isfinite(tp->end_cost[i - 1]) && count < capacity;) {
        words[count++] = tp->end_word[i - 1];
        i = tp->end_start[i - 1];
    }
    for (size_t k = 0; k < count / 2; k++) {
        int32_t swap = words[k];
        words[k] = words[count - 1 - k];
        words[count - 1 - k] = swap;
    }
    return count;
}

/* Templates: every isolated training word for the isolated baseline; for
 * the connected one, per_word of each word, spread over the voices. */
static int templates_create(templates *tp, const corpus *c, const size_t *train, size_t train_count,
                            size_t per_word)
{
    size_t longest = 0, taken[WORDS] = {0}, available[WORDS] = {0}, seen[WORDS] = {0};
    memset(tp, 0, sizeof *tp);
    tp->items = malloc(train_count * sizeof *tp->items);
    tp->connected = malloc(WORDS * per_word * sizeof *tp->connected);
    tp->offset = malloc(WORDS * per_word * sizeof *tp->offset);
    if (!tp->items || !tp->connected || !tp->offset)
        return 1;
    for (size_t k = 0; k < train_count; k++) {
        const utterance *u = &c->items[train[k]];
        if (u->label_count == 1) {
            tp->items[tp->count++] = u;
            available[u->labels[0] - 1]++;
            if (u->frame_count > longest)
                longest = u->frame_count;
        }
    }
    for (size_t k = 0; k < tp->count; k++) {
        const utterance *u = tp->items[k];
        size_t w = (size_t)u->labels[0] - 1;
        /* Take the i-th of a word's templates when it crosses a multiple of
         * available / per_word: evenly spread over the voices. */
        if (taken[w] < per_word && seen[w] * per_word >= taken[w] * available[w]) {
            tp->offset[tp->connected_count] = tp->connected_frames;
            tp->connected[tp->connected_count++] = u;
            tp->connected_frames += u->speech_end - u->speech_begin;
            taken[w]++;
        }
        seen[w]++;
    }
    if (tp->count == 0) {
        fprintf(stderr, "no isolated training words for the DTW templates\n");
        return 1;
    }
    size_t F = tp->connected_frames;
    tp->cost = malloc(2 * F * sizeof *tp->cost);
    tp->start = malloc(2 * F * sizeof *tp->start);
    tp->end_cost = malloc(MAX_FRAMES * sizeof *tp->end_cost);
    tp->end_word = malloc(MAX_FRAMES * sizeof *tp->end_word);
    tp->end_start = malloc(MAX_FRAMES * sizeof *tp->end_start);
    tp->row = malloc(2 * (longest + 1) * sizeof *tp->row);
    if (!tp->cost || !tp->start || !tp->end_cost || !tp->end_word || !tp->end_start || !tp->row)
        return 1;
    tp->cost_prev = tp->cost + F;
    tp->start_prev = tp->start + F;
    return 0;
}

static void templates_free(templates *tp)
{
    free(tp->items);
    free(tp->connected);
    free(tp->offset);
    free(tp->cost < tp->cost_prev ? tp->cost : tp->cost_prev);
    free(tp->start < tp->start_prev ? tp->start : tp->start_prev);
    free(tp->end_cost);
    free(tp->end_word);
    free(tp->end_start);
    free(tp->row);
}

/* The word-entry penalty with the lowest WER on up to 150 training strings
 * (strings are never templates). */
static void choose_penalty(templates *tp, const corpus *c, const size_t *train, size_t train_count)
{
    static const double candidates[] = {0, 2, 5, 10, 20, 40};
    size_t best_errors = SIZE_MAX;
    double best = 0;
    int32_t words[MAX_LABELS * 4];
    for (size_t p = 0; p < sizeof candidates / sizeof *candidates; p++) {
        size_t errors = 0, used = 0;
        tp->penalty = candidates[p];
        for (size_t k = 0; k < train_count && used < 150; k++) {
            const utterance *u = &c->items[train[k]];
            if (u->label_count < 2)
                continue;
            size_t count = dtw_connected(tp, u, words, MAX_LABELS * 4);
            errors += edit_distance(u->labels, u->label_count, words, count);
            used++;
        }
        if (errors < best_errors) {
            best_errors = errors;
            best = candidates[p];
        }
    }
    tp->penalty = best;
}

/* ---------------------------------------------------------------- the network */

typedef struct trainer {
    lstm_network *network;
    lstm_workspace *workspace;
    lstm_optim *optim;
    lstm_ctc_config ctc;
    size_t max_steps, max_batch;
    float *x;             /* [max_steps][max_batch][INPUTS] */
    float *logits, *grad; /* [max_steps][max_batch][CLASSES] */
    size_t *lengths, *label_lengths;
    int32_t *labels; /* max_batch MAX_LABELS, and decoded: max_batch max_steps */
    int32_t *decoded;
    double *rates; /* [max_batch]: each utterance's speed factor */
    int augment;
    uint64_t random; /* the augmentation's random numbers */
} trainer;

static int trainer_buffers(trainer *tr, size_t max_steps, size_t max_batch)
{
    size_t rows = max_steps * max_batch;
    tr->max_steps = max_steps;
    tr->max_batch = max_batch;
    tr->x = calloc(rows * INPUTS, sizeof *tr->x);
    tr->logits = calloc(rows * CLASSES, sizeof *tr->logits);
    tr->grad = calloc(rows * CLASSES, sizeof *tr->grad);
    tr->lengths = calloc(max_batch, sizeof *tr->lengths);
    tr->label_lengths = calloc(max_batch, sizeof *tr->label_lengths);
    tr->labels = calloc(max_batch * MAX_LABELS, sizeof *tr->labels);
    tr->decoded = calloc(rows, sizeof *tr->decoded);
    tr->rates = calloc(max_batch, sizeof *tr->rates);
    if (!tr->rates || !tr->x || !tr->logits || !tr->grad || !tr->lengths || !tr->label_lengths ||
        !tr->labels || !tr->decoded) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    tr->ctc = (lstm_ctc_config)LSTM_CTC_CONFIG_INIT;
    tr->ctc.classes = CLASSES;
    tr->ctc.blank = BLANK;
    tr->ctc.flags = LSTM_CTC_ZERO_INFINITY;
    return 0;
}

static void trainer_free(trainer *tr)
{
    lstm_optim_destroy(tr->optim);
    lstm_workspace_destroy(tr->workspace);
    lstm_network_destroy(tr->network);
    free(tr->x);
    free(tr->logits);
    free(tr->grad);
    free(tr->lengths);
    free(tr->label_lengths);
    free(tr->labels);
    free(tr->decoded);
    free(tr->rates);
}

/* Fill x and lengths for items[0, B); returns T. */
static size_t fill_batch(trainer *tr, const corpus *c, const size_t *items, size_t B)
{
    size_t T = 1;
    for (size_t b = 0; b < B; b++) {
        const utterance *u = &c->items[items[b]];
        tr->lengths[b] = steps_of(u->frame_count);
        if (tr->lengths[b] > T)
            T = tr->lengths[b];
    }
    for (size_t b = 0; b < B; b++) {
        const utterance *u = &c->items[items[b]];
        stack_frames(u->frames, u->frame_count, b, B, tr->x);
    }
    return T;
}

/* fill_batch() for training, with the voices varied further: each
 * utterance is resampled in time by a random factor (speed), each
 * coefficient scaled by a random gain (a crude change of vocal tract),
 * a random span of frames set to the mean (a time mask, SpecAugment's),
 * and Gaussian noise added. Returns T. */
static size_t fill_augmented_batch(trainer *tr, const corpus *c, const size_t *items, size_t B)
{
    size_t T = 1;
    for (size_t b = 0; b < B; b++) {
        const utterance *u = &c->items[items[b]];
        double rate =
            AUGMENT_RATE_MIN + (AUGMENT_RATE_MAX - AUGMENT_RATE_MIN) * ex_random_unit(&tr->random);
        size_t frames = (size_t)((double)u->frame_count / rate);
        if (frames < 1)
            frames = 1;
        tr->rates[b] = rate;
        tr->lengths[b] = steps_of(frames);
        if (tr->lengths[b] > T)
            T = tr->lengths[b];
    }
    for (size_t b = 0; b < B; b++) {
        const utterance *u = &c->items[items[b]];
        float gain[CEPSTRA];
        for (size_t q = 0; q < CEPSTRA; q++)
            gain[q] = (float)(1.0 + AUGMENT_GAIN * ex_random_normal(&tr->random));
        size_t steps = tr->lengths[b];
        size_t mask_length = ex_random_below(&tr->random, AUGMENT_MASK_STEPS + 1);
        size_t mask_start = ex_random_below(&tr->random, steps);
        for (size_t t = 0; t < steps; t++)
            for (size_t k = 0; k < STACK; k++) {
                size_t f = (size_t)((double)(t * STACK + k) * tr->rates[b]);
                if (f >= u->frame_count)
                    f = u->frame_count - 1;
                float *x = &tr->x[(t * B + b) * INPUTS + k * CEPSTRA];
                int masked = t >= mask_start && t < mask_start + mask_length;
                for (size_t q = 0; q < CEPSTRA; q++)
                    x[q] = masked ? 0.0f
                                  : u->frames[f * CEPSTRA + q] * gain[q] +
                                        (float)(AUGMENT_NOISE * ex_random_normal(&tr->random));
            }
    }
    return T;
}

/* One Adam step on a batch; the batch's mean CTC loss in *loss. */
static int train_step(trainer *tr, const corpus *c, const size_t *items, size_t B, double lr,
                      double *loss)
{
    size_t T = tr->augment ? fill_augmented_batch(tr, c, items, B) : fill_batch(tr, c, items, B);
    size_t used = 0;
    for (size_t b = 0; b < B; b++) {
        const utterance *u = &c->items[items[b]];
        memcpy(tr->labels + used, u->labels, u->label_count * sizeof *tr->labels);
        used += u->label_count;
        tr->label_lengths[b] = u->label_count;
    }
    const lstm_sequences sequences = {
        .struct_size = sizeof sequences, .steps = T, .batch = B, .lengths = tr->lengths};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = tr->x};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = tr->logits};
    const lstm_targets targets = {.struct_size = sizeof targets, .grad = tr->grad};
    const lstm_ctc_outputs ctc_outputs = {
        .struct_size = sizeof ctc_outputs, .loss = loss, .grad = tr->grad};
    return ex_failed(lstm_network_train_forward(tr->network, tr->workspace, &sequences, &inputs,
                                                &outputs),
                     "lstm_network_train_forward") ||
           ex_failed(lstm_ctc_loss(&tr->ctc, &sequences, tr->logits, tr->labels, tr->label_lengths,
                                   &ctc_outputs),
                     "lstm_ctc_loss") ||
           ex_failed(lstm_network_train_backward(tr->network, tr->workspace, &targets, NULL),
                     "lstm_network_train_backward") ||
           ex_failed(lstm_optim_clip_grad_norm(tr->optim, CLIP_NORM, NULL),
                     "lstm_optim_clip_grad_norm") ||
           ex_failed(lstm_optim_set_lr(tr->optim, lr), "lstm_optim_set_lr") ||
           ex_failed(lstm_optim_step(tr->optim), "lstm_optim_step") ||
           ex_failed(lstm_optim_zero_grads(tr->optim), "lstm_optim_zero_grads");
}

/* Inference and greedy decoding of items[0, B) with a network: the logits
 * stay in tr->logits, the words in tr->decoded (sequence b at b T) with
 * counts in tr->label_lengths. Returns T, 0 on failure. */
static size_t decode_batch(trainer *tr, const lstm_network *network, const corpus *c,
                           const size_t *items, size_t B)
{
    size_t T = fill_batch(tr, c, items, B);
    const lstm_sequences sequences = {
        .struct_size = sizeof sequences, .steps = T, .batch = B, .lengths = tr->lengths};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = tr->x};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = tr->logits};
    if (ex_failed(lstm_network_infer(network, tr->workspace, &sequences, &inputs, &outputs),
                  "lstm_network_infer") ||
        ex_failed(lstm_ctc_greedy_decode(&tr->ctc, &sequences, tr->logits, tr->decoded,
                                         tr->label_lengths),
                  "lstm_ctc_greedy_decode"))
        return 0;
    return T;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct split_score {
    size_t utterances, words;
    size_t lstm_errors, dtw_errors;                             /* over all strings */
    size_t isolated, lstm_isolated_errors, dtw_isolated_errors; /* single-word utterances */
} split_score;

static double percent(size_t errors, size_t total)
{
    return total ? 100.0 * (double)errors / (double)total : 0.0;
}

/* LSTM WER over items; with tp, the DTW baselines as well (kept in
 * dtw_words, computed once). predictions: a CSV row per utterance or NULL. */
static int evaluate(trainer *tr, const lstm_network *network, const corpus *c, const size_t *items,
                    size_t count, templates *tp, int32_t *dtw_words, size_t *dtw_counts,
                    split_score *score, FILE *predictions)
{
    memset(score, 0, sizeof *score);
    for (size_t first = 0; first < count; first += EVAL_BATCH) {
        size_t B = count - first < EVAL_BATCH ? count - first : EVAL_BATCH;
        size_t T = decode_batch(tr, network, c, items + first, B);
        if (T == 0)
            return 1;
        for (size_t b = 0; b < B; b++) {
            size_t k = first + b;
            const utterance *u = &c->items[items[k]];
            const int32_t *hyp = tr->decoded + b * T;
            size_t hyp_count = tr->label_lengths[b];
            int32_t *dtw = dtw_words + k * MAX_LABELS * 4;
            if (tp && dtw_counts[k] == SIZE_MAX) {
                if (u->label_count == 1) {
                    dtw[0] = dtw_classify(tp, u);
                    dtw_counts[k] = 1;
                } else {
                    dtw_counts[k] = dtw_connected(tp, u, dtw, MAX_LABELS * 4);
                }
            }
            size_t errors = edit_distance(u->labels, u->label_count, hyp, hyp_count);
            size_t dtw_errors = edit_distance(u->labels, u->label_count, dtw, dtw_counts[k]);
            score->utterances++;
            score->words += u->label_count;
            score->lstm_errors += errors;
            score->dtw_errors += dtw_errors;
            if (u->label_count == 1) {
                score->isolated++;
                score->lstm_isolated_errors += !(hyp_count == 1 && hyp[0] == u->labels[0]);
                score->dtw_isolated_errors += dtw[0] != u->labels[0];
            }
            if (predictions) {
                char ref_text[512], lstm_text[512], dtw_text[512];
                format_words(u->labels, u->label_count, ref_text, sizeof ref_text);
                format_words(hyp, hyp_count, lstm_text, sizeof lstm_text);
                format_words(dtw, dtw_counts[k], dtw_text, sizeof dtw_text);
                fprintf(predictions, "%s,%s,%s,%s,%s\n", SPLIT_NAMES[u->split], u->voice, ref_text,
                        lstm_text, dtw_text);
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the model file */

static int save_metadata(lstm_network *network, const corpus *c, const settings *s)
{
    char normalisation[1024], labels[256], description[1024];
    size_t used = (size_t)snprintf(normalisation, sizeof normalisation,
                                   "cmn=utterance stack=%d cepstra=%d std=", STACK, CEPSTRA);
    for (size_t q = 0; q < CEPSTRA; q++)
        used += (size_t)snprintf(normalisation + used, sizeof normalisation - used, "%s%.9g",
                                 q ? "," : "", c->std[q]);
    used = (size_t)snprintf(labels, sizeof labels, "<blank>\n");
    for (size_t w = 0; w < WORDS; w++)
        used += (size_t)snprintf(labels + used, sizeof labels - used, "%s\n", WORD_NAMES[w]);
    snprintf(description, sizeof description,
             "Spoken digit strings (zero, oh, one .. nine) from 13 MFCC (sphinx_fe with the "
             "TIDIGITS feat.params; per-utterance mean normalisation, then / std), %d frames "
             "stacked per step -> bidirectional LSTM, 2 layers of %llu -> every-step softmax "
             "over <blank> and 11 words, trained with CTC on synthetic espeak-ng speech "
             "(examples/speech.c, seed %llu). Decode greedily.",
             STACK, (unsigned long long)s->hidden, (unsigned long long)s->seed);
    return ex_set_meta_text(network, "description", description) ||
           ex_set_meta_text(network, "labels", labels) ||
           ex_set_meta_text(network, "normalisation", normalisation) ||
           ex_set_meta_text(network, "front_end", c->fe_args);
}

/* normalisation: "cmn=utterance stack=3 cepstra=13 std=a,b,..." */
static int parse_normalisation(const char *text, double *std)
{
    int stack = 0, cepstra = 0, at = 0;
    if (sscanf(text, "cmn=utterance stack=%d cepstra=%d std=%n", &stack, &cepstra, &at) != 2 ||
        at == 0 || stack != STACK || cepstra != CEPSTRA)
        goto bad;
    const char *p = text + at;
    for (size_t q = 0; q < CEPSTRA; q++) {
        char *end;
        std[q] = strtod(p, &end);
        if (end == p || !(std[q] > 0) || (q + 1 < CEPSTRA && *end != ','))
            goto bad;
        p = end + 1;
    }
    return 0;
bad:
    fprintf(stderr, "the model's normalisation '%s' is not this program's\n", text);
    return 1;
}

/* Run argv (a NULL-terminated list) with its output and log sent to
 * /dev/null, and wait; 0 when it exits 0. */
static int run_program(char *const *argv)
{
    pid_t pid;
    int status, error;
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) ||
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) ||
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)) {
        fprintf(stderr, "posix_spawn_file_actions failed\n");
        return 1;
    }
    error = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error) {
        fprintf(stderr, "cannot run %s: %s (Debian: apt-get install sox sphinxbase-utils)\n",
                argv[0], strerror(error));
        return 1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s failed (is the input an audio file sox reads?)\n", argv[0]);
        return 1;
    }
    return 0;
}

/* Audio -> features: sox to 16 kHz mono 16-bit WAV, then sphinx_fe with the
 * model's front-end parameters, into a temporary directory. */
static int audio_features(const char *audio, const char *fe_args, float *frames, size_t *count)
{
    char dir[] = "/tmp/speech-XXXXXX", wav_path[64], mfc_path[64], args[1024], *argv[64];
    int status = 1;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(wav_path, sizeof wav_path, "%s/audio.wav", dir);
    snprintf(mfc_path, sizeof mfc_path, "%s/audio.mfc", dir);
    char *sox[] = {"sox", "-q", "-R", (char *)audio, "-r",     "16000",
                   "-c",  "1",  "-b", "16",          wav_path, NULL};
    size_t argc = 0;
    snprintf(args, sizeof args, "%s", fe_args);
    argv[argc++] = "sphinx_fe";
    for (char *word = strtok(args, " "); word && argc < 58; word = strtok(NULL, " "))
        argv[argc++] = word;
    argv[argc++] = "-i";
    argv[argc++] = wav_path;
    argv[argc++] = "-o";
    argv[argc++] = mfc_path;
    argv[argc] = NULL;
    status = run_program(sox) || run_program(argv) || read_mfc(mfc_path, frames, MAX_FRAMES, count);
    unlink(wav_path);
    unlink(mfc_path);
    rmdir(dir);
    return status;
}

/* Words of one file (features, or audio through sox and sphinx_fe) with a
 * loaded network, printed as "FILE: words". */
static int transcribe(const settings *s)
{
    lstm_network *network = NULL;
    trainer tr;
    double std[CEPSTRA];
    float *frames = malloc((size_t)MAX_FRAMES * CEPSTRA * sizeof *frames);
    int status = 1;
    memset(&tr, 0, sizeof tr);
    if (!frames || ex_failed(lstm_network_load(s->model_path, &network), "lstm_network_load"))
        goto out;
    const char *labels = ex_meta_text(network, "labels");
    const char *normalisation = ex_meta_text(network, "normalisation");
    const char *front_end = ex_meta_text(network, "front_end");
    lstm_network_config config = {.struct_size = sizeof config};
    if (!labels || !normalisation || !front_end || parse_normalisation(normalisation, std) ||
        ex_failed(lstm_network_get_config(network, &config), "lstm_network_get_config"))
        goto out;
    if (config.lstm->input_size != INPUTS || config.head != LSTM_HEAD_EVERY_STEP ||
        config.head_size != CLASSES || strncmp(labels, "<blank>\nzero\noh\none\n", 18) != 0) {
        fprintf(stderr, "%s: not a model of this program (inputs, head or labels differ)\n",
                s->model_path);
        goto out;
    }
    if (trainer_buffers(&tr, steps_of(MAX_FRAMES), 1) ||
        ex_failed(lstm_workspace_create(lstm_network_model(network), &tr.workspace),
                  "lstm_workspace_create") ||
        ex_set_precision(tr.workspace, NULL, s->precision))
        goto out;
    for (size_t k = 0; k < s->transcribe_count; k++) {
        const char *path = s->transcribe[k];
        size_t length = strlen(path), frame_count;
        int is_mfc = length > 4 && strcmp(path + length - 4, ".mfc") == 0;
        if (is_mfc ? read_mfc(path, frames, MAX_FRAMES, &frame_count)
                   : audio_features(path, front_end, frames, &frame_count))
            goto out;
        subtract_mean(frames, frame_count);
        scale(frames, frame_count, std);
        /* A corpus of one utterance for decode_batch(). */
        utterance u = {.frames = frames, .frame_count = frame_count};
        corpus one = {.items = &u, .count = 1};
        size_t item = 0, T = decode_batch(&tr, network, &one, &item, 1);
        char words[512];
        if (T == 0)
            goto out;
        format_words(tr.decoded, tr.label_lengths[0], words, sizeof words);
        printf("%s: %s\n", path, words);
    }
    status = 0;
out:
    trainer_free(&tr);
    lstm_network_destroy(network);
    free(frames);
    return status;
}

static void usage(void)
{
    fprintf(stderr, "usage: speech [--csv FILE] [--predictions FILE] [--model FILE] [--seed S]\n"
                    "              [--epochs N] [--hidden H] [--batch B] [--train N] [--lr R]\n"
                    "              [--dropout P] [--augment|--no-augment]\n"
                    "              [--train-precision fp32|bf16] [--smoke]\n"
                    "       speech --model FILE [--precision fp32|bf16|int8]\n"
                    "              --transcribe FILE.wav|FILE.mfc ...\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    memset(s, 0, sizeof *s);
    s->model_path = "speech.lstm";
    s->seed = 1;
    s->epochs = 20;
    s->hidden = 96;
    s->batch = 16;
    s->templates_per_word = 8;
    s->learning_rate = 0.01;
    s->dropout = 0.2;
    int epochs_set = 0, hidden_set = 0, train_set = 0, lr_set = 0;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k], *value = k + 1 < argc ? argv[k + 1] : NULL;
        static const char *const with_value[] = {
            "--csv",   "--predictions", "--model", "--seed",    "--epochs",    "--hidden",
            "--batch", "--train",       "--lr",    "--dropout", "--precision", "--train-precision"};
        int takes = 0;
        for (size_t f = 0; f < sizeof with_value / sizeof *with_value; f++)
            takes |= strcmp(arg, with_value[f]) == 0;
        if (takes && !value) {
            fprintf(stderr, "%s needs a value\n", arg);
            usage();
            return 1;
        }
        if (strcmp(arg, "--smoke") == 0)
            s->smoke = 1;
        else if (strcmp(arg, "--no-augment") == 0)
            s->no_augment = 1;
        else if (strcmp(arg, "--augment") == 0)
            s->no_augment = 0;
        else if (strcmp(arg, "--transcribe") == 0) {
            s->transcribe = (const char **)argv + k + 1;
            s->transcribe_count = (size_t)(argc - k - 1);
            if (s->transcribe_count == 0) {
                fprintf(stderr, "--transcribe needs at least one file\n");
                return 1;
            }
            break;
        } else if (strcmp(arg, "--csv") == 0)
            s->csv_path = value;
        else if (strcmp(arg, "--predictions") == 0)
            s->predictions_path = value;
        else if (strcmp(arg, "--model") == 0)
            s->model_path = value;
        else if (strcmp(arg, "--seed") == 0) {
            if (ex_parse_count(arg, value, 0, UINT64_MAX, &s->seed))
                return 1;
        } else if (strcmp(arg, "--epochs") == 0) {
            if (ex_parse_count(arg, value, 1, 10000, &s->epochs))
                return 1;
            epochs_set = 1;
        } else if (strcmp(arg, "--hidden") == 0) {
            if (ex_parse_count(arg, value, 1, 4096, &s->hidden))
                return 1;
            hidden_set = 1;
        } else if (strcmp(arg, "--batch") == 0) {
            if (ex_parse_count(arg, value, 1, 1024, &s->batch))
                return 1;
        } else if (strcmp(arg, "--train") == 0) {
            if (ex_parse_count(arg, value, 1, MAX_UTTERANCES, &s->train_limit))
                return 1;
            train_set = 1;
        } else if (strcmp(arg, "--dropout") == 0) {
            if (ex_parse_double(arg, value, 0.0, 0.9, &s->dropout))
                return 1;
        } else if (strcmp(arg, "--precision") == 0) {
            if (ex_parse_precision(value, &s->precision))
                return 1;
        } else if (strcmp(arg, "--train-precision") == 0) {
            if (ex_parse_training_precision(value, &s->train_precision))
                return 1;
        } else if (strcmp(arg, "--lr") == 0) {
            if (ex_parse_double(arg, value, 1e-6, 1.0, &s->learning_rate))
                return 1;
            lr_set = 1;
        } else {
            fprintf(stderr, "unknown argument %s\n", arg);
            usage();
            return 1;
        }
        k += takes;
    }
    if (s->smoke) {
        if (!epochs_set)
            s->epochs = SMOKE_EPOCHS;
        if (!hidden_set)
            s->hidden = SMOKE_HIDDEN;
        if (!train_set)
            s->train_limit = SMOKE_TRAIN;
        s->templates_per_word = 4;
        if (!lr_set)
            s->learning_rate = SMOKE_LEARNING_RATE;
    }
    return 0;
}

static int create_network(trainer *tr, const settings *s)
{
    const lstm_config config = {.struct_size = sizeof config,
                                .input_size = INPUTS,
                                .hidden_size = s->hidden,
                                .num_layers = 2,
                                .flags = LSTM_BIDIRECTIONAL,
                                .dropout = s->dropout};
    const lstm_network_config network_config = {.struct_size = sizeof network_config,
                                                .lstm = &config,
                                                .head = LSTM_HEAD_EVERY_STEP,
                                                .loss = LSTM_LOSS_NONE,
                                                .head_size = CLASSES};
    lstm_optim_options options;
    if (ex_failed(lstm_network_create(&network_config, &tr->network), "lstm_network_create") ||
        ex_failed(lstm_network_init(tr->network, s->seed, LSTM_INIT_FORGET_BIAS_ONE),
                  "lstm_network_init") ||
        ex_failed(lstm_workspace_create(lstm_network_model(tr->network), &tr->workspace),
                  "lstm_workspace_create") ||
        ex_failed(lstm_workspace_set_seed(tr->workspace, s->seed ^ 0xD40u),
                  "lstm_workspace_set_seed") ||
        ex_set_training_precision(tr->workspace, s->train_precision) ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = s->learning_rate;
    return ex_failed(lstm_optim_create(&options, &tr->optim), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(tr->optim, tr->network), "lstm_optim_add_network");
}

/* Save, reload, and check that the loaded network gives the same logits on
 * the first held-out batch. */
static int save_and_check(trainer *tr, const corpus *c, const settings *s, const size_t *items,
                          size_t count, int *same)
{
    lstm_network *loaded = NULL;
    size_t B = count < EVAL_BATCH ? count : EVAL_BATCH;
    float *before = NULL;
    int status = 1;
    *same = 0;
    if (save_metadata(tr->network, c, s) ||
        ex_failed(lstm_network_save(tr->network, NULL, s->model_path), "lstm_network_save") ||
        ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load"))
        goto out;
    size_t T = decode_batch(tr, tr->network, c, items, B);
    before = malloc(T * B * CLASSES * sizeof *before);
    if (T == 0 || !before)
        goto out;
    memcpy(before, tr->logits, T * B * CLASSES * sizeof *before);
    if (decode_batch(tr, loaded, c, items, B) != T)
        goto out;
    *same = memcmp(before, tr->logits, T * B * CLASSES * sizeof *before) == 0;
    status = 0;
out:
    free(before);
    lstm_network_destroy(loaded);
    return status;
}

/* The held-out evaluation for ex_evaluate_precisions(): the WER of the
 * trained network over the held-out sets [first, last) together, in the
 * precision of its workspace; the DTW words are already computed. */
typedef struct evaluation {
    trainer *tr;
    const corpus *c;
    size_t *const *split_items;
    const size_t *split_count;
    int32_t *const *dtw_words;
    size_t *const *dtw_counts;
    templates *tp;
    int first, last;
} evaluation;

static int heldout_wer(void *context, double *metric)
{
    evaluation *e = context;
    size_t errors = 0, words = 0;
    for (int split = e->first; split < e->last; split++) {
        split_score score;
        if (evaluate(e->tr, e->tr->network, e->c, e->split_items[split], e->split_count[split],
                     e->tp, e->dtw_words[split], e->dtw_counts[split], &score, NULL))
            return 1;
        errors += score.lstm_errors;
        words += score.words;
    }
    *metric = percent(errors, words);
    return 0;
}

/* Print the held-out WERs in each precision, a set at a time and the
 * synthetic sets together; 1 on failure. *kept: the synthetic sets' WER
 * in bf16 and int8 within tolerance (WER points) of float32's. */
static int precision_report(evaluation *e, double tolerance, int *kept)
{
    double metrics[EX_PRECISIONS];
    char name[64];
    printf("held-out WER in reduced precision (the same network; %%):\n");
    for (int split = 1; split <= SPLIT_COUNT; split++) {
        /* split SPLIT_COUNT stands for the synthetic sets together */
        int together = split == SPLIT_COUNT;
        e->first = together ? 1 : split;
        e->last = together ? SPLIT_COUNT - 1 : split + 1;
        if (ex_evaluate_precisions(e->tr->workspace, NULL, heldout_wer, e, metrics))
            return 1;
        snprintf(name, sizeof name, "  %-17s", together ? "synthetic, all" : SPLIT_NAMES[split]);
        ex_print_precisions(name, metrics, 2, "");
    }
    ex_print_precision_bound(metrics, PRECISION_POINTS, 0, "0.5 points");
    *kept = ex_precision_within(metrics[0], metrics[1], tolerance, 0) &&
            ex_precision_within(metrics[0], metrics[2], tolerance, 0);
    return 0;
}

static int run(const settings *s, int *passed)
{
    char dir[4096];
    corpus c;
    trainer tr;
    templates tp;
    size_t *split_items[SPLIT_COUNT] = {0}, split_count[SPLIT_COUNT] = {0};
    int32_t *dtw_words[SPLIT_COUNT] = {0};
    size_t *dtw_counts[SPLIT_COUNT] = {0};
    split_score scores[SPLIT_COUNT];
    FILE *curve = NULL, *predictions = NULL;
    uint64_t random = s->seed ^ 0x5EEC4u;
    int status = ex_data_dir("speech", dir, sizeof dir);
    memset(&c, 0, sizeof c);
    memset(&tr, 0, sizeof tr);
    memset(&tp, 0, sizeof tp);
    *passed = 0;
    if (status)
        return status;
    status = 1;
    if (read_corpus(dir, &c))
        goto out;
    for (int split = 0; split < SPLIT_COUNT; split++) {
        split_items[split] = malloc(c.count * sizeof *split_items[split]);
        if (!split_items[split])
            goto out;
    }
    size_t max_steps = 1;
    for (size_t k = 0; k < c.count; k++) {
        int split = c.items[k].split;
        if (split != SPLIT_TRAIN && s->smoke && split_count[split] == SMOKE_TEST)
            continue;
        split_items[split][split_count[split]++] = k;
        if (steps_of(c.items[k].frame_count) > max_steps)
            max_steps = steps_of(c.items[k].frame_count);
    }
    /* A seeded subset of the training set when --train (or --smoke) asks. */
    size_t *train = split_items[SPLIT_TRAIN], train_count = split_count[SPLIT_TRAIN];
    ex_shuffle(train, train_count, &random);
    if (s->train_limit && s->train_limit < train_count)
        train_count = s->train_limit;
    for (int split = 1; split < SPLIT_COUNT; split++) {
        size_t words = split_count[split] * MAX_LABELS * 4;
        dtw_words[split] = malloc((words ? words : 1) * sizeof *dtw_words[split]);
        dtw_counts[split] = malloc((split_count[split] + 1) * sizeof *dtw_counts[split]);
        if (!dtw_words[split] || !dtw_counts[split])
            goto out;
        for (size_t k = 0; k < split_count[split]; k++)
            dtw_counts[split][k] = SIZE_MAX;
    }
    if (templates_create(&tp, &c, train, train_count, s->templates_per_word))
        goto out;
    choose_penalty(&tp, &c, train, train_count);
    size_t max_batch = s->batch > EVAL_BATCH ? s->batch : EVAL_BATCH;
    /* Room for the slowest augmented speed too. */
    size_t room = (size_t)((double)max_steps / AUGMENT_RATE_MIN) + 2;
    if (trainer_buffers(&tr, room, max_batch) || create_network(&tr, s))
        goto out;
    tr.augment = !s->no_augment;
    tr.random = s->seed ^ 0xA06u;

    printf("liblstm %s: spoken digits, CTC. TRAINING IS SYNTHETIC (espeak-ng voices);\n"
           "held out: other espeak-ng voices, flite's awb/rms/slt/kal, and %zu real TIDIGITS "
           "strings (2 speakers: a small real test set)\n",
           lstm_version_string(), split_count[SPLIT_COUNT - 1]);
    printf("train %zu utterances; features: 13 MFCC (sphinx_fe, TIDIGITS feat.params), "
           "per-utterance CMN, %d frames a step\n",
           train_count, STACK);
    printf("model: bidirectional LSTM 2 x %llu -> %d classes (blank + 11 words), %zu parameters; "
           "Adam lr %g, batch %llu, %llu epochs, dropout %g, augmentation %s, seed %llu, training "
           "in %s\n",
           (unsigned long long)s->hidden, CLASSES, lstm_network_param_count(tr.network),
           s->learning_rate, (unsigned long long)s->batch, (unsigned long long)s->epochs,
           s->dropout, s->no_augment ? "off" : "on", (unsigned long long)s->seed,
           ex_precision_name(s->train_precision));
    printf("DTW baselines: %zu isolated-word templates; connected: %zu templates (%zu frames), "
           "word-entry penalty %g (chosen on training strings)\n",
           tp.count, tp.connected_count, tp.connected_frames, tp.penalty);
    fflush(stdout);

    if (s->csv_path && !(curve = ex_open_csv(s->csv_path, "epoch,train_loss,heldout_wer,dtw_wer")))
        goto out;
    size_t batches = (train_count + s->batch - 1) / s->batch;
    uint64_t total_steps = s->epochs * batches, step = 0;
    ex_progress progress;
    ex_progress_begin(&progress, total_steps, "utterances");
    double first_loss = NAN, last_loss = NAN;
    const int heldout = 1; /* test-espeak: the curve's held-out set */
    for (uint64_t epoch = 1; epoch <= s->epochs; epoch++) {
        double loss_sum = 0;
        ex_shuffle(train, train_count, &random);
        for (size_t first = 0; first < train_count; first += s->batch) {
            size_t B = train_count - first < s->batch ? train_count - first : s->batch;
            double lr, loss;
            if (ex_failed(lstm_schedule_cosine(s->learning_rate, s->learning_rate * 0.05,
                                               total_steps, step, &lr),
                          "lstm_schedule_cosine") ||
                train_step(&tr, &c, train + first, B, lr, &loss))
                goto out;
            loss_sum += loss;
            step++;
            ex_progress_update(&progress, step, loss, step * s->batch);
        }
        double epoch_loss = loss_sum / (double)batches;
        if (epoch == 1)
            first_loss = epoch_loss;
        last_loss = epoch_loss;
        split_score *score = &scores[heldout];
        if (evaluate(&tr, tr.network, &c, split_items[heldout], split_count[heldout], &tp,
                     dtw_words[heldout], dtw_counts[heldout], score, NULL))
            goto out;
        printf("epoch %llu  train CTC loss %.4f  test-espeak WER %.2f%% (connected DTW %.2f%%)\n",
               (unsigned long long)epoch, epoch_loss, percent(score->lstm_errors, score->words),
               percent(score->dtw_errors, score->words));
        fflush(stdout);
        if (curve)
            fprintf(curve, "%llu,%.6f,%.4f,%.4f\n", (unsigned long long)epoch, epoch_loss,
                    percent(score->lstm_errors, score->words),
                    percent(score->dtw_errors, score->words));
    }
    double seconds = ex_progress_seconds(&progress);

    if (s->predictions_path &&
        !(predictions = ex_open_csv(s->predictions_path, "split,voice,reference,lstm,dtw")))
        goto out;
    printf("\nword error rate (edit distance / reference words), held-out voices:\n");
    printf("%-12s %6s %6s %9s %9s   %8s %11s %11s\n", "set", "utts", "words", "LSTM-CTC",
           "DTW-conn", "isolated", "LSTM-isol", "DTW-isol");
    for (int split = 1; split < SPLIT_COUNT; split++) {
        split_score *score = &scores[split];
        if (evaluate(&tr, tr.network, &c, split_items[split], split_count[split], &tp,
                     dtw_words[split], dtw_counts[split], score, predictions))
            goto out;
        printf("%-12s %6zu %6zu %8.2f%% %8.2f%%   %8zu %10.2f%% %10.2f%%\n", SPLIT_NAMES[split],
               score->utterances, score->words, percent(score->lstm_errors, score->words),
               percent(score->dtw_errors, score->words), score->isolated,
               percent(score->lstm_isolated_errors, score->isolated),
               percent(score->dtw_isolated_errors, score->isolated));
    }
    printf("(DTW-conn: one-pass connected-word DTW on every string; isolated: single-word "
           "utterances,\n DTW-isol: nearest of all isolated-word templates)\n");
    printf("published reference: none comparable. Published TIDIGITS results (Leonard 1984's "
           "corpus) come from training on its real speakers; this model trains on synthetic "
           "voices and is tested on %zu real strings of 2 speakers\n",
           split_count[SPLIT_COUNT - 1]);
    printf("training: %.1f s, CTC loss %.4f -> %.4f\n", seconds, first_loss, last_loss);

    int same = 0;
    if (save_and_check(&tr, &c, s, split_items[heldout], split_count[heldout], &same))
        goto out;
    printf("saved %s; reloaded: %s outputs\n", s->model_path, same ? "bit-identical" : "DIFFERENT");
    /* The pass mark: the synthetic held-out sets together (every split but
     * the training set and the real TIDIGITS strings, the last). */
    size_t words = 0, lstm_errors = 0, dtw_errors = 0;
    for (int split = 1; split < SPLIT_COUNT - 1; split++) {
        words += scores[split].words;
        lstm_errors += scores[split].lstm_errors;
        dtw_errors += scores[split].dtw_errors;
    }
    const double lstm_wer = percent(lstm_errors, words), dtw_wer = percent(dtw_errors, words);
    *passed = same && lstm_wer < SMOKE_MARGIN * dtw_wer;
    printf("synthetic held-out voices together: WER LSTM-CTC %.2f%%, connected DTW %.2f%%\n",
           lstm_wer, dtw_wer);
    evaluation e = {&tr, &c, split_items, split_count, dtw_words, dtw_counts, &tp, 0, 0};
    int precision_kept = 0;
    if (precision_report(&e, s->smoke ? SMOKE_PRECISION_POINTS : PRECISION_POINTS, &precision_kept))
        goto out;
    if (s->smoke) {
        printf("smoke: bf16 and int8 WER %s within %.1f points of float32's\n",
               precision_kept ? "are" : "are NOT", SMOKE_PRECISION_POINTS);
        *passed = *passed && precision_kept;
    }
    if (s->smoke)
        printf("smoke: %s (LSTM-CTC WER must be below %.1f x connected DTW's, %.2f%%)\n",
               *passed ? "passed" : "FAILED", SMOKE_MARGIN, SMOKE_MARGIN * dtw_wer);
    status = 0;
out:
    if (curve && ex_close_csv(curve, s->csv_path))
        status = 1;
    if (predictions && ex_close_csv(predictions, s->predictions_path))
        status = 1;
    for (int split = 0; split < SPLIT_COUNT; split++) {
        free(split_items[split]);
        free(dtw_words[split]);
        free(dtw_counts[split]);
    }
    templates_free(&tp);
    trainer_free(&tr);
    free(c.items);
    free(c.frame_pool);
    return status;
}

int main(int argc, char **argv)
{
    settings s;
    int passed = 0;
    if (parse_args(argc, argv, &s))
        return 1;
    if (s.transcribe_count)
        return transcribe(&s) ? 1 : 0;
    int status = run(&s, &passed);
    if (status)
        return status;
    /* A full run reports its numbers and succeeds; a smoke run must win. */
    return s.smoke && !passed ? 1 : 0;
}
