/*
 * sentiment.c: is a review sentence positive or negative? A word-level
 * LSTM classifier against multinomial naive Bayes and the majority class,
 * on the same tokens and the same held-out split, in the same run.
 *
 * Data (--data uci, the default): the UCI "Sentiment Labelled Sentences"
 * (Kotzias, Denil, de Freitas, Smyth, "From group to individual labels
 * using deep features", KDD 2015; CC BY 4.0): 3 x 1,000 sentences from
 * Amazon, IMDB and Yelp reviews, each labelled positive or negative by
 * people, half of each positive. Read from the fetched data set
 * "sentiment" (test/fixtures/{amazon,imdb,yelp}.json, arrays of
 * {"text", "class"}; the one entry per file without a class is skipped).
 * A seeded split, stratified by label: 80% train, 10% validation (early
 * stopping), 10% test.
 * --data imdb, the long run: the 50,000 IMDB movie reviews of Maas et al.
 * (ACL 2011), data set "imdb" (reviews.json, {"t", "s"}), whose original
 * train/test split is lost: "<br />" tags become spaces, exact duplicate
 * reviews are kept once (so no review is in two parts), then the same
 * seeded stratified 80/10/10 split. Reviews are cut to their last
 * --max-length tokens.
 *
 * Tokens: ex_next_word (lowercase words, "don't" kept whole, each
 * punctuation mark a token). The vocabulary is the training part's words
 * (and --extra-imdb sentences) seen at least --min-count times (at most
 * --vocab words), after "<pad>" (id 0) and "<unk>" (id 1, every other
 * word).
 *
 * Model: one lstm_network: an embedding (E), a bidirectional LSTM (H per
 * direction; --layers, --dropout between layers), a dense head on each
 * sentence's last step (the forward direction's final state and the
 * reverse direction's state at step 0, side by side) to one logit, trained
 * with binary cross-entropy (LSTM_LOSS_BCE_WITH_LOGITS). Sentences of
 * mixed lengths share a batch (lstm_sequences.lengths); batches are cut
 * from length-sorted runs of the shuffled training set, so their members
 * have similar lengths. Regularisation: word dropout (a training token
 * becomes "<unk>" with probability --word-dropout, which also teaches the
 * model the "<unk>" it meets in unseen text), and early stopping: the
 * network of the epoch with the best validation accuracy is kept. Adam,
 * the gradient norm clipped to 5.
 *
 * Baselines, same tokens, same split: the training part's majority class,
 * and multinomial naive Bayes with Laplace (add-one) smoothing over the
 * vocabulary's words ("<unk>" left out), class priors from the training
 * part. Published references: UCI sentences, naive Bayes cross-validated
 * about 0.83 (issue 24); Kotzias et al. report their own figures per site.
 * IMDB reviews: Maas et al. 88.89% (their word vectors + bag of words);
 * a plain LSTM 86.5% (Dai & Le 2015).
 *
 * At the end the network is saved to one file (--model) with metadata:
 * "vocabulary" (ex_vocab_save_meta), "max_length", "tokenizer" and
 * "description"; loaded back, it must give the test set's logits to the
 * same bits.
 *
 * Usage: sentiment [--data uci|imdb] [--smoke] [--model FILE] [--csv FILE]
 *                  [--predictions FILE] [--seed N] [--epochs N]
 *                  [--patience N] [--batch B] [--embedding-dim E]
 *                  [--hidden H] [--layers L] [--dropout P]
 *                  [--word-dropout P] [--lr RATE] [--weight-decay W]
 *                  [--min-count N] [--vocab N] [--max-length N]
 *                  [--train-limit N] [--unidirectional]
 *                  [--extra-imdb N] [--pretrain-epochs N]
 *                  [--train-precision fp32|bf16]
 *        sentiment --answer --model FILE [--precision P] < sentences.txt
 *   --csv FILE          one row per epoch: epoch,train_loss,valid_accuracy,
 *                       test_accuracy,naive_bayes_test_accuracy,
 *                       naive_bayes_extra_test_accuracy (naive Bayes given
 *                       the --extra-imdb sentences too; without them, the
 *                       same as naive Bayes),majority_test_accuracy
 *   --predictions FILE  the test set: label,lstm_probability,
 *                       naive_bayes_probability,
 *                       naive_bayes_extra_probability,text
 *   --answer            read sentences from standard input, one a line, and
 *                       print each one's probability of being positive and
 *                       the sentence, using only the model file.
 *   --precision P       answer mode's arithmetic: fp32 (default), bf16 or
 *                       int8 (lstm_workspace_set_precision: the LSTM layers'
 *                       products, the embedding's rows and the head's
 *                       product).
 *   --extra-imdb N      more training data for the UCI run: the sentences
 *                       of N random IMDB reviews (Maas et al.), each with its
 *                       review's label, leaving out any review that holds a
 *                       held-out UCI sentence. The network first trains on
 *                       them and the UCI training sentences together
 *                       (--pretrain-epochs, default 3), then on the UCI
 *                       training sentences alone; naive Bayes is reported
 *                       both without and with them.
 *   --train-limit N     train on N random training texts only.
 *   --train-precision P training's arithmetic: fp32 (default) or bf16
 *                       (lstm_workspace_set_training_precision: every
 *                       product of the forward and backward passes in
 *                       bf16, sums, weights and Adam's state in float32).
 *   --smoke             a run of a few seconds on the UCI data, for ctest.
 *
 * Reference runs (examples/results/sentiment*.log, 2 shared cores):
 *   sentiment --extra-imdb 5000 --min-count 2 --epochs 15 --patience 5
 *     (68 s): test accuracy LSTM 0.850, naive Bayes 0.837 (0.773 given the
 *     extra sentences too), majority 0.500; over 5 seeded splits LSTM 0.849
 *     against naive Bayes 0.824. The UCI sentences alone (sentiment): LSTM
 *     0.790 against naive Bayes 0.824 over the same 5 splits.
 *   sentiment --data imdb --train-limit 30000 --epochs 3 --max-length 150
 *     --embedding-dim 64 --hidden 64 (2.6 min): LSTM 0.870, naive Bayes 0.850
 *     (on the same last 150 tokens), majority 0.502, on 4,957 reviews.
 * The kept network's test accuracy is printed in float32, bf16 and int8
 * (ex_evaluate_precisions), the same network each time.
 * Exit status: training runs exit 0 when the reloaded network gives the
 * same logits and (with --smoke) the LSTM's test accuracy is at least the
 * majority class's + 0.15 and its bf16 and int8 accuracies are within
 * SMOKE_PRECISION_POINTS of it; 1 when not or on any error; 77 (EX_SKIP) with
 * the fetch command when the data set is missing.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getline */

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

enum {
    PAD = 0, /* token ids of the two specials */
    UNK = 1,
    MAX_WORD = 64,   /* longer words are cut */
    EVAL_BATCH = 64, /* sequences per inference call */
    SORT_RUN = 16,   /* batches per length-sorted run of the training order */
    TRAIN = 0,       /* the parts of the data */
    VALID = 1,
    TEST = 2,
    EXTRA = 3, /* --extra-imdb sentences: trained on in the first phase only */
    UNUSED = 4 /* training texts past --train-limit */
};

static const char *const SPECIALS[] = {"<pad>", "<unk>"};

/* The bound for reduced precision, in accuracy points, and the
 * smoke run's looser one (its 300 test sentences are 0.33 points each). */
static const double PRECISION_POINTS = 0.5, SMOKE_PRECISION_POINTS = 2.0;

typedef struct settings {
    const char *data, *model_path, *csv_path, *predictions_path;
    int smoke, answer, unidirectional;
    lstm_precision precision;       /* of answer mode */
    lstm_precision train_precision; /* of the training calls */
    uint64_t seed, epochs, patience, batch, embedding_dim, hidden, layers;
    uint64_t min_count, vocab_size, max_length, train_limit, extra, pretrain_epochs;
    double dropout, word_dropout, lr, weight_decay;
} settings;

/* Labelled texts as read. */
typedef struct texts {
    char **text;
    int *label;
    size_t count, capacity;
} texts;

/* Token ids of documents, back to back: document k is
 * tokens[start[k] .. start[k] + length[k]). */
typedef struct encoded {
    int64_t *tokens;
    size_t *start, *length;
    float *label;
    size_t *source; /* the document's index in the texts */
    size_t count, token_count, max_length;
} encoded;

/* ---- reading the data ---- */

static int add_text(texts *set, const char *text, size_t length, int label)
{
    if (set->count == set->capacity) {
        size_t capacity = set->capacity ? 2 * set->capacity : 1024;
        char **text_bigger = realloc(set->text, capacity * sizeof *text_bigger);
        if (text_bigger)
            set->text = text_bigger;
        int *label_bigger = realloc(set->label, capacity * sizeof *label_bigger);
        if (label_bigger)
            set->label = label_bigger;
        if (!text_bigger || !label_bigger)
            return 1;
        set->capacity = capacity;
    }
    char *copy = malloc(length + 1);
    if (!copy)
        return 1;
    memcpy(copy, text, length);
    copy[length] = '\0';
    set->text[set->count] = copy;
    set->label[set->count] = label;
    set->count++;
    return 0;
}

static void free_texts(texts *set)
{
    for (size_t k = 0; k < set->count; k++)
        free(set->text[k]);
    free(set->text);
    free(set->label);
    memset(set, 0, sizeof *set);
}

/* Replace every "<br />" (and "<br/>", "<br>") by spaces. */
static void strip_breaks(char *text)
{
    for (char *at = strstr(text, "<br"); at; at = strstr(at, "<br")) {
        char *close = strchr(at, '>');
        if (!close || close - at > 6) {
            at += 3;
            continue;
        }
        memset(at, ' ', (size_t)(close - at + 1));
    }
}

/* An array of objects {text_key: string, label_key: 0|1|null}; objects with
 * a null label are skipped, other keys ignored. Returns 0, or 1 with a
 * message. dedupe (may be NULL) keeps only the first of equal texts. */
static int read_json_set(const char *path, const char *text_key, const char *label_key, int strip,
                         ex_vocab *dedupe, texts *set, size_t *skipped)
{
    char *data;
    size_t size;
    if (ex_read_file(path, &data, &size))
        return 1;
    ex_json json;
    ex_json_init(&json, data, size);
    int bad = ex_json_next(&json) != EX_JSON_BEGIN_ARRAY;
    char *text = NULL;
    size_t text_length = 0;
    while (!bad) {
        ex_json_kind kind = ex_json_next(&json);
        if (kind == EX_JSON_END_ARRAY)
            break;
        if (kind != EX_JSON_BEGIN_OBJECT) {
            bad = 1;
            break;
        }
        int label = -2; /* -2: missing, -1: null */
        free(text);
        text = NULL;
        while (!bad && (kind = ex_json_next(&json)) == EX_JSON_KEY) {
            int is_text = strcmp(json.text, text_key) == 0;
            int is_label = strcmp(json.text, label_key) == 0;
            kind = ex_json_next(&json);
            if (is_text && kind == EX_JSON_STRING) {
                free(text);
                text = malloc(json.length + 1);
                bad = !text;
                if (text)
                    memcpy(text, json.text, json.length + 1);
                text_length = json.length;
            } else if (is_label && kind == EX_JSON_NULL) {
                label = -1;
            } else if (is_label && kind == EX_JSON_NUMBER &&
                       (json.number == 0 || json.number == 1)) {
                label = (int)json.number;
            } else if (is_text || is_label) {
                bad = 1;
            } else {
                bad = ex_json_skip(&json, kind);
            }
        }
        if (bad || kind != EX_JSON_END_OBJECT || label == -2 || (label >= 0 && !text)) {
            bad = 1;
            break;
        }
        if (label < 0) {
            (*skipped)++;
            continue;
        }
        if (strip) {
            strip_breaks(text);
            text_length = strlen(text);
        }
        if (dedupe) {
            size_t before = dedupe->size;
            int64_t id = ex_vocab_add(dedupe, text, text_length);
            if (id < 0) {
                fprintf(stderr, "out of memory\n");
                bad = 2;
                break;
            }
            if ((size_t)id < before) {
                (*skipped)++;
                continue;
            }
        }
        if (add_text(set, text, text_length, label)) {
            fprintf(stderr, "out of memory\n");
            bad = 2;
        }
    }
    if (bad == 1)
        fprintf(stderr, "%s: not an array of {\"%s\": text, \"%s\": 0|1|null} objects\n", path,
                text_key, label_key);
    free(text);
    ex_json_free(&json);
    free(data);
    return bad != 0;
}

/* The data set's labelled texts; 0, 1 with a message, or EX_SKIP. */
static int read_data(const settings *s, texts *set)
{
    char dir[4096], path[4200];
    int imdb = strcmp(s->data, "imdb") == 0;
    int status = ex_data_dir(imdb ? "imdb" : "sentiment", dir, sizeof dir);
    if (status)
        return status;
    size_t skipped = 0;
    if (imdb) {
        ex_vocab seen;
        ex_vocab_init(&seen);
        snprintf(path, sizeof path, "%s/reviews.json", dir);
        status = read_json_set(path, "t", "s", 1, &seen, set, &skipped);
        ex_vocab_free(&seen);
        if (!status)
            printf("IMDB reviews (Maas et al. 2011): %zu distinct reviews, %zu duplicates "
                   "dropped\n",
                   set->count, skipped);
        return status;
    }
    static const char *const sites[] = {"amazon", "imdb", "yelp"};
    for (size_t k = 0; k < 3 && !status; k++) {
        snprintf(path, sizeof path, "%s/test/fixtures/%s.json", dir, sites[k]);
        status = read_json_set(path, "text", "class", 0, NULL, set, &skipped);
    }
    if (!status)
        printf("UCI sentiment labelled sentences (Kotzias et al. 2015): %zu sentences "
               "(Amazon, IMDB, Yelp), %zu entries without a label skipped\n",
               set->count, skipped);
    return status;
}

/* A seeded split stratified by label: train, validation and test take
 * 80%, 10% and 10% of each class. parts[k] is 0, 1 or 2. */
static int split_data(const texts *set, uint64_t seed, unsigned char *parts)
{
    size_t *order = malloc((set->count ? set->count : 1) * sizeof *order);
    if (!order)
        return 1;
    uint64_t rng = seed ^ 0x5eedULL;
    for (int label = 0; label < 2; label++) {
        size_t n = 0;
        for (size_t k = 0; k < set->count; k++)
            if (set->label[k] == label)
                order[n++] = k;
        ex_shuffle(order, n, &rng);
        size_t test = n / 10, valid = n / 10;
        for (size_t k = 0; k < n; k++)
            parts[order[k]] = k < test ? TEST : k < test + valid ? VALID : TRAIN;
    }
    free(order);
    return 0;
}

/* Keep limit training texts, chosen at random (the IMDB file is sorted by
 * label: the first ones would all be negative); the others are unused. */
static int limit_training(unsigned char *parts, size_t count, uint64_t limit, uint64_t seed)
{
    size_t *train = malloc((count ? count : 1) * sizeof *train), n = 0;
    if (!train) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < count; k++)
        if (parts[k] == TRAIN)
            train[n++] = k;
    uint64_t rng = seed ^ 0x11a17;
    ex_shuffle(train, n, &rng);
    for (size_t k = limit; k < n; k++)
        parts[train[k]] = UNUSED;
    free(train);
    return 0;
}

/* ---- tokens ---- */

static int count_words(const char *text, ex_vocab *counts)
{
    const char *at = text, *end = text + strlen(text);
    char word[MAX_WORD];
    size_t length;
    while ((length = ex_next_word(&at, end, word, sizeof word)) > 0)
        if (ex_vocab_add(counts, word, length) < 0)
            return 1;
    return 0;
}

static void reverse(int64_t *items, size_t from, size_t to)
{
    while (from + 1 < to) {
        int64_t swap = items[from];
        items[from++] = items[--to];
        items[to] = swap;
    }
}

/* The text's token ids into out (the last max_length of them, or one
 * "<unk>" for a text without words); returns their count. Needs
 * max_length slots in out. */
static size_t encode_text(const char *text, const ex_vocab *vocab, size_t max_length, int64_t *out)
{
    const char *at = text, *end = text + strlen(text);
    char word[MAX_WORD];
    size_t length, count = 0;
    while ((length = ex_next_word(&at, end, word, sizeof word)) > 0) {
        int64_t id = ex_vocab_find(vocab, word, length);
        /* A ring of the last max_length tokens, straightened below. */
        out[count % max_length] = id < 0 ? UNK : id;
        count++;
    }
    if (count == 0) {
        out[0] = UNK;
        return 1;
    }
    if (count > max_length) {
        /* The oldest token is at count % max_length: rotate it to the
         * front by three reversals. */
        size_t shift = count % max_length;
        reverse(out, 0, shift);
        reverse(out, shift, max_length);
        reverse(out, 0, max_length);
        count = max_length;
    }
    return count;
}

static void free_encoded(encoded *e)
{
    free(e->tokens);
    free(e->start);
    free(e->length);
    free(e->label);
    free(e->source);
    memset(e, 0, sizeof *e);
}

/* Encode the documents of the parts in part_mask (bit k: part k). */
static int encode_part(const texts *set, const unsigned char *parts, unsigned part_mask,
                       const ex_vocab *vocab, size_t max_length, encoded *e)
{
    memset(e, 0, sizeof *e);
    size_t n = 0;
    for (size_t k = 0; k < set->count; k++)
        n += (part_mask >> parts[k]) & 1;
    size_t capacity = 1 << 16;
    e->tokens = malloc(capacity * sizeof *e->tokens);
    e->start = malloc((n ? n : 1) * sizeof *e->start);
    e->length = malloc((n ? n : 1) * sizeof *e->length);
    e->label = malloc((n ? n : 1) * sizeof *e->label);
    e->source = malloc((n ? n : 1) * sizeof *e->source);
    int64_t *one = malloc(max_length * sizeof *one);
    int bad = !e->tokens || !e->start || !e->length || !e->label || !e->source || !one;
    for (size_t k = 0; k < set->count && e->count < n && !bad; k++) {
        if (!((part_mask >> parts[k]) & 1))
            continue;
        size_t length = encode_text(set->text[k], vocab, max_length, one);
        if (e->token_count + length > capacity) {
            while (e->token_count + length > capacity)
                capacity *= 2;
            int64_t *bigger = realloc(e->tokens, capacity * sizeof *bigger);
            if (!bigger) {
                bad = 1;
                break;
            }
            e->tokens = bigger;
        }
        memcpy(e->tokens + e->token_count, one, length * sizeof *one);
        e->start[e->count] = e->token_count;
        e->length[e->count] = length;
        e->label[e->count] = (float)set->label[k];
        e->source[e->count] = k;
        e->token_count += length;
        if (length > e->max_length)
            e->max_length = length;
        e->count++;
    }
    free(one);
    if (bad) {
        fprintf(stderr, "out of memory\n");
        free_encoded(e);
    }
    return bad;
}

/* ---- baselines ---- */

/* Multinomial naive Bayes with add-one smoothing: log P(class) and
 * log P(word | class) for the vocabulary's words but the specials. */
typedef struct naive_bayes {
    double log_prior[2];
    double *log_likelihood[2]; /* [V] each */
    size_t vocab_size;
} naive_bayes;

static int train_naive_bayes(const encoded *train, size_t vocab_size, naive_bayes *nb)
{
    memset(nb, 0, sizeof *nb);
    nb->vocab_size = vocab_size;
    double docs[2] = {0, 0}, total[2] = {0, 0};
    for (int c = 0; c < 2; c++) {
        nb->log_likelihood[c] = calloc(vocab_size, sizeof(double));
        if (!nb->log_likelihood[c])
            return 1;
    }
    for (size_t d = 0; d < train->count; d++) {
        int c = train->label[d] > 0.5f;
        docs[c]++;
        for (size_t t = 0; t < train->length[d]; t++) {
            int64_t id = train->tokens[train->start[d] + t];
            if (id > UNK) {
                nb->log_likelihood[c][id]++;
                total[c]++;
            }
        }
    }
    /* P(w | c) = (count(w, c) + 1) / (count(c) + |words|) */
    double words = (double)(vocab_size - 2);
    for (int c = 0; c < 2; c++) {
        nb->log_prior[c] = log(docs[c] / (docs[0] + docs[1]));
        for (size_t w = 2; w < vocab_size; w++)
            nb->log_likelihood[c][w] = log((nb->log_likelihood[c][w] + 1) / (total[c] + words));
    }
    return 0;
}

/* P(positive) of document d. */
static double naive_bayes_probability(const naive_bayes *nb, const encoded *e, size_t d)
{
    double score[2] = {nb->log_prior[0], nb->log_prior[1]};
    for (size_t t = 0; t < e->length[d]; t++) {
        int64_t id = e->tokens[e->start[d] + t];
        if (id > UNK)
            for (int c = 0; c < 2; c++)
                score[c] += nb->log_likelihood[c][id];
    }
    return 1.0 / (1.0 + exp(score[0] - score[1]));
}

static double naive_bayes_accuracy(const naive_bayes *nb, const encoded *e)
{
    size_t right = 0;
    for (size_t d = 0; d < e->count; d++)
        right += (naive_bayes_probability(nb, e, d) > 0.5) == (e->label[d] > 0.5f);
    return e->count ? (double)right / (double)e->count : 0.0;
}

static void free_naive_bayes(naive_bayes *nb)
{
    free(nb->log_likelihood[0]);
    free(nb->log_likelihood[1]);
}

/* ---- the network ---- */

/* Buffers of one batch, sized once for the largest. */
typedef struct batch_buffers {
    int64_t *tokens; /* [T][B] */
    size_t *lengths; /* [B] */
    float *targets;  /* [B] */
    float *logits;   /* [B] */
    size_t steps, batch;
} batch_buffers;

/* Fill a time-major batch from documents ids[0 .. count); with a
 * word-dropout probability, each token becomes "<unk>" that often. */
static void fill_batch(const encoded *e, const size_t *ids, size_t count, double word_dropout,
                       uint64_t *rng, batch_buffers *b, lstm_sequences *seq)
{
    size_t steps = 1;
    for (size_t k = 0; k < count; k++)
        if (e->length[ids[k]] > steps)
            steps = e->length[ids[k]];
    for (size_t t = 0; t < steps; t++)
        for (size_t k = 0; k < count; k++) {
            size_t d = ids[k];
            int64_t token = t < e->length[d] ? e->tokens[e->start[d] + t] : PAD;
            if (word_dropout > 0 && token != PAD && ex_random_unit(rng) < word_dropout)
                token = UNK;
            b->tokens[t * count + k] = token;
        }
    for (size_t k = 0; k < count; k++) {
        b->lengths[k] = e->length[ids[k]];
        b->targets[k] = e->label[ids[k]];
    }
    seq->steps = steps;
    seq->batch = count;
    seq->lengths = b->lengths;
}

/* Logits of every document of e into logits[e->count], in batches of
 * documents in their order. */
static int infer_all(const lstm_network *net, lstm_workspace *ws, const encoded *e,
                     batch_buffers *b, size_t *ids, float *logits)
{
    lstm_sequences seq = LSTM_SEQUENCES_INIT;
    lstm_network_inputs in = LSTM_NETWORK_INPUTS_INIT;
    lstm_network_outputs out = LSTM_NETWORK_OUTPUTS_INIT;
    in.tokens = b->tokens;
    for (size_t first = 0; first < e->count; first += EVAL_BATCH) {
        size_t count = e->count - first < EVAL_BATCH ? e->count - first : EVAL_BATCH;
        for (size_t k = 0; k < count; k++)
            ids[k] = first + k;
        fill_batch(e, ids, count, 0.0, NULL, b, &seq);
        out.output = logits + first;
        if (ex_failed(lstm_network_infer(net, ws, &seq, &in, &out), "lstm_network_infer"))
            return 1;
    }
    return 0;
}

static double accuracy_of_logits(const encoded *e, const float *logits)
{
    size_t right = 0;
    for (size_t d = 0; d < e->count; d++)
        right += (logits[d] > 0.0f) == (e->label[d] > 0.5f);
    return e->count ? (double)right / (double)e->count : 0.0;
}

static const encoded *sort_set;

static int by_length(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    size_t lx = sort_set->length[x], ly = sort_set->length[y];
    return lx < ly ? -1 : lx > ly ? 1 : (x > y) - (x < y);
}

/* One epoch's batches: the training set shuffled, cut into runs of
 * SORT_RUN batches, each run sorted by length and cut into batches, then
 * the batches shuffled. batches[k] is the offset of batch k in order. */
static size_t plan_epoch(const encoded *train, size_t batch, uint64_t *rng, size_t *order,
                         size_t *batches)
{
    for (size_t k = 0; k < train->count; k++)
        order[k] = k;
    ex_shuffle(order, train->count, rng);
    sort_set = train;
    for (size_t first = 0; first < train->count; first += batch * SORT_RUN) {
        size_t count =
            train->count - first < batch * SORT_RUN ? train->count - first : batch * SORT_RUN;
        qsort(order + first, count, sizeof *order, by_length);
    }
    size_t n = 0;
    for (size_t first = 0; first < train->count; first += batch)
        batches[n++] = first;
    ex_shuffle(batches, n, rng);
    return n;
}

static lstm_status create_network(const settings *s, size_t vocab_size, lstm_network **out)
{
    lstm_embedding_config emb = LSTM_EMBEDDING_CONFIG_INIT;
    emb.num_embeddings = vocab_size;
    emb.embedding_dim = s->embedding_dim;
    emb.flags = LSTM_EMBEDDING_PADDING;
    emb.padding_idx = PAD;
    lstm_config lstm = LSTM_CONFIG_INIT;
    lstm.input_size = s->embedding_dim;
    lstm.hidden_size = s->hidden;
    lstm.num_layers = s->layers;
    lstm.flags = s->unidirectional ? 0 : LSTM_BIDIRECTIONAL;
    lstm.dropout = s->layers > 1 ? s->dropout : 0.0;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    config.embedding = &emb;
    config.lstm = &lstm;
    config.head = LSTM_HEAD_LAST_STEP;
    config.loss = LSTM_LOSS_BCE_WITH_LOGITS;
    config.head_size = 1;
    lstm_status status = lstm_network_create(&config, out);
    if (status == LSTM_OK) {
        status = lstm_network_init(*out, s->seed, LSTM_INIT_FORGET_BIAS_ONE);
        if (status != LSTM_OK) {
            lstm_network_destroy(*out);
            *out = NULL;
        }
    }
    return status;
}

/* The network's file bytes (for the best epoch so far); 0 or 1. */
static int snapshot(const lstm_network *net, void **buffer, size_t *capacity, size_t *size)
{
    if (ex_failed(lstm_network_save_buffer(net, NULL, NULL, 0, size), "lstm_network_save_buffer"))
        return 1;
    if (*size > *capacity) {
        void *bigger = realloc(*buffer, *size);
        if (!bigger) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        *buffer = bigger;
        *capacity = *size;
    }
    return ex_failed(lstm_network_save_buffer(net, NULL, *buffer, *capacity, size),
                     "lstm_network_save_buffer");
}

/* ---- answering from a model file ---- */

static int answer(const settings *s)
{
    lstm_network *net = NULL;
    lstm_workspace *ws = NULL;
    ex_vocab vocab;
    ex_vocab_init(&vocab);
    char *line = NULL;
    size_t line_capacity = 0;
    int64_t *tokens = NULL;
    int result = 1;
    if (ex_failed(lstm_network_load(s->model_path, &net), s->model_path))
        goto out;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    const char *tokenizer = ex_meta_text(net, "tokenizer");
    const char *max_text = ex_meta_text(net, "max_length");
    if (ex_failed(lstm_network_get_config(net, &config), "lstm_network_get_config") ||
        !config.embedding || config.head != LSTM_HEAD_LAST_STEP ||
        config.loss != LSTM_LOSS_BCE_WITH_LOGITS || config.head_size != 1 || !tokenizer ||
        strcmp(tokenizer, "ex_next_word") != 0 || !max_text) {
        fprintf(stderr, "%s: not a sentiment model file (this program's --model output)\n",
                s->model_path);
        goto out;
    }
    uint64_t max_length;
    if (ex_parse_count("max_length", max_text, 1, 1u << 20, &max_length) ||
        ex_vocab_load_meta(&vocab, net, "vocabulary", config.embedding->num_embeddings))
        goto out;
    tokens = malloc(max_length * sizeof *tokens);
    if (!tokens ||
        ex_failed(lstm_workspace_create(lstm_network_model(net), &ws), "lstm_workspace_create") ||
        ex_set_precision(ws, NULL, s->precision))
        goto out;
    lstm_sequences seq = LSTM_SEQUENCES_INIT;
    lstm_network_inputs in = LSTM_NETWORK_INPUTS_INIT;
    lstm_network_outputs out = LSTM_NETWORK_OUTPUTS_INIT;
    float logit;
    size_t length;
    seq.batch = 1;
    seq.lengths = &length;
    in.tokens = tokens;
    out.output = &logit;
    ssize_t got;
    while ((got = getline(&line, &line_capacity, stdin)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        length = encode_text(line, &vocab, max_length, tokens);
        seq.steps = length;
        if (ex_failed(lstm_network_infer(net, ws, &seq, &in, &out), "lstm_network_infer"))
            goto out;
        printf("%.4f\t%s\n", 1.0 / (1.0 + exp(-(double)logit)), line);
    }
    result = ferror(stdin) ? 1 : 0;
    if (result)
        fprintf(stderr, "error reading standard input\n");
out:
    free(line);
    free(tokens);
    ex_vocab_free(&vocab);
    lstm_workspace_destroy(ws);
    lstm_network_destroy(net);
    return result;
}

/* ---- arguments ---- */

static void usage(FILE *to)
{
    fprintf(to, "usage: sentiment [--data uci|imdb] [--smoke] [--model FILE] [--csv FILE]\n"
                "                 [--predictions FILE] [--seed N] [--epochs N] [--patience N]\n"
                "                 [--batch B] [--embedding-dim E] [--hidden H] [--layers L]\n"
                "                 [--dropout P] [--word-dropout P] [--lr RATE]\n"
                "                 [--weight-decay W] [--min-count N] [--vocab N]\n"
                "                 [--max-length N] [--train-limit N] [--unidirectional]\n"
                "                 [--extra-imdb N] [--pretrain-epochs N]\n"
                "                 [--train-precision fp32|bf16]\n"
                "       sentiment --answer --model FILE [--precision fp32|bf16|int8]\n"
                "                 < sentences.txt\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    /* Defaults: the UCI run; --data imdb and --smoke change some below
     * unless given. */
    int given_epochs = 0, given_min = 0;
    *s = (settings){.data = "uci",
                    .seed = 1,
                    .epochs = 30,
                    .patience = 8,
                    .batch = 32,
                    .embedding_dim = 32,
                    .hidden = 32,
                    .layers = 1,
                    .min_count = 1,
                    .vocab_size = 20000,
                    .max_length = 200,
                    .pretrain_epochs = 3,
                    .dropout = 0.3,
                    .word_dropout = 0.3,
                    .lr = 0.002};
    for (int k = 1; k < argc; k++) {
        const char *name = argv[k], *value = k + 1 < argc ? argv[k + 1] : NULL;
        int bad = 0, flag = 1;
        if (strcmp(name, "--smoke") == 0)
            s->smoke = 1;
        else if (strcmp(name, "--answer") == 0)
            s->answer = 1;
        else if (strcmp(name, "--unidirectional") == 0)
            s->unidirectional = 1;
        else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else
            flag = 0;
        if (flag)
            continue;
        static const char *const with_value[] = {
            "--data",
            "--model",
            "--csv",
            "--predictions",
            "--seed",
            "--epochs",
            "--patience",
            "--batch",
            "--embedding-dim",
            "--hidden",
            "--layers",
            "--min-count",
            "--vocab",
            "--max-length",
            "--train-limit",
            "--pretrain-epochs",
            "--extra-imdb",
            "--dropout",
            "--word-dropout",
            "--lr",
            "--weight-decay",
            "--precision",
            "--train-precision",
        };
        size_t known = 0;
        while (known < sizeof with_value / sizeof *with_value && strcmp(name, with_value[known]))
            known++;
        if (known == sizeof with_value / sizeof *with_value || !value) {
            fprintf(stderr, "%s: %s\n", name,
                    known == sizeof with_value / sizeof *with_value ? "unknown option"
                                                                    : "needs a value");
            usage(stderr);
            return 1;
        }
        k++;
        if (strcmp(name, "--data") == 0) {
            s->data = value;
            bad = strcmp(value, "uci") && strcmp(value, "imdb");
            if (bad)
                fprintf(stderr, "--data: uci or imdb, got '%s'\n", value);
        } else if (strcmp(name, "--model") == 0)
            s->model_path = value;
        else if (strcmp(name, "--csv") == 0)
            s->csv_path = value;
        else if (strcmp(name, "--predictions") == 0)
            s->predictions_path = value;
        else if (strcmp(name, "--seed") == 0)
            bad = ex_parse_count(name, value, 0, UINT64_MAX, &s->seed);
        else if (strcmp(name, "--epochs") == 0)
            bad = ex_parse_count(name, value, 1, 100000, &s->epochs), given_epochs = 1;
        else if (strcmp(name, "--patience") == 0)
            bad = ex_parse_count(name, value, 1, 100000, &s->patience);
        else if (strcmp(name, "--batch") == 0)
            bad = ex_parse_count(name, value, 1, 4096, &s->batch);
        else if (strcmp(name, "--embedding-dim") == 0)
            bad = ex_parse_count(name, value, 1, 4096, &s->embedding_dim);
        else if (strcmp(name, "--hidden") == 0)
            bad = ex_parse_count(name, value, 1, 4096, &s->hidden);
        else if (strcmp(name, "--layers") == 0)
            bad = ex_parse_count(name, value, 1, 8, &s->layers);
        else if (strcmp(name, "--min-count") == 0)
            bad = ex_parse_count(name, value, 1, 1000000, &s->min_count), given_min = 1;
        else if (strcmp(name, "--vocab") == 0)
            bad = ex_parse_count(name, value, 3, 10000000, &s->vocab_size);
        else if (strcmp(name, "--max-length") == 0)
            bad = ex_parse_count(name, value, 1, 100000, &s->max_length);
        else if (strcmp(name, "--train-limit") == 0)
            bad = ex_parse_count(name, value, 1, UINT64_MAX, &s->train_limit);
        else if (strcmp(name, "--pretrain-epochs") == 0)
            bad = ex_parse_count(name, value, 1, 100000, &s->pretrain_epochs);
        else if (strcmp(name, "--extra-imdb") == 0)
            bad = ex_parse_count(name, value, 0, 1000000, &s->extra);
        else if (strcmp(name, "--dropout") == 0)
            bad = ex_parse_double(name, value, 0.0, 0.95, &s->dropout);
        else if (strcmp(name, "--word-dropout") == 0)
            bad = ex_parse_double(name, value, 0.0, 0.95, &s->word_dropout);
        else if (strcmp(name, "--lr") == 0)
            bad = ex_parse_double(name, value, 1e-7, 10.0, &s->lr);
        else if (strcmp(name, "--weight-decay") == 0)
            bad = ex_parse_double(name, value, 0.0, 1.0, &s->weight_decay);
        else if (strcmp(name, "--precision") == 0)
            bad = ex_parse_precision(value, &s->precision);
        else if (strcmp(name, "--train-precision") == 0)
            bad = ex_parse_training_precision(value, &s->train_precision);
        else {
            fprintf(stderr, "%s: unknown option\n", name);
            usage(stderr);
            return 1;
        }
        if (bad)
            return 1;
    }
    if (s->answer) {
        if (!s->model_path) {
            fprintf(stderr, "--answer needs --model FILE\n");
            return 1;
        }
        return 0;
    }
    if (s->smoke && strcmp(s->data, "uci") != 0) {
        fprintf(stderr, "--smoke runs on the UCI sentences only\n");
        return 1;
    }
    if (strcmp(s->data, "imdb") == 0) {
        if (!given_min)
            s->min_count = 5;
        if (!given_epochs)
            s->epochs = 3;
    }
    if (s->smoke) {
        if (!given_epochs)
            s->epochs = 8;
    }
    if (!s->model_path)
        s->model_path = s->smoke ? "sentiment-smoke.lstm" : "sentiment.lstm";
    return 0;
}

/* ---- training ---- */

/* Mean binary cross-entropy of logits against labels, as
 * LSTM_LOSS_BCE_WITH_LOGITS: log(1 + exp(-z)) for a positive, log(1 + exp(z))
 * for a negative, computed stably. */
static double mean_bce(const encoded *e, const float *logits)
{
    double sum = 0;
    for (size_t d = 0; d < e->count; d++) {
        double z = e->label[d] > 0.5f ? logits[d] : -logits[d];
        sum += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
    }
    return e->count ? sum / (double)e->count : 0.0;
}

typedef struct run {
    texts set;
    unsigned char *parts;
    ex_vocab vocab;
    encoded train, valid, test;
    encoded pretrain; /* with --extra-imdb: the training part and the extra sentences */
    naive_bayes nb, nb_extra;
    double nb_test, nb_extra_test, majority_test;
    uint64_t epoch, best_epoch; /* epochs run, in both phases; the kept one */
    double best_accuracy, best_loss;
    lstm_network *net, *best, *loaded;
    lstm_optim *opt;
    lstm_workspace *ws;
    batch_buffers b;
    size_t *order, *batches, *ids;
    float *valid_logits, *test_logits, *loaded_logits;
    void *snapshot;
    size_t snapshot_capacity, snapshot_size;
    FILE *csv;
} run;

/* ---- extra training data: IMDB reviews' sentences ---- */

/* The next sentence of text [*at, end): its tokens up to and including a
 * '.', '!' or '?' (or the end of the text), at [*from, *to), and its key:
 * its words (letters and digits; no punctuation) joined by spaces, cut to
 * capacity. 0 at the end of the text. */
static int next_sentence(const char **at, const char *end, const char **from, const char **to,
                         char *key, size_t capacity, size_t *words)
{
    char word[MAX_WORD];
    size_t length, used = 0;
    int any = 0;
    *words = 0;
    *from = *at;
    while ((length = ex_next_word(at, end, word, sizeof word)) > 0) {
        any = 1;
        if (isalnum((unsigned char)word[0]) || (unsigned char)word[0] >= 0x80) {
            if (used + length + 2 <= capacity) {
                if (used)
                    key[used++] = ' ';
                memcpy(key + used, word, length);
                used += length;
            }
            (*words)++;
        } else if (word[0] == '.' || word[0] == '!' || word[0] == '?') {
            break;
        }
    }
    key[used] = '\0';
    *to = *at;
    return any;
}

/* Add the sentences of --extra-imdb randomly chosen IMDB reviews (Maas et
 * al.), each labelled with its review's label, to the training part. A
 * review that holds a held-out UCI sentence (one of 5 words or more, by
 * its words) is left out: the UCI IMDB sentences come from such reviews. */
static int add_imdb_sentences(const settings *s, run *r)
{
    char dir[4096], path[4200], key[4096];
    int status = ex_data_dir("imdb", dir, sizeof dir);
    if (status)
        return status;
    snprintf(path, sizeof path, "%s/reviews.json", dir);
    texts reviews = {0};
    ex_vocab seen, heldout;
    ex_vocab_init(&seen);
    ex_vocab_init(&heldout);
    size_t skipped = 0, dropped = 0, used = 0, added = 0, words;
    size_t *order = NULL;
    const char *at, *end, *from, *to;
    status = read_json_set(path, "t", "s", 1, &seen, &reviews, &skipped);
    int read_failed = status;
    ex_vocab_free(&seen);
    for (size_t k = 0; k < r->set.count && !status; k++) {
        if (r->parts[k] != VALID && r->parts[k] != TEST)
            continue;
        at = r->set.text[k];
        end = at + strlen(at);
        while (!status && next_sentence(&at, end, &from, &to, key, sizeof key, &words))
            if (words >= 5)
                status = ex_vocab_add(&heldout, key, strlen(key)) < 0;
    }
    if (!status && !(order = malloc((reviews.count + 1) * sizeof *order)))
        status = 1;
    uint64_t rng = s->seed ^ 0xe87a;
    for (size_t k = 0; k < reviews.count && !status; k++)
        order[k] = k;
    if (!status)
        ex_shuffle(order, reviews.count, &rng);
    for (size_t k = 0; k < reviews.count && used < s->extra && !status; k++) {
        const char *review = reviews.text[order[k]];
        int holds = 0;
        at = review;
        end = review + strlen(review);
        while (!holds && next_sentence(&at, end, &from, &to, key, sizeof key, &words))
            holds = words >= 5 && ex_vocab_find(&heldout, key, strlen(key)) >= 0;
        if (holds) {
            dropped++;
            continue;
        }
        used++;
        at = review;
        while (!status && next_sentence(&at, end, &from, &to, key, sizeof key, &words))
            if (words >= 3) {
                status = add_text(&r->set, from, (size_t)(to - from), reviews.label[order[k]]);
                added++;
            }
    }
    if (!read_failed) {
        unsigned char *parts = status ? NULL : realloc(r->parts, r->set.count);
        if (parts) {
            r->parts = parts;
            memset(parts + r->set.count - added, EXTRA, added);
        } else {
            fprintf(stderr, "out of memory\n");
            status = 1;
        }
    }
    if (!status)
        printf("extra training data: %zu sentences of %zu IMDB reviews (Maas et al. 2011), "
               "%zu reviews left out for holding a held-out UCI sentence\n",
               added, used, dropped);
    free(order);
    ex_vocab_free(&heldout);
    free_texts(&reviews);
    return status;
}

static int prepare(const settings *s, run *r)
{
    int status = read_data(s, &r->set);
    if (status)
        return status;
    if (r->set.count < 20) {
        fprintf(stderr, "too few labelled texts (%zu)\n", r->set.count);
        return 1;
    }
    r->parts = malloc(r->set.count);
    if (!r->parts || split_data(&r->set, s->seed, r->parts)) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (s->train_limit && limit_training(r->parts, r->set.count, s->train_limit, s->seed))
        return 1;
    if (s->extra && (status = add_imdb_sentences(s, r)) != 0)
        return status;
    ex_vocab counts;
    ex_vocab_init(&counts);
    int bad = 0;
    for (size_t k = 0; k < r->set.count && !bad; k++)
        if (r->parts[k] == TRAIN || r->parts[k] == EXTRA)
            bad = count_words(r->set.text[k], &counts);
    bad = bad || ex_vocab_keep(&counts, s->min_count, s->vocab_size, SPECIALS, 2, &r->vocab);
    ex_vocab_free(&counts);
    if (bad) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    size_t max_length = s->max_length;
    if (encode_part(&r->set, r->parts, 1u << TRAIN, &r->vocab, max_length, &r->train) ||
        encode_part(&r->set, r->parts, 1u << VALID, &r->vocab, max_length, &r->valid) ||
        encode_part(&r->set, r->parts, 1u << TEST, &r->vocab, max_length, &r->test) ||
        (s->extra && encode_part(&r->set, r->parts, (1u << TRAIN) | (1u << EXTRA), &r->vocab,
                                 max_length, &r->pretrain)))
        return 1;
    size_t unknown = 0;
    for (size_t k = 0; k < r->test.token_count; k++)
        unknown += r->test.tokens[k] == UNK;
    printf("split (seeded, stratified): %zu train, %zu validation, %zu test; vocabulary %zu "
           "words (min count %llu); test tokens %zu, %.1f%% unknown\n",
           r->train.count, r->valid.count, r->test.count, r->vocab.size,
           (unsigned long long)s->min_count, r->test.token_count,
           100.0 * (double)unknown / (double)(r->test.token_count ? r->test.token_count : 1));
    return 0;
}

static int allocate(const settings *s, run *r)
{
    size_t rows = s->batch > EVAL_BATCH ? s->batch : EVAL_BATCH;
    size_t steps = s->max_length;
    r->b.tokens = malloc(steps * rows * sizeof *r->b.tokens);
    r->b.lengths = malloc(rows * sizeof *r->b.lengths);
    r->b.targets = malloc(rows * sizeof *r->b.targets);
    size_t most = r->pretrain.count > r->train.count ? r->pretrain.count : r->train.count;
    r->order = malloc(most * sizeof *r->order);
    r->batches = malloc(most * sizeof *r->batches);
    r->ids = malloc(rows * sizeof *r->ids);
    r->valid_logits = malloc((r->valid.count + 1) * sizeof *r->valid_logits);
    r->test_logits = malloc((r->test.count + 1) * sizeof *r->test_logits);
    r->loaded_logits = malloc((r->test.count + 1) * sizeof *r->loaded_logits);
    if (!r->b.tokens || !r->b.lengths || !r->b.targets || !r->order || !r->batches || !r->ids ||
        !r->valid_logits || !r->test_logits || !r->loaded_logits) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    lstm_optim_options options;
    if (ex_failed(create_network(s, r->vocab.size, &r->net), "lstm_network_create") ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = s->lr;
    options.weight_decay = s->weight_decay;
    return ex_failed(lstm_optim_create(&options, &r->opt), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(r->opt, r->net), "lstm_optim_add_network") ||
           ex_failed(lstm_workspace_create(lstm_network_model(r->net), &r->ws),
                     "lstm_workspace_create") ||
           ex_failed(lstm_workspace_reserve(r->ws, LSTM_MODE_INFER, steps, EVAL_BATCH),
                     "lstm_workspace_reserve") ||
           ex_failed(lstm_workspace_reserve(r->ws, LSTM_MODE_TRAIN, steps, s->batch),
                     "lstm_workspace_reserve") ||
           ex_failed(lstm_workspace_set_seed(r->ws, s->seed), "lstm_workspace_set_seed") ||
           ex_set_training_precision(r->ws, s->train_precision);
}

/* Train on set for up to epochs epochs, keeping the bytes of the network
 * of the best validation accuracy so far (over every phase) in
 * r->snapshot; stop after --patience epochs without a better one. */
static int train(const settings *s, run *r, const encoded *set, uint64_t epochs, const char *phase)
{
    lstm_sequences seq = LSTM_SEQUENCES_INIT;
    lstm_network_inputs in = LSTM_NETWORK_INPUTS_INIT;
    lstm_targets targets = LSTM_TARGETS_INIT;
    in.tokens = r->b.tokens;
    targets.values = r->b.targets;
    uint64_t rng = (s->seed + r->epoch) * 0x9e3779b97f4a7c15ULL + 7;
    size_t per_epoch = (set->count + s->batch - 1) / s->batch;
    const char *unit = strcmp(s->data, "imdb") == 0 ? "reviews" : "sentences";
    printf("%s: %zu %s, up to %llu epochs\n", phase, set->count, unit, (unsigned long long)epochs);
    ex_progress progress;
    ex_progress_begin(&progress, epochs * per_epoch, unit);
    uint64_t step = 0, examples = 0, phase_best = r->epoch;
    for (uint64_t epoch = 1; epoch <= epochs; epoch++) {
        size_t n = plan_epoch(set, s->batch, &rng, r->order, r->batches);
        double loss_sum = 0;
        for (size_t k = 0; k < n; k++) {
            size_t first = r->batches[k];
            size_t count = set->count - first < s->batch ? set->count - first : s->batch;
            fill_batch(set, r->order + first, count, s->word_dropout, &rng, &r->b, &seq);
            double loss;
            if (ex_failed(lstm_network_train_forward(r->net, r->ws, &seq, &in, NULL),
                          "lstm_network_train_forward") ||
                ex_failed(lstm_network_train_backward(r->net, r->ws, &targets, &loss),
                          "lstm_network_train_backward") ||
                ex_failed(lstm_optim_clip_grad_norm(r->opt, 5.0, NULL), "clip_grad_norm") ||
                ex_failed(lstm_optim_step(r->opt), "lstm_optim_step") ||
                ex_failed(lstm_optim_zero_grads(r->opt), "lstm_optim_zero_grads"))
                return 1;
            loss_sum += loss;
            examples += count;
            ex_progress_update(&progress, ++step, loss, examples);
        }
        r->epoch++;
        if (infer_all(r->net, r->ws, &r->valid, &r->b, r->ids, r->valid_logits) ||
            infer_all(r->net, r->ws, &r->test, &r->b, r->ids, r->test_logits))
            return 1;
        double valid_accuracy = accuracy_of_logits(&r->valid, r->valid_logits);
        double valid_loss = mean_bce(&r->valid, r->valid_logits);
        double test_accuracy = accuracy_of_logits(&r->test, r->test_logits);
        int better = valid_accuracy > r->best_accuracy ||
                     (valid_accuracy == r->best_accuracy && valid_loss < r->best_loss);
        printf("epoch %llu: train loss %.4f  validation loss %.4f accuracy %.4f  test accuracy "
               "%.4f%s\n",
               (unsigned long long)r->epoch, loss_sum / (double)n, valid_loss, valid_accuracy,
               test_accuracy, better ? "  (best so far: kept)" : "");
        if (r->csv)
            fprintf(r->csv, "%llu,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", (unsigned long long)r->epoch,
                    loss_sum / (double)n, valid_accuracy, test_accuracy, r->nb_test,
                    r->nb_extra_test, r->majority_test);
        if (better) {
            r->best_accuracy = valid_accuracy;
            r->best_loss = valid_loss;
            r->best_epoch = phase_best = r->epoch;
            if (snapshot(r->net, &r->snapshot, &r->snapshot_capacity, &r->snapshot_size))
                return 1;
        }
        if (r->epoch - phase_best >= s->patience) {
            printf("early stop: no better validation accuracy in %llu epochs\n",
                   (unsigned long long)s->patience);
            break;
        }
    }
    char spent[32];
    ex_format_duration(ex_progress_seconds(&progress), spent, sizeof spent);
    printf("%s: trained in %s\n", phase, spent);
    return 0;
}

static int save_and_reload(const settings *s, run *r)
{
    char text[512];
    snprintf(text, sizeof text,
             "Sentiment of an English review sentence: P(positive) = sigmoid(output). Trained on "
             "%s (seed %llu); tokens: ex_next_word, vocabulary in 'vocabulary' (id 0 <pad>, id 1 "
             "<unk>), texts cut to their last max_length tokens.",
             strcmp(s->data, "imdb") == 0 ? "IMDB reviews (Maas et al. 2011)"
                                          : "UCI Sentiment Labelled Sentences (Kotzias et al. "
                                            "2015)",
             (unsigned long long)s->seed);
    char max_text[32];
    snprintf(max_text, sizeof max_text, "%llu", (unsigned long long)s->max_length);
    if (ex_vocab_save_meta(&r->vocab, r->best, "vocabulary") ||
        ex_set_meta_text(r->best, "tokenizer", "ex_next_word") ||
        ex_set_meta_text(r->best, "max_length", max_text) ||
        ex_set_meta_text(r->best, "data", s->data) ||
        ex_set_meta_text(r->best, "description", text) ||
        ex_failed(lstm_network_save(r->best, NULL, s->model_path), s->model_path) ||
        ex_failed(lstm_network_load(s->model_path, &r->loaded), s->model_path))
        return 1;
    lstm_workspace *ws = NULL;
    int bad = ex_failed(lstm_workspace_create(lstm_network_model(r->loaded), &ws),
                        "lstm_workspace_create") ||
              infer_all(r->loaded, ws, &r->test, &r->b, r->ids, r->loaded_logits);
    lstm_workspace_destroy(ws);
    if (bad)
        return 1;
    int same = memcmp(r->loaded_logits, r->test_logits, r->test.count * sizeof(float)) == 0;
    printf("saved %s; reloaded, it gives the test logits %s\n", s->model_path,
           same ? "bit for bit" : "DIFFERENTLY");
    return !same;
}

static int write_predictions(const char *path, const run *r)
{
    FILE *file = ex_open_csv(path, "label,lstm_probability,naive_bayes_probability,"
                                   "naive_bayes_extra_probability,text");
    if (!file)
        return 1;
    for (size_t d = 0; d < r->test.count; d++) {
        fprintf(file, "%d,%.6f,%.6f,%.6f,\"", r->test.label[d] > 0.5f,
                1.0 / (1.0 + exp(-(double)r->test_logits[d])),
                naive_bayes_probability(&r->nb, &r->test, d),
                naive_bayes_probability(r->pretrain.count ? &r->nb_extra : &r->nb, &r->test, d));
        for (const char *c = r->set.text[r->test.source[d]]; *c; c++) {
            if (*c == '"')
                fputc('"', file);
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, file);
        }
        fputs("\"\n", file);
    }
    return ex_close_csv(file, path);
}

/* The kept network's test accuracy in percent, in the precision r->ws is
 * set to (ex_evaluate_precisions). */
static int test_accuracy(void *context, double *metric)
{
    run *r = context;
    if (infer_all(r->best, r->ws, &r->test, &r->b, r->ids, r->loaded_logits))
        return 1;
    *metric = 100.0 * accuracy_of_logits(&r->test, r->loaded_logits);
    return 0;
}

static void free_run(run *r)
{
    free_texts(&r->set);
    free(r->parts);
    ex_vocab_free(&r->vocab);
    free_encoded(&r->train);
    free_encoded(&r->pretrain);
    free_naive_bayes(&r->nb_extra);
    free_encoded(&r->valid);
    free_encoded(&r->test);
    free_naive_bayes(&r->nb);
    lstm_workspace_destroy(r->ws);
    lstm_optim_destroy(r->opt);
    lstm_network_destroy(r->net);
    lstm_network_destroy(r->best);
    lstm_network_destroy(r->loaded);
    free(r->b.tokens);
    free(r->b.lengths);
    free(r->b.targets);
    free(r->order);
    free(r->batches);
    free(r->ids);
    free(r->valid_logits);
    free(r->test_logits);
    free(r->loaded_logits);
    free(r->snapshot);
}

int main(int argc, char **argv)
{
    settings s;
    if (parse_args(argc, argv, &s))
        return 1;
    if (s.answer)
        return answer(&s);
    run r;
    memset(&r, 0, sizeof r);
    int result = prepare(&s, &r);
    if (result)
        goto out;
    result = 1;
    /* Baselines on the same tokens and split. */
    size_t positives = 0, right = 0;
    for (size_t d = 0; d < r.train.count; d++)
        positives += r.train.label[d] > 0.5f;
    int majority = 2 * positives >= r.train.count;
    for (size_t d = 0; d < r.test.count; d++)
        right += (r.test.label[d] > 0.5f) == majority;
    r.majority_test = (double)right / (double)r.test.count;
    if (train_naive_bayes(&r.train, r.vocab.size, &r.nb) ||
        (s.extra && train_naive_bayes(&r.pretrain, r.vocab.size, &r.nb_extra))) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    r.nb_test = naive_bayes_accuracy(&r.nb, &r.test);
    r.nb_extra_test = s.extra ? naive_bayes_accuracy(&r.nb_extra, &r.test) : r.nb_test;
    printf("baselines on the test set: majority class (%s) %.4f, naive Bayes %.4f",
           majority ? "positive" : "negative", r.majority_test, r.nb_test);
    if (s.extra)
        printf(", naive Bayes with the extra IMDB sentences %.4f", r.nb_extra_test);
    printf("\n");
    if (allocate(&s, &r))
        goto out;
    printf("model: embedding %zu x %llu, %s LSTM %llu x %llu layer(s), head on the last step -> "
           "1 logit (BCE); %zu parameters; batch %llu, Adam lr %g, word dropout %.2f; training in "
           "%s\n",
           r.vocab.size, (unsigned long long)s.embedding_dim,
           s.unidirectional ? "unidirectional" : "bidirectional", (unsigned long long)s.hidden,
           (unsigned long long)s.layers, lstm_network_param_count(r.net),
           (unsigned long long)s.batch, s.lr, s.word_dropout, ex_precision_name(s.train_precision));
    if (s.csv_path &&
        !(r.csv = ex_open_csv(s.csv_path, "epoch,train_loss,valid_accuracy,test_accuracy,"
                                          "naive_bayes_test_accuracy,"
                                          "naive_bayes_extra_test_accuracy,"
                                          "majority_test_accuracy")))
        goto out;
    r.best_accuracy = -1;
    r.best_loss = INFINITY;
    int trained = (s.extra && train(&s, &r, &r.pretrain, s.pretrain_epochs,
                                    "phase 1, the training sentences and the extra ones")) ||
                  train(&s, &r, &r.train, s.epochs,
                        s.extra ? "phase 2, the training sentences only" : "training");
    if (r.csv && ex_close_csv(r.csv, s.csv_path))
        trained = 1;
    r.csv = NULL;
    if (trained)
        goto out;
    printf("kept the network of epoch %llu (validation accuracy %.4f)\n",
           (unsigned long long)r.best_epoch, r.best_accuracy);
    if (ex_failed(lstm_network_load_buffer(r.snapshot, r.snapshot_size, &r.best),
                  "lstm_network_load_buffer") ||
        infer_all(r.best, r.ws, &r.test, &r.b, r.ids, r.test_logits))
        goto out;
    double lstm_test = accuracy_of_logits(&r.test, r.test_logits);
    printf("test accuracy (%zu held-out %s): LSTM %.4f, naive Bayes %.4f, majority class %.4f\n",
           r.test.count, strcmp(s.data, "imdb") == 0 ? "reviews" : "sentences", lstm_test,
           r.nb_test, r.majority_test);
    if (s.extra)
        printf("with the extra IMDB sentences: naive Bayes %.4f\n", r.nb_extra_test);
    if (strcmp(s.data, "imdb") == 0)
        printf("published (IMDB reviews, 25k/25k split): Maas et al. 2011 88.89%%; LSTM 86.5%% "
               "(Dai & Le 2015)\n");
    else
        printf("published (UCI sentences): naive Bayes about 0.83 cross-validated (issue 24); "
               "Kotzias et al. 2015 report their own figures per site\n");
    double metrics[EX_PRECISIONS];
    if (ex_evaluate_precisions(r.ws, NULL, test_accuracy, &r, metrics))
        goto out;
    ex_print_precisions("held-out accuracy", metrics, 2, "%");
    ex_print_precision_bound(metrics, PRECISION_POINTS, 0, "0.5 points");
    int precision_kept = !s.smoke || ex_print_precision_bound(metrics, SMOKE_PRECISION_POINTS, 0,
                                                              "2 points (the smoke run's bound)");
    if (save_and_reload(&s, &r))
        goto out;
    if (s.predictions_path && write_predictions(s.predictions_path, &r))
        goto out;
    result = 0;
    if (s.smoke) {
        int pass = lstm_test >= r.majority_test + 0.15;
        printf("smoke: LSTM %.4f %s the majority class + 0.15 (%.4f)\n", lstm_test,
               pass ? "reaches" : "DOES NOT reach", r.majority_test + 0.15);
        result = !(pass && precision_kept);
    }
out:
    if (r.csv)
        ex_close_csv(r.csv, s.csv_path);
    free_run(&r);
    return result;
}
