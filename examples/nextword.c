/*
 * nextword.c: next-word prediction, a word-level language model on the
 * Brown Corpus, one lstm_network, against a unigram and an interpolated
 * Kneser-Ney trigram model built in the same run on the same tokens.
 *
 * Data: the Brown Corpus (Francis & Kucera 1964/1979; 500 texts, 15
 * genres; NLTK's tagged edition, fetched with
 * `bash examples/data/fetch.sh brown` into ~/.cache/liblstm/data/brown).
 * The files ca01 .. cr09 are read in that (byte) order, the corpus order;
 * each `word/tag` token is cut at its last '/' and the word lowercased. No
 * sentence-boundary token is added: the text is one running stream of
 * 1,161,192 words, punctuation included as words.
 * Protocol of Bengio, Ducharme, Vincent & Jauvin, "A Neural Probabilistic
 * Language Model", JMLR 3 (2003), section 4.1: the first 800,000 words
 * train, the next 200,000 are the validation text, the rest (161,192 here)
 * the test text; words seen 3 times or fewer in the training text become
 * one unknown word "<unk>": 13,189 words in all here (their vocabulary, as
 * reported, had 16,383 words, from a stream of 1,181,041 words with their
 * own tokenisation and case). The <unk> word is predicted and scored like
 * any other (8.4% of the test words).
 * Model: token -> embedding (E) -> LSTM (H, optionally projected to P; 1 or
 * 2 layers, dropout between layers) -> dense head on every step -> softmax
 * over the vocabulary (LSTM_LOSS_CROSS_ENTROPY), trained with truncated backpropagation through
 * time over the running text: the training text is cut into B streams read
 * side by side, T steps per lstm_network_train_chunk() with the state
 * carried from chunk to chunk; Adam, gradient-norm clipping, the learning
 * rate divided by 4 (and the best weights restored) when the validation
 * perplexity stops improving, and the best measurement's weights kept.
 * Baselines, same training text and vocabulary: the unigram model with
 * add-one smoothing, and an interpolated Kneser-Ney trigram (Chen & Goodman
 * 1998, "An Empirical Study of Smoothing Techniques for Language
 * Modeling", interpolated KN with one discount per order D = n1 / (n1 + 2
 * n2); the lower orders use continuation counts; the unigram level is
 * interpolated with the uniform distribution). Its section below checks
 * that it sums to 1 over the vocabulary for a few contexts.
 * Published reference: Bengio et al. (2003) report, on this protocol with
 * their own vocabulary (16,383 words) and tokenisation, a 24% difference
 * in test perplexity between their best neural network and the best
 * n-gram model. Their table's perplexities are not quoted here: the paper
 * could not be checked from this machine, only that 24%.
 *
 * Usage (training):
 *   nextword [--smoke] [--model FILE] [--csv FILE] [--predictions FILE]
 *            [--epochs N] [--embedding-dim E] [--hidden H] [--proj P]
 *            [--layers 1|2] [--dropout P] [--batch B] [--bptt T] [--lr RATE]
 *            [--evals N] [--steps N] [--max-minutes M] [--seed N]
 *            [--train-precision fp32|bf16]
 * Defaults: E = 128, H = 512 with a projection to P = 128 (LSTMP: the
 * softmax over the vocabulary reads 128 values, which keeps its cost, most
 * of the run's, down), 1 layer, batch 32, BPTT 35, Adam 3e-3, 3 epochs,
 * validation twice an epoch. --steps N stops after N training steps, the
 * rate following a cosine from RATE to RATE / 10 over them, and
 * --max-minutes M stops after M minutes of training (a safety bound: a run
 * it cuts short depends on the machine's speed). --train-precision bf16
 * runs every product of training's forward and backward passes in bf16,
 * with float32 sums, weights and Adam state
 * (lstm_workspace_set_training_precision); fp32 by default.
 * Usage (answer, from the saved model file alone):
 *   nextword --model FILE --prompt "the jury said" [--words N]
 *            [--temperature TAU] [--seed N] [--precision fp32|bf16|int8]
 * prints the five most likely next words with their probabilities and a
 * sampled continuation of N words. The prompt is split at white space and
 * lowercased, as the corpus was (punctuation is a word of its own: "the
 * jury said ,"). --precision: the arithmetic of the LSTM's products
 * (lstm_state_set_precision; the embedding and the softmax head stay
 * float32), fp32 by default.
 * After training the test perplexity is measured again by the same network
 * with the evaluation state in bf16 and in int8; the three are printed on
 * one line.
 * --csv: epoch,train_ppl,valid_ppl,unigram_valid_ppl,kn_valid_ppl, one row
 * per validation measurement (epoch counted in fractions; train_ppl over the
 * training chunks since the previous row). --predictions: the test text, one row a word:
 * index,word,lstm_prob,kn_prob,unigram_prob,lstm_top.
 * --smoke: a slice of the corpus (50,000/15,000/15,000 words, the 2,000
 * most frequent training words), a small model, a few seconds; exits 0
 * only when the LSTM's test perplexity is below 0.8 x the unigram's, the
 * KN model sums to 1, the reloaded network gives the same outputs, and the
 * bf16 and int8 test perplexities are within SMOKE_PRECISION_RELATIVE of
 * float32's.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lstm/lstm.h>

#include "example.h"

enum {
    MAX_WORD = 128,    /* longest word kept, in bytes */
    EVAL_STEPS = 35,   /* steps per lstm_network_infer_stream() call in evaluation */
    EVAL_STREAMS = 16, /* held-out text read as this many streams side by side */
    TOP_WORDS = 5,
    RELOAD_CHECK = 4000, /* test words scored again by the reloaded network */
    MAX_PROMPT_WORDS = 1000
};

static const char *const UNKNOWN = "<unk>";
static const double CLIP_NORM = 0.5;
static const double SMOKE_MARGIN = 0.8; /* smoke: LSTM perplexity below 0.8 x unigram */
/* The bound for reduced precision (relative to float32's
 * perplexity), and the smoke run's looser one. */
static const double PRECISION_RELATIVE = 0.01, SMOKE_PRECISION_RELATIVE = 0.03;

/* Run settings; main fills them from the defaults and the command line. */
typedef struct settings {
    const char *model_path, *csv_path, *predictions_path, *prompt;
    uint64_t epochs, steps, embedding_dim, hidden, proj, layers, batch, bptt, words, seed, evals;
    uint64_t train_words, valid_words, test_words, max_vocab, min_count;
    double lr, dropout, temperature, max_minutes;
    int smoke;
    lstm_precision precision;       /* of answer mode */
    lstm_precision train_precision; /* of the training calls */
} settings;

/* ======================================================================
 * The corpus: ids of the running text and the vocabulary.
 * ====================================================================== */

typedef struct corpus {
    int32_t *ids; /* the text, ids in vocab */
    size_t size;  /* words used: train + valid + test */
    size_t train, valid, test;
    ex_vocab vocab;     /* <unk> (id 0), then the kept words, most frequent first */
    size_t total_words; /* words in the whole corpus */
} corpus;

/* Read every text of the corpus, in file-name order, into all (every
 * distinct word) and raw (the text as ids of all). 0, 1 with a message. */
static int read_brown(const char *dir, ex_vocab *all, int32_t **raw, size_t *count)
{
    size_t capacity = 1u << 21, n = 0, files = 0;
    int32_t *ids = malloc(capacity * sizeof *ids);
    char path[4200], word[MAX_WORD];
    if (!ids) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    /* The 500 names ca01 .. cr09 exist in every release; the numbers per
     * genre differ, so try each and skip the absent. */
    for (char genre = 'a'; genre <= 'r'; genre++) {
        for (int number = 1; number <= 99; number++) {
            char name[8];
            snprintf(name, sizeof name, "c%c%02d", genre, number);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            FILE *probe = fopen(path, "rb");
            if (!probe)
                continue;
            fclose(probe);
            char *text;
            size_t size;
            if (ex_read_file(path, &text, &size)) {
                free(ids);
                return 1;
            }
            files++;
            for (size_t at = 0; at < size;) {
                while (at < size && isspace((unsigned char)text[at]))
                    at++;
                size_t start = at;
                while (at < size && !isspace((unsigned char)text[at]))
                    at++;
                if (at == start)
                    break;
                const char *token = text + start;
                size_t length = at - start, cut = length;
                while (cut > 0 && token[cut - 1] != '/')
                    cut--;
                if (cut < 2) { /* no '/', or nothing before it */
                    fprintf(stderr, "%s: malformed token '%.*s' (expected word/tag)\n", path,
                            (int)(length < 60 ? length : 60), token);
                    free(text);
                    free(ids);
                    return 1;
                }
                length = cut - 1 < MAX_WORD - 1 ? cut - 1 : MAX_WORD - 1;
                for (size_t k = 0; k < length; k++)
                    word[k] = (char)tolower((unsigned char)token[k]);
                int64_t id = ex_vocab_add(all, word, length);
                if (id < 0 || n == capacity) {
                    int32_t *bigger = id < 0 ? NULL : realloc(ids, 2 * capacity * sizeof *ids);
                    if (!bigger) {
                        fprintf(stderr, "out of memory\n");
                        free(text);
                        free(ids);
                        return 1;
                    }
                    ids = bigger;
                    capacity *= 2;
                }
                ids[n++] = (int32_t)id;
            }
            free(text);
        }
    }
    if (files == 0 || n == 0) {
        fprintf(stderr, "%s: no Brown Corpus texts (ca01 .. cr09) found\n", dir);
        free(ids);
        return 1;
    }
    *raw = ids;
    *count = n;
    return 0;
}

/* The corpus as ids of the training text's vocabulary: the words seen at
 * least min_count times in the first train words (at most max_vocab - 1
 * of them, most frequent first), every other word <unk>. */
static int load_corpus(const settings *s, corpus *c)
{
    char dir[4096];
    int rc = ex_data_dir("brown", dir, sizeof dir);
    if (rc)
        return rc;
    ex_vocab all;
    int32_t *raw = NULL;
    ex_vocab_init(&all);
    ex_vocab_init(&c->vocab);
    if (read_brown(dir, &all, &raw, &c->total_words))
        goto fail;
    c->train = s->train_words;
    c->valid = s->valid_words;
    c->test = s->test_words ? s->test_words : c->total_words - c->train - c->valid;
    if (c->train + c->valid >= c->total_words || c->train + c->valid + c->test > c->total_words ||
        c->train < 1000 || c->valid < 100 || c->test < 100) {
        fprintf(stderr, "the corpus has %zu words: too few for %zu/%zu/%zu\n", c->total_words,
                c->train, c->valid, c->test);
        goto fail;
    }
    c->size = c->train + c->valid + c->test;
    /* Count the training text only: all's counts become training counts. */
    memset(all.counts, 0, all.size * sizeof *all.counts);
    for (size_t k = 0; k < c->train; k++)
        all.counts[raw[k]]++;
    if (ex_vocab_keep(&all, s->min_count, s->max_vocab, &UNKNOWN, 1, &c->vocab)) {
        fprintf(stderr, "out of memory\n");
        goto fail;
    }
    for (size_t k = 0; k < c->size; k++) {
        const char *word = ex_vocab_word(&all, (size_t)raw[k]);
        int64_t id = ex_vocab_find(&c->vocab, word, strlen(word));
        raw[k] = id < 0 ? 0 : (int32_t)id;
    }
    c->ids = raw;
    ex_vocab_free(&all);
    return 0;
fail:
    free(raw);
    ex_vocab_free(&all);
    ex_vocab_free(&c->vocab);
    return 1;
}

/* ======================================================================
 * Baselines: the add-one unigram model and an interpolated Kneser-Ney
 * trigram model (Chen & Goodman 1998, section 3.6, with one discount per
 * order). With c() counts in the training text, N1+(.vw) the number of
 * distinct words seen before the bigram vw (a continuation count), and
 * D3, D2, D1 the discounts:
 *
 *   P3(w|u,v) = max(c(uvw) - D3, 0) / c(uv.) + D3 N1+(uv.) / c(uv.) P2(w|v)
 *               (P2(w|v) when c(uv.) = 0)
 *   P2(w|v)   = max(N1+(.vw) - D2, 0) / N1+(.v.)
 *               + D2 |{w: N1+(.vw) > 0}| / N1+(.v.) P1(w)
 *               (P1(w) when N1+(.v.) = 0)
 *   P1(w)     = max(N1+(.w) - D1, 0) / N1+(..) + D1 |{w: N1+(.w) > 0}| / N1+(..) / V
 *
 * Each discount is Ney's estimate D = n1 / (n1 + 2 n2) from the numbers
 * n1, n2 of that order's (continuation) counts equal to 1 and 2.
 * ====================================================================== */

/* Open-addressing hash table from a nonzero 64-bit key to two counts. */
typedef struct count_table {
    uint64_t *keys; /* 0: empty */
    uint32_t *first, *second;
    size_t mask, used;
} count_table;

static int table_create(count_table *table, size_t expected)
{
    size_t slots = 1024;
    while (slots < 2 * expected)
        slots *= 2;
    table->keys = calloc(slots, sizeof *table->keys);
    table->first = calloc(slots, sizeof *table->first);
    table->second = calloc(slots, sizeof *table->second);
    table->mask = slots - 1;
    table->used = 0;
    return !table->keys || !table->first || !table->second;
}

static void table_free(count_table *table)
{
    free(table->keys);
    free(table->first);
    free(table->second);
}

static size_t table_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xFF51AFD7ED558CCDu;
    key ^= key >> 33;
    return (size_t)key;
}

/* The slot of key: where it is, or the empty slot where it would go. The
 * table never fills past half (table_create's sizing: at most `expected`
 * keys are added). */
static size_t table_slot(const count_table *table, uint64_t key)
{
    size_t slot = table_hash(key) & table->mask;
    while (table->keys[slot] != 0 && table->keys[slot] != key)
        slot = (slot + 1) & table->mask;
    return slot;
}

/* The slot of key, added with zero counts when new. */
static size_t table_insert(count_table *table, uint64_t key)
{
    size_t slot = table_slot(table, key);
    if (table->keys[slot] == 0) {
        assert(table->used < table->mask / 2 + 1);
        table->keys[slot] = key;
        table->used++;
    }
    return slot;
}

/* Keys of n-grams: ids + 1 in 21 bits each, so no key is 0. */
static uint64_t key2(int32_t v, int32_t w)
{
    return ((uint64_t)(v + 1) << 21) | (uint64_t)(w + 1);
}
static uint64_t key3(int32_t u, int32_t v, int32_t w)
{
    return ((uint64_t)(u + 1) << 42) | key2(v, w);
}

typedef struct kn_model {
    size_t vocab_size;
    double discount[4];                    /* D1, D2, D3 at [1], [2], [3] */
    count_table trigrams;                  /* uvw -> c(uvw) */
    count_table contexts;                  /* uv  -> c(uv.), N1+(uv.) */
    count_table bigrams;                   /* vw  -> N1+(.vw), c(vw) */
    uint32_t *middle_total, *middle_types; /* v: N1+(.v.), |{w: N1+(.vw) > 0}| */
    uint32_t *unigram_cont;                /* w: N1+(.w) */
    double unigram_total, unigram_types;   /* N1+(..), |{w: N1+(.w) > 0}| */
    uint64_t *unigram_count;               /* w: c(w), for the add-one baseline */
    double train_size;
} kn_model;

static double ney_discount(size_t n1, size_t n2)
{
    return n1 + n2 > 0 ? (double)n1 / ((double)n1 + 2.0 * (double)n2) : 0.5;
}

static void kn_free(kn_model *kn)
{
    table_free(&kn->trigrams);
    table_free(&kn->contexts);
    table_free(&kn->bigrams);
    free(kn->middle_total);
    free(kn->middle_types);
    free(kn->unigram_cont);
    free(kn->unigram_count);
}

/* Count the training text ids[0, size) over a vocabulary of V words. */
static int kn_build(kn_model *kn, const int32_t *ids, size_t size, size_t V)
{
    memset(kn, 0, sizeof *kn);
    kn->vocab_size = V;
    kn->train_size = (double)size;
    if (table_create(&kn->trigrams, size) || table_create(&kn->contexts, size) ||
        table_create(&kn->bigrams, size) ||
        !(kn->middle_total = calloc(V, sizeof *kn->middle_total)) ||
        !(kn->middle_types = calloc(V, sizeof *kn->middle_types)) ||
        !(kn->unigram_cont = calloc(V, sizeof *kn->unigram_cont)) ||
        !(kn->unigram_count = calloc(V, sizeof *kn->unigram_count))) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < size; k++)
        kn->unigram_count[ids[k]]++;
    /* Trigram counts; each new trigram type uvw adds 1 to N1+(uv.) and to
     * N1+(.vw). Bigram counts c(vw) for the bigram types. */
    for (size_t k = 1; k < size; k++) {
        size_t slot = table_insert(&kn->bigrams, key2(ids[k - 1], ids[k]));
        if (kn->bigrams.second[slot]++ == 0) { /* a new bigram type vw */
            kn->unigram_cont[ids[k]]++;
            kn->unigram_total++;
        }
    }
    for (size_t k = 2; k < size; k++) {
        int32_t u = ids[k - 2], v = ids[k - 1], w = ids[k];
        size_t slot = table_insert(&kn->trigrams, key3(u, v, w));
        size_t context = table_insert(&kn->contexts, key2(u, v));
        kn->contexts.first[context]++;
        if (kn->trigrams.first[slot]++ == 0) { /* a new trigram type */
            kn->contexts.second[context]++;
            size_t bigram = table_slot(&kn->bigrams, key2(v, w));
            if (kn->bigrams.first[bigram]++ == 0)
                kn->middle_types[v]++;
            kn->middle_total[v]++;
        }
    }
    /* Discounts from the counts of counts of each order. */
    size_t n[4][3] = {{0}};
    for (size_t slot = 0; slot <= kn->trigrams.mask; slot++) {
        uint32_t count = kn->trigrams.first[slot];
        if (kn->trigrams.keys[slot] && count <= 2)
            n[3][count]++;
    }
    for (size_t slot = 0; slot <= kn->bigrams.mask; slot++) {
        uint32_t count = kn->bigrams.first[slot];
        if (kn->bigrams.keys[slot] && count >= 1 && count <= 2)
            n[2][count]++;
    }
    for (size_t w = 0; w < V; w++) {
        if (kn->unigram_cont[w] >= 1 && kn->unigram_cont[w] <= 2)
            n[1][kn->unigram_cont[w]]++;
        kn->unigram_types += kn->unigram_cont[w] > 0;
    }
    for (int order = 1; order <= 3; order++)
        kn->discount[order] = ney_discount(n[order][1], n[order][2]);
    return 0;
}

static double kn_unigram(const kn_model *kn, int32_t w)
{
    const double D = kn->discount[1];
    double seen = fmax((double)kn->unigram_cont[w] - D, 0.0) / kn->unigram_total;
    return seen + D * kn->unigram_types / kn->unigram_total / (double)kn->vocab_size;
}

static double kn_bigram(const kn_model *kn, int32_t v, int32_t w)
{
    const double D = kn->discount[2];
    double lower = kn_unigram(kn, w), total = kn->middle_total[v];
    if (total == 0.0)
        return lower;
    size_t slot = table_slot(&kn->bigrams, key2(v, w));
    double continuation = kn->bigrams.keys[slot] ? kn->bigrams.first[slot] : 0.0;
    return fmax(continuation - D, 0.0) / total + D * kn->middle_types[v] / total * lower;
}

/* P(w | u, v) of the interpolated Kneser-Ney trigram. */
static double kn_trigram(const kn_model *kn, int32_t u, int32_t v, int32_t w)
{
    const double D = kn->discount[3];
    double lower = kn_bigram(kn, v, w);
    size_t context = table_slot(&kn->contexts, key2(u, v));
    if (!kn->contexts.keys[context])
        return lower;
    double total = kn->contexts.first[context], types = kn->contexts.second[context];
    size_t slot = table_slot(&kn->trigrams, key3(u, v, w));
    double count = kn->trigrams.keys[slot] ? kn->trigrams.first[slot] : 0.0;
    return fmax(count - D, 0.0) / total + D * types / total * lower;
}

/* P(w) of the add-one unigram model. */
static double unigram_prob(const kn_model *kn, int32_t w)
{
    return ((double)kn->unigram_count[w] + 1.0) / (kn->train_size + (double)kn->vocab_size);
}

/* The largest |sum_w P(w|u,v) - 1| over a few contexts of the text (seen
 * and unseen ones): the model must be a distribution. */
static double kn_check_sums(const kn_model *kn, const int32_t *ids, size_t size)
{
    double worst = 0.0;
    for (size_t k = 0; k < 6; k++) {
        size_t at = 2 + k * (size - 3) / 6;
        int32_t u = ids[at - 2], v = ids[at - 1];
        if (k == 5) /* an unseen context: the same word three times */
            u = v = (int32_t)(kn->vocab_size - 1);
        double total = 0.0;
        for (size_t w = 0; w < kn->vocab_size; w++)
            total += kn_trigram(kn, u, v, (int32_t)w);
        worst = fmax(worst, fabs(total - 1.0));
    }
    return worst;
}

/* Perplexities of both baselines on ids[first, last), each word predicted
 * from the two words before it (first >= 2). */
static void baseline_perplexities(const kn_model *kn, const int32_t *ids, size_t first, size_t last,
                                  double *unigram, double *trigram)
{
    double unigram_nll = 0.0, trigram_nll = 0.0;
    for (size_t k = first; k < last; k++) {
        unigram_nll -= log(unigram_prob(kn, ids[k]));
        trigram_nll -= log(kn_trigram(kn, ids[k - 2], ids[k - 1], ids[k]));
    }
    *unigram = exp(unigram_nll / (double)(last - first));
    *trigram = exp(trigram_nll / (double)(last - first));
}

/* ======================================================================
 * The LSTM language model.
 * ====================================================================== */

typedef struct nextword {
    settings set;
    corpus text;
    kn_model kn;
    lstm_network *net;
    lstm_workspace *workspace;
    lstm_optim *optim;
    lstm_state *train_state;
    float *best_params; /* the best epoch's parameters, every part in order */
    int64_t *tokens;    /* one training chunk [T][B] */
    int32_t *targets;
    /* Evaluation, sized once: a chunk of EVAL_STREAMS streams. */
    lstm_state *eval_state;
    int64_t *eval_tokens;
    float *eval_logits;
    double *probabilities;
} nextword;

/* Every parameter buffer of a network: embedding, LSTM, head. */
static int network_buffers(lstm_network *net, float *params[3], size_t counts[3])
{
    return ex_failed(lstm_embedding_params(lstm_network_embedding(net), &params[0], &counts[0]),
                     "lstm_embedding_params") ||
           ex_failed(lstm_model_params(lstm_network_model(net), &params[1], &counts[1]),
                     "lstm_model_params") ||
           ex_failed(lstm_dense_params(lstm_network_head(net), &params[2], &counts[2]),
                     "lstm_dense_params");
}

/* Copy the parameters to (to_network = 0) or from (1) a flat buffer. */
static int copy_params(lstm_network *net, float *flat, int to_network)
{
    float *params[3];
    size_t counts[3], offset = 0;
    if (network_buffers(net, params, counts))
        return 1;
    for (int k = 0; k < 3; k++) {
        if (to_network)
            memcpy(params[k], flat + offset, counts[k] * sizeof *flat);
        else
            memcpy(flat + offset, params[k], counts[k] * sizeof *flat);
        offset += counts[k];
    }
    return 0;
}

/*
 * Score the text ids[first, last) with a network: EVAL_STREAMS segments read
 * side by side, EVAL_STEPS steps a call, each stream from a zero state fed
 * first the word before its segment, so every word of [first, last) is
 * predicted (first >= 1). Returns the summed negative log-likelihood; with
 * `predictions`, writes a row per word; with `logits_out`, copies the
 * first chunk's logits there (the reload check).
 */
static int lstm_score(nextword *nw, const lstm_network *net, size_t first, size_t last,
                      double *nll_sum, FILE *predictions, float *logits_out)
{
    const size_t V = nw->text.vocab.size, B = EVAL_STREAMS;
    const int32_t *ids = nw->text.ids;
    size_t segment = (last - first) / B; /* the last stream also takes the remainder */
    size_t longest = segment + (last - first) % B;
    lstm_sequences sequences = {.struct_size = sizeof sequences, .batch = B};
    size_t lengths[EVAL_STREAMS];
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = nw->eval_tokens};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = nw->eval_logits};
    double sum = 0.0;
    if (ex_failed(lstm_state_reset(nw->eval_state), "lstm_state_reset"))
        return 1;
    for (size_t step0 = 0; step0 < longest; step0 += EVAL_STEPS) {
        size_t steps = longest - step0 < EVAL_STEPS ? longest - step0 : EVAL_STEPS;
        /* Streams that have ended keep length 1 with a dummy token: their
         * state is never read again. */
        for (size_t b = 0; b < B; b++) {
            size_t own = b + 1 == B ? longest : segment;
            size_t left = own > step0 ? own - step0 : 1;
            lengths[b] = left < steps ? left : steps;
            for (size_t t = 0; t < steps; t++) {
                size_t at = first + b * segment + step0 + t; /* the word predicted */
                nw->eval_tokens[t * B + b] = t < lengths[b] && own > step0 ? ids[at - 1] : 0;
            }
        }
        sequences.steps = steps;
        sequences.lengths = lengths;
        if (ex_failed(lstm_network_infer_stream(net, nw->eval_state, &sequences, &inputs, &outputs),
                      "lstm_network_infer_stream"))
            return 1;
        if (logits_out && step0 == 0)
            memcpy(logits_out, nw->eval_logits, steps * B * V * sizeof *logits_out);
        for (size_t b = 0; b < B; b++) {
            size_t own = b + 1 == B ? longest : segment;
            for (size_t t = 0; t < steps && step0 + t < own; t++) {
                size_t at = first + b * segment + step0 + t;
                const float *row = nw->eval_logits + (t * B + b) * V;
                double lse = ex_softmax(row, V, nw->probabilities);
                double nll = lse - (double)row[ids[at]];
                sum += nll;
                if (predictions) {
                    fprintf(predictions, "%zu,\"%s\",%.6g,%.6g,%.6g,\"%s\"\n", at - first,
                            ex_vocab_word(&nw->text.vocab, (size_t)ids[at]), exp(-nll),
                            kn_trigram(&nw->kn, ids[at - 2], ids[at - 1], ids[at]),
                            unigram_prob(&nw->kn, ids[at]),
                            ex_vocab_word(&nw->text.vocab, ex_argmax(row, V)));
                }
            }
        }
    }
    *nll_sum = sum;
    return 0;
}

static int lstm_perplexity(nextword *nw, const lstm_network *net, size_t first, size_t last,
                           double *perplexity)
{
    double sum;
    if (lstm_score(nw, net, first, last, &sum, NULL, NULL))
        return 1;
    *perplexity = exp(sum / (double)(last - first));
    return 0;
}

static int setup(nextword *nw)
{
    const settings *s = &nw->set;
    const size_t T = s->bptt, B = s->batch, V = nw->text.vocab.size;
    lstm_embedding_config embedding = LSTM_EMBEDDING_CONFIG_INIT;
    lstm_config lstm;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    lstm_optim_options options;

    nw->tokens = malloc(T * B * sizeof *nw->tokens);
    nw->targets = malloc(T * B * sizeof *nw->targets);
    nw->eval_tokens = malloc(EVAL_STEPS * EVAL_STREAMS * sizeof *nw->eval_tokens);
    nw->eval_logits = malloc(EVAL_STEPS * EVAL_STREAMS * V * sizeof *nw->eval_logits);
    nw->probabilities = malloc(V * sizeof *nw->probabilities);
    if (!nw->tokens || !nw->targets || !nw->eval_tokens || !nw->eval_logits || !nw->probabilities) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (ex_failed(lstm_config_init(&lstm, sizeof lstm), "lstm_config_init"))
        return 1;
    embedding.num_embeddings = V;
    embedding.embedding_dim = s->embedding_dim;
    lstm.input_size = s->embedding_dim;
    lstm.hidden_size = s->hidden;
    lstm.proj_size = s->proj;
    lstm.num_layers = s->layers;
    lstm.dropout = s->layers > 1 ? s->dropout : 0.0;
    config.embedding = &embedding;
    config.lstm = &lstm;
    config.head = LSTM_HEAD_EVERY_STEP;
    config.loss = LSTM_LOSS_CROSS_ENTROPY;
    config.head_size = V;
    if (ex_failed(lstm_network_create(&config, &nw->net), "lstm_network_create") ||
        ex_failed(lstm_network_init(nw->net, s->seed, LSTM_INIT_FORGET_BIAS_ONE),
                  "lstm_network_init") ||
        ex_failed(lstm_workspace_create(lstm_network_model(nw->net), &nw->workspace),
                  "lstm_workspace_create") ||
        ex_failed(lstm_workspace_reserve(nw->workspace, LSTM_MODE_TRAIN, T, B),
                  "lstm_workspace_reserve") ||
        ex_failed(lstm_workspace_set_seed(nw->workspace, s->seed ^ 0xD0u),
                  "lstm_workspace_set_seed") ||
        ex_set_training_precision(nw->workspace, s->train_precision) ||
        ex_failed(lstm_state_create(lstm_network_model(nw->net), B, &nw->train_state),
                  "lstm_state_create") ||
        ex_failed(lstm_state_create(lstm_network_model(nw->net), EVAL_STREAMS, &nw->eval_state),
                  "lstm_state_create") ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    nw->best_params = malloc(lstm_network_param_count(nw->net) * sizeof *nw->best_params);
    if (!nw->best_params) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    options.lr = s->lr;
    return ex_failed(lstm_optim_create(&options, &nw->optim), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(nw->optim, nw->net), "lstm_optim_add_network") ||
           ex_failed(lstm_optim_zero_grads(nw->optim), "lstm_optim_zero_grads");
}

/*
 * One step of truncated BPTT. The training text is cut into B streams of
 * `stream` words, stream b starting at word b * stream; chunk `chunk` reads
 * words chunk T .. chunk T + T - 1 of every stream and predicts the word
 * after each. The state carries over from the previous chunk.
 */
static int train_step(nextword *nw, size_t chunk, size_t stream, double *loss)
{
    const size_t T = nw->set.bptt, B = nw->set.batch;
    const int32_t *ids = nw->text.ids;
    const lstm_sequences sequences = {.struct_size = sizeof sequences, .steps = T, .batch = B};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = nw->tokens};
    const lstm_targets targets = {.struct_size = sizeof targets, .classes = nw->targets};
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < B; b++) {
            size_t at = b * stream + chunk * T + t;
            nw->tokens[t * B + b] = ids[at];
            nw->targets[t * B + b] = ids[at + 1];
        }
    }
    return ex_failed(lstm_network_train_chunk(nw->net, nw->workspace, nw->train_state, &sequences,
                                              &inputs, NULL),
                     "lstm_network_train_chunk") ||
           ex_failed(lstm_network_train_backward(nw->net, nw->workspace, &targets, loss),
                     "lstm_network_train_backward") ||
           ex_failed(lstm_optim_clip_grad_norm(nw->optim, CLIP_NORM, NULL),
                     "lstm_optim_clip_grad_norm") ||
           ex_failed(lstm_optim_step(nw->optim), "lstm_optim_step") ||
           ex_failed(lstm_optim_zero_grads(nw->optim), "lstm_optim_zero_grads");
}

/* Train for the set epochs (or until max_minutes), measuring the
 * validation perplexity `evals` times an epoch and keeping the weights of
 * the best measurement; when one is no better than the best, training goes
 * back to the best weights with a quarter of the learning rate. *best_valid
 * receives the best validation perplexity. */
static int train(nextword *nw, FILE *csv, double unigram_valid, double kn_valid, double *best_valid)
{
    const settings *s = &nw->set;
    const size_t T = s->bptt, B = s->batch;
    size_t stream = (nw->text.train - 1) / B; /* words per stream, with the next word */
    size_t chunks = (stream - 1) / T;
    size_t eval_every = chunks / s->evals ? chunks / s->evals : 1;
    double lr = s->lr, sum = 0.0, recent = 0.0;
    size_t summed = 0;
    int stop = 0;
    ex_progress progress;
    uint64_t total_steps = s->epochs * chunks;
    ex_progress_begin(&progress, s->steps && s->steps < total_steps ? s->steps : total_steps,
                      "words");
    *best_valid = INFINITY;
    for (uint64_t epoch = 1; epoch <= s->epochs && !stop; epoch++) {
        if (ex_failed(lstm_state_reset(nw->train_state), "lstm_state_reset"))
            return 1;
        for (size_t chunk = 0; chunk < chunks && !stop; chunk++) {
            double loss;
            /* With --steps, the rate follows a cosine from lr down to a tenth
             * of it over the run. */
            uint64_t step = (epoch - 1) * chunks + chunk;
            double step_lr = lr;
            if (s->steps && (ex_failed(lstm_schedule_cosine(lr, 0.1 * lr, s->steps, step, &step_lr),
                                       "lstm_schedule_cosine") ||
                             ex_failed(lstm_optim_set_lr(nw->optim, step_lr), "lstm_optim_set_lr")))
                return 1;
            if (train_step(nw, chunk, stream, &loss))
                return 1;
            sum += loss;
            summed++;
            recent = summed == 1 && epoch == 1 ? loss : 0.98 * recent + 0.02 * loss;
            uint64_t done = step + 1;
            ex_progress_update(&progress, done, recent, done * T * B);
            if (s->steps && done >= s->steps) {
                printf("stopping after %llu steps (--steps), in epoch %llu at chunk %zu/%zu\n",
                       (unsigned long long)done, (unsigned long long)epoch, chunk + 1, chunks);
                stop = 1;
            } else if (s->max_minutes > 0 &&
                       ex_progress_seconds(&progress) > 60.0 * s->max_minutes) {
                printf("time budget of %.1f min reached after %llu steps, in epoch %llu at chunk "
                       "%zu/%zu\n",
                       s->max_minutes, (unsigned long long)done, (unsigned long long)epoch,
                       chunk + 1, chunks);
                stop = 1;
            }
            int last = chunk + 1 == chunks;
            /* Measure every eval_every chunks, and at the epoch's end unless a
             * measurement was made just before it. */
            int measure =
                last || ((chunk + 1) % eval_every == 0 && chunks - (chunk + 1) >= eval_every / 2);
            if (!stop && !measure)
                continue;
            double train_ppl = exp(sum / (double)summed), valid;
            if (lstm_perplexity(nw, nw->net, nw->text.train, nw->text.train + nw->text.valid,
                                &valid))
                return 1;
            double epochs_done = (double)(epoch - 1) + (double)(chunk + 1) / (double)chunks;
            printf("epoch %.2f: training perplexity %.1f, validation perplexity %.1f (KN trigram "
                   "%.1f, unigram %.1f), lr %g, %.0f s\n",
                   epochs_done, train_ppl, valid, kn_valid, unigram_valid, step_lr,
                   ex_progress_seconds(&progress));
            fflush(stdout);
            if (csv)
                fprintf(csv, "%.4f,%.4f,%.4f,%.4f,%.4f\n", epochs_done, train_ppl, valid,
                        unigram_valid, kn_valid);
            sum = 0.0;
            summed = 0;
            if (valid < *best_valid) {
                *best_valid = valid;
                if (copy_params(nw->net, nw->best_params, 0))
                    return 1;
            } else { /* no better: back to the best weights, a quarter of the rate */
                lr /= 4.0;
                if (copy_params(nw->net, nw->best_params, 1) ||
                    ex_failed(lstm_optim_set_lr(nw->optim, lr), "lstm_optim_set_lr"))
                    return 1;
            }
        }
    }
    return copy_params(nw->net, nw->best_params, 1);
}

/* Save the network with its vocabulary and a description. */
static int save(nextword *nw, double test_ppl, double kn_test)
{
    char description[1024];
    snprintf(description, sizeof description,
             "nextword (examples/nextword.c): a word-level LSTM language model of the Brown "
             "Corpus (lowercased, tags stripped, words seen 3 times or fewer in the first "
             "800,000 words mapped to <unk>). Token k is line k of \"vocabulary\"; the head's "
             "output at each step gives the logits of the next word. Test perplexity %.1f "
             "(interpolated Kneser-Ney trigram %.1f, same run).",
             test_ppl, kn_test);
    return ex_vocab_save_meta(&nw->text.vocab, nw->net, "vocabulary") ||
           ex_set_meta_text(nw->net, "description", description) ||
           ex_failed(lstm_network_save(nw->net, NULL, nw->set.model_path), "lstm_network_save");
}

static void teardown(nextword *nw)
{
    lstm_optim_destroy(nw->optim);
    lstm_state_destroy(nw->train_state);
    lstm_state_destroy(nw->eval_state);
    lstm_workspace_destroy(nw->workspace);
    lstm_network_destroy(nw->net);
    kn_free(&nw->kn);
    free(nw->text.ids);
    ex_vocab_free(&nw->text.vocab);
    free(nw->best_params);
    free(nw->tokens);
    free(nw->targets);
    free(nw->eval_tokens);
    free(nw->eval_logits);
    free(nw->probabilities);
}

/* ======================================================================
 * Answer mode: the saved file alone.
 * ====================================================================== */

/* Feed one word to a stream of batch 1; logits receives the next word's. */
static int feed(const lstm_network *net, lstm_state *state, int64_t token, float *logits)
{
    const lstm_sequences one_step = {.struct_size = sizeof one_step, .steps = 1, .batch = 1};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = &token};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = logits};
    return ex_failed(lstm_network_infer_stream(net, state, &one_step, &inputs, &outputs),
                     "lstm_network_infer_stream");
}

/* A draw from softmax(logits / temperature). */
static size_t sample_word(const float *logits, size_t count, double temperature, double *weights,
                          uint64_t *rng)
{
    double max = logits[ex_argmax(logits, count)], total = 0.0;
    for (size_t v = 0; v < count; v++)
        total += weights[v] = exp(((double)logits[v] - max) / temperature);
    double u = ex_random_unit(rng) * total;
    for (size_t v = 0; v < count; v++) {
        if (u < weights[v])
            return v;
        u -= weights[v];
    }
    return count - 1;
}

static int answer(const settings *s)
{
    lstm_network *net = NULL;
    lstm_state *state = NULL;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    ex_vocab vocab;
    float *logits = NULL;
    double *probabilities = NULL;
    uint64_t rng = s->seed;
    int rc = 1;
    ex_vocab_init(&vocab);
    if (ex_failed(lstm_network_load(s->model_path, &net), "lstm_network_load") ||
        ex_failed(lstm_network_get_config(net, &config), "lstm_network_get_config"))
        goto out;
    if (!config.embedding || config.head != LSTM_HEAD_EVERY_STEP ||
        config.loss != LSTM_LOSS_CROSS_ENTROPY ||
        config.head_size != config.embedding->num_embeddings) {
        fprintf(stderr, "%s: not a next-word model (token input, a vocabulary-wide head)\n",
                s->model_path);
        goto out;
    }
    const size_t V = config.head_size;
    if (ex_vocab_load_meta(&vocab, net, "vocabulary", V))
        goto out;
    int64_t unknown = ex_vocab_find(&vocab, UNKNOWN, strlen(UNKNOWN));
    logits = malloc(V * sizeof *logits);
    probabilities = malloc(V * sizeof *probabilities);
    if (!logits || !probabilities) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (ex_failed(lstm_state_create(lstm_network_model(net), 1, &state), "lstm_state_create") ||
        ex_set_precision(NULL, state, s->precision))
        goto out;
    printf("prompt:");
    size_t fed = 0;
    for (const char *p = s->prompt; *p;) {
        char word[MAX_WORD];
        size_t length = 0;
        while (*p && isspace((unsigned char)*p))
            p++;
        while (*p && !isspace((unsigned char)*p)) {
            if (length + 1 < MAX_WORD)
                word[length++] = (char)tolower((unsigned char)*p);
            p++;
        }
        if (length == 0)
            break;
        int64_t id = ex_vocab_find(&vocab, word, length);
        if (id < 0 && unknown < 0) {
            fprintf(stderr, "'%.*s' is not in the model's vocabulary\n", (int)length, word);
            goto out;
        }
        printf(" %s", id < 0 ? UNKNOWN : ex_vocab_word(&vocab, (size_t)id));
        if (feed(net, state, id < 0 ? unknown : id, logits))
            goto out;
        fed++;
    }
    printf("\n");
    if (fed == 0) {
        fprintf(stderr, "--prompt: no words\n");
        goto out;
    }
    ex_softmax(logits, V, probabilities);
    printf("most likely next words:\n");
    for (size_t rank = 0; rank < TOP_WORDS && rank < V; rank++) {
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (probabilities[v] > probabilities[best])
                best = v;
        printf("  %zu. %-16s %.4f\n", rank + 1, ex_vocab_word(&vocab, best), probabilities[best]);
        probabilities[best] = -1.0; /* taken */
    }
    printf("continuation (%llu words, temperature %.2f, seed %llu):\n ",
           (unsigned long long)s->words, s->temperature, (unsigned long long)s->seed);
    for (uint64_t k = 0; k < s->words; k++) {
        size_t word = sample_word(logits, V, s->temperature, probabilities, &rng);
        printf(" %s", ex_vocab_word(&vocab, word));
        if (feed(net, state, (int64_t)word, logits))
            goto out;
    }
    printf("\n");
    rc = 0;
out:
    lstm_state_destroy(state);
    lstm_network_destroy(net);
    ex_vocab_free(&vocab);
    free(logits);
    free(probabilities);
    return rc;
}

/* ======================================================================
 * Command line and the training run.
 * ====================================================================== */

static int parse_args(int argc, char **argv, settings *s)
{
    /* Defaults: the full run. --smoke is applied first, so that other
     * options still override it whatever their order. */
    memset(s, 0, sizeof *s);
    s->model_path = "nextword.lstm";
    s->epochs = 3;
    s->embedding_dim = 128;
    s->hidden = 512;
    s->proj = 128;
    s->evals = 2;
    s->layers = 1;
    s->batch = 32;
    s->bptt = 35;
    s->words = 20;
    s->seed = 20031;
    s->train_words = 800000;
    s->valid_words = 200000;
    s->test_words = 0; /* the rest */
    s->max_vocab = 1u << 20;
    s->min_count = 4;
    s->lr = 3e-3;
    s->dropout = 0.3;
    s->temperature = 0.8;
    s->max_minutes = 0.0;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--smoke") == 0) {
            s->smoke = 1;
            s->epochs = 2;
            s->embedding_dim = 64;
            s->hidden = 128;
            s->proj = 0;
            s->evals = 1;
            s->batch = 16;
            s->bptt = 20;
            s->train_words = 50000;
            s->valid_words = 15000;
            s->test_words = 15000;
            s->max_vocab = 2000;
            s->lr = 5e-3;
            s->model_path = "nextword-smoke.lstm";
        }
    }
    for (int k = 1; k < argc; k++) {
        const char *name = argv[k], *value = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(name, "--smoke") == 0)
            continue;
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            printf("usage: %s [--smoke] [--model FILE] [--csv FILE] [--predictions FILE]\n"
                   "          [--epochs N] [--embedding-dim E] [--hidden H] [--proj P] [--layers "
                   "1|2]\n"
                   "          [--dropout P] [--batch B] [--bptt T] [--lr RATE]\n"
                   "          [--evals N] [--steps N] [--max-minutes M] [--seed N]\n"
                   "          [--train-precision fp32|bf16]\n"
                   "       %s --model FILE --prompt TEXT [--words N] [--temperature TAU]\n"
                   "          [--seed N] [--precision fp32|bf16|int8]\n",
                   argv[0], argv[0]);
            exit(0);
        }
        if (!value) {
            fprintf(stderr, "unknown option or missing value: %s (try --help)\n", name);
            return 1;
        }
        k++;
        int bad = 0;
        if (strcmp(name, "--model") == 0)
            s->model_path = value;
        else if (strcmp(name, "--csv") == 0)
            s->csv_path = value;
        else if (strcmp(name, "--predictions") == 0)
            s->predictions_path = value;
        else if (strcmp(name, "--prompt") == 0)
            s->prompt = value;
        else if (strcmp(name, "--epochs") == 0)
            bad = ex_parse_count(name, value, 1, 1000, &s->epochs);
        else if (strcmp(name, "--steps") == 0)
            bad = ex_parse_count(name, value, 0, UINT64_MAX, &s->steps);
        else if (strcmp(name, "--embedding-dim") == 0)
            bad = ex_parse_count(name, value, 1, 4096, &s->embedding_dim);
        else if (strcmp(name, "--hidden") == 0)
            bad = ex_parse_count(name, value, 1, 4096, &s->hidden);
        else if (strcmp(name, "--proj") == 0)
            bad = ex_parse_count(name, value, 0, 4095, &s->proj);
        else if (strcmp(name, "--evals") == 0)
            bad = ex_parse_count(name, value, 1, 100, &s->evals);
        else if (strcmp(name, "--layers") == 0)
            bad = ex_parse_count(name, value, 1, 2, &s->layers);
        else if (strcmp(name, "--batch") == 0)
            bad = ex_parse_count(name, value, 1, 1024, &s->batch);
        else if (strcmp(name, "--bptt") == 0)
            bad = ex_parse_count(name, value, 1, 1000, &s->bptt);
        else if (strcmp(name, "--words") == 0)
            bad = ex_parse_count(name, value, 0, 10000, &s->words);
        else if (strcmp(name, "--seed") == 0)
            bad = ex_parse_count(name, value, 0, UINT64_MAX, &s->seed);
        else if (strcmp(name, "--lr") == 0)
            bad = ex_parse_double(name, value, 1e-6, 1.0, &s->lr);
        else if (strcmp(name, "--dropout") == 0)
            bad = ex_parse_double(name, value, 0.0, 0.9, &s->dropout);
        else if (strcmp(name, "--temperature") == 0)
            bad = ex_parse_double(name, value, 0.01, 10.0, &s->temperature);
        else if (strcmp(name, "--max-minutes") == 0)
            bad = ex_parse_double(name, value, 0.0, 1e6, &s->max_minutes);
        else if (strcmp(name, "--precision") == 0)
            bad = ex_parse_precision(value, &s->precision);
        else if (strcmp(name, "--train-precision") == 0)
            bad = ex_parse_training_precision(value, &s->train_precision);
        else {
            fprintf(stderr, "unknown option: %s (try --help)\n", name);
            return 1;
        }
        if (bad)
            return 1;
    }
    return 0;
}

/* The trained network's test perplexity, in the precision of nw->eval_state
 * (ex_evaluate_precisions). */
static int test_perplexity(void *context, double *metric)
{
    nextword *nw = context;
    size_t test0 = nw->text.train + nw->text.valid;
    return lstm_perplexity(nw, nw->net, test0, nw->text.size, metric);
}

/* The training run: data, baselines, training, test, save, reload. Returns
 * the exit status. */
static int run(nextword *nw)
{
    const settings *s = &nw->set;
    FILE *csv = NULL, *predictions = NULL;
    lstm_network *loaded = NULL;
    ex_vocab loaded_vocab;
    float *first_logits = NULL, *reloaded_logits = NULL;
    int passed = 0;
    ex_vocab_init(&loaded_vocab);

    int rc = load_corpus(s, &nw->text);
    if (rc)
        return rc;
    corpus *text = &nw->text;
    const size_t V = text->vocab.size, valid0 = text->train, test0 = text->train + text->valid;
    printf("liblstm %s: Brown Corpus, %zu words in 500 texts; train %zu, validation %zu, test "
           "%zu; vocabulary %zu words (<unk> + words seen >= %llu times in training%s)\n",
           lstm_version_string(), text->total_words, text->train, text->valid, text->test, V,
           (unsigned long long)s->min_count, s->smoke ? ", top 2000: smoke" : "");
    size_t unknowns = 0;
    for (size_t k = test0; k < text->size; k++)
        unknowns += text->ids[k] == 0;
    printf("test words that are <unk>: %zu (%.2f%%)\n", unknowns,
           100.0 * (double)unknowns / (double)text->test);

    /* Baselines. */
    if (kn_build(&nw->kn, text->ids, text->train, V))
        goto out;
    double sum_error = kn_check_sums(&nw->kn, text->ids, text->train);
    printf("KN trigram: discounts D1 %.3f D2 %.3f D3 %.3f; %zu trigram, %zu bigram types; "
           "largest |sum_w P(w|u,v) - 1| over 6 contexts %.2g\n",
           nw->kn.discount[1], nw->kn.discount[2], nw->kn.discount[3], nw->kn.trigrams.used,
           nw->kn.bigrams.used, sum_error);
    int sums_to_one = sum_error < 1e-9;
    assert(sums_to_one);
    double unigram_valid, kn_valid, unigram_test, kn_test;
    baseline_perplexities(&nw->kn, text->ids, valid0, test0, &unigram_valid, &kn_valid);
    baseline_perplexities(&nw->kn, text->ids, test0, text->size, &unigram_test, &kn_test);
    printf("baselines: validation perplexity unigram %.1f, KN trigram %.1f; test perplexity "
           "unigram %.1f, KN trigram %.1f\n",
           unigram_valid, kn_valid, unigram_test, kn_test);

    if (setup(nw))
        goto out;
    printf("model: embedding %zu x %llu (%zu parameters) + LSTM H=%llu P=%llu layers=%llu (%zu) "
           "+ dense %llu->%zu (%zu); Adam lr %g, clip %g, dropout %g, BPTT %llu, batch %llu, "
           "%llu epochs%s, training in %s%s\n",
           V, (unsigned long long)s->embedding_dim,
           lstm_embedding_param_count(lstm_network_embedding(nw->net)),
           (unsigned long long)s->hidden, (unsigned long long)s->proj,
           (unsigned long long)s->layers, lstm_model_param_count(lstm_network_model(nw->net)),
           (unsigned long long)(s->proj ? s->proj : s->hidden), V,
           lstm_dense_param_count(lstm_network_head(nw->net)), s->lr, CLIP_NORM,
           s->layers > 1 ? s->dropout : 0.0, (unsigned long long)s->bptt,
           (unsigned long long)s->batch, (unsigned long long)s->epochs,
           s->steps ? " at most, --steps with a cosine rate" : "",
           ex_precision_name(s->train_precision), s->smoke ? " (smoke)" : "");
    fflush(stdout);
    if (s->csv_path &&
        !(csv =
              ex_open_csv(s->csv_path, "epoch,train_ppl,valid_ppl,unigram_valid_ppl,kn_valid_ppl")))
        goto out;
    double best_valid;
    if (train(nw, csv, unigram_valid, kn_valid, &best_valid))
        goto out;

    /* Test, with the predictions if asked for. */
    if (s->predictions_path &&
        !(predictions = ex_open_csv(s->predictions_path,
                                    "index,word,lstm_prob,kn_prob,unigram_prob,lstm_top")))
        goto out;
    double test_nll;
    if (lstm_score(nw, nw->net, test0, text->size, &test_nll, predictions, NULL))
        goto out;
    double test_ppl = exp(test_nll / (double)text->test);
    printf("test perplexity: LSTM %.1f, KN trigram %.1f, unigram %.1f (validation: LSTM %.1f, "
           "KN %.1f)\n",
           test_ppl, kn_test, unigram_test, best_valid, kn_valid);
    printf("published: Bengio et al. (JMLR 2003), this protocol with their vocabulary of 16,383 "
           "words: a 24%% difference in test perplexity between their best neural network and "
           "the best n-gram model (here: the LSTM's %.0f%% below the KN trigram's, which is "
           "%.0f%% above it)\n",
           100.0 * (1.0 - test_ppl / kn_test), 100.0 * (kn_test / test_ppl - 1.0));
    double metrics[EX_PRECISIONS];
    if (ex_evaluate_precisions(NULL, nw->eval_state, test_perplexity, nw, metrics))
        goto out;
    ex_print_precisions("held-out perplexity", metrics, 2, "");
    ex_print_precision_bound(metrics, PRECISION_RELATIVE, 1, "1%");
    int precision_kept = !s->smoke || ex_print_precision_bound(metrics, SMOKE_PRECISION_RELATIVE, 1,
                                                               "3% (the smoke run's bound)");

    /* Save, reload from the file alone, and check the same outputs on the
     * first words of the test text. */
    const size_t check_end = test0 + (text->test < RELOAD_CHECK ? text->test : RELOAD_CHECK);
    size_t chunk_values = EVAL_STEPS * EVAL_STREAMS * V;
    first_logits = malloc(chunk_values * sizeof *first_logits);
    reloaded_logits = malloc(chunk_values * sizeof *reloaded_logits);
    if (!first_logits || !reloaded_logits) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    double reloaded_nll;
    if (save(nw, test_ppl, kn_test) ||
        ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load") ||
        ex_vocab_load_meta(&loaded_vocab, loaded, "vocabulary", V) ||
        lstm_score(nw, nw->net, test0, check_end, &test_nll, NULL, first_logits) ||
        lstm_score(nw, loaded, test0, check_end, &reloaded_nll, NULL, reloaded_logits))
        goto out;
    int same = reloaded_nll == test_nll &&
               memcmp(first_logits, reloaded_logits, chunk_values * sizeof *first_logits) == 0;
    for (size_t k = 0; k < V && same; k++)
        same = strcmp(ex_vocab_word(&loaded_vocab, k), ex_vocab_word(&text->vocab, k)) == 0;
    printf("saved %s; reloaded: perplexity of the first %zu test words %.6f (before saving "
           "%.6f), logits and vocabulary %s\n",
           s->model_path, check_end - test0, exp(reloaded_nll / (double)(check_end - test0)),
           exp(test_nll / (double)(check_end - test0)), same ? "identical" : "DIFFERENT");

    int beats = test_ppl < SMOKE_MARGIN * unigram_test;
    printf("LSTM test perplexity %.1f %s %.1f x unigram (%.1f); %s the KN trigram (%.1f); "
           "reload check %s; trained in %s\n",
           test_ppl, beats ? "<" : ">=", SMOKE_MARGIN, SMOKE_MARGIN * unigram_test,
           test_ppl < kn_test ? "below" : "NOT below", kn_test, same ? "passed" : "FAILED",
           ex_precision_name(s->train_precision));
    passed = beats && same && sums_to_one && precision_kept;
out:
    if (csv && ex_close_csv(csv, s->csv_path))
        passed = 0;
    if (predictions && ex_close_csv(predictions, s->predictions_path))
        passed = 0;
    lstm_network_destroy(loaded);
    ex_vocab_free(&loaded_vocab);
    free(first_logits);
    free(reloaded_logits);
    return passed ? 0 : 1;
}

int main(int argc, char **argv)
{
    nextword nw;
    memset(&nw, 0, sizeof nw);
    if (parse_args(argc, argv, &nw.set))
        return 1;
    if (nw.set.prompt)
        return answer(&nw.set);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = run(&nw);
    printf("total %.1f s\n", ex_seconds_since(&start));
    teardown(&nw);
    return rc;
}
