/* Checks of the examples' shared helpers against hand-written answers:
 * the JSON reader, the tokenizer and the vocabulary (with its round trip
 * through a network's metadata), and the reduced-precision helpers. Exits 1 at the first wrong
 * answer. */
#include "example.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; \
    } \
  } while (0)

static void check_json(void)
{
    const char *text = "[{\"text\":\"caf\\u00e9 \\\"ok\\\"\\n\",\"class\":1},"
                       " {\"text\":\"\\ud83d\\ude00\", \"class\":null, \"x\":[1,{\"y\":2}]},"
                       " {\"data\":[0, -0.5, 1e3]}]";
    static const ex_json_kind expected[] = {
        EX_JSON_BEGIN_ARRAY, EX_JSON_BEGIN_OBJECT, EX_JSON_KEY,        EX_JSON_STRING,
        EX_JSON_KEY,         EX_JSON_NUMBER,       EX_JSON_END_OBJECT, EX_JSON_BEGIN_OBJECT,
        EX_JSON_KEY,         EX_JSON_STRING,       EX_JSON_KEY,        EX_JSON_NULL,
        EX_JSON_KEY};
    ex_json json;
    ex_json_init(&json, text, strlen(text));
    for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++) {
        ex_json_kind kind = ex_json_next(&json);
        CHECK(kind == expected[k]);
        if (k == 3)
            CHECK(json.length == 11 && memcmp(json.text, "caf\xc3\xa9 \"ok\"\n", 11) == 0);
        if (k == 5)
            CHECK(json.number == 1.0);
        if (k == 9)
            CHECK(json.length == 4 && memcmp(json.text, "\xf0\x9f\x98\x80", 4) == 0);
        if (k == 12)
            CHECK(strcmp(json.text, "x") == 0);
    }
    CHECK(ex_json_skip(&json, ex_json_next(&json)) == 0); /* [1,{"y":2}] */
    CHECK(ex_json_next(&json) == EX_JSON_END_OBJECT);
    CHECK(ex_json_next(&json) == EX_JSON_BEGIN_OBJECT);
    CHECK(ex_json_next(&json) == EX_JSON_KEY);
    CHECK(ex_json_next(&json) == EX_JSON_BEGIN_ARRAY);
    static const double numbers[] = {0.0, -0.5, 1000.0};
    for (size_t k = 0; k < 3; k++)
        CHECK(ex_json_next(&json) == EX_JSON_NUMBER && json.number == numbers[k]);
    CHECK(ex_json_next(&json) == EX_JSON_END_ARRAY);
    CHECK(ex_json_next(&json) == EX_JSON_END_OBJECT);
    CHECK(ex_json_next(&json) == EX_JSON_END_ARRAY);
    CHECK(ex_json_next(&json) == EX_JSON_END);
    ex_json_free(&json);

    const char *broken = "[\"unterminated";
    ex_json_init(&json, broken, strlen(broken));
    CHECK(ex_json_next(&json) == EX_JSON_BEGIN_ARRAY);
    CHECK(ex_json_next(&json) == EX_JSON_ERROR);
    ex_json_free(&json);
}

static void check_words(void)
{
    const char *text = "  I really ENJOYED the movie's end -- didn't you?!'";
    static const char *expected[] = {"i", "really", "enjoyed", "the", "movie's", "end", "-",
                                     "-", "didn't", "you",     "?",   "!",       "'"};
    const char *at = text, *end = text + strlen(text);
    char word[8];
    size_t count = 0, length;
    while ((length = ex_next_word(&at, end, word, sizeof word)) > 0) {
        CHECK(count < 13 && strcmp(word, expected[count]) == 0 && length == strlen(word));
        count++;
    }
    CHECK(count == 13);
    at = "abcdefghijk";
    CHECK(ex_next_word(&at, at + 11, word, sizeof word) == 7 && strcmp(word, "abcdefg") == 0);
}

static void check_vocab(void)
{
    ex_vocab all, kept, loaded;
    ex_vocab_init(&all);
    const char *words[] = {"b", "a", "c", "a", "b", "d", "a", "<unk>"};
    for (size_t k = 0; k < 8; k++)
        CHECK(ex_vocab_add(&all, words[k], strlen(words[k])) >= 0);
    CHECK(all.size == 5 && ex_vocab_find(&all, "a", 1) == 1 && all.counts[1] == 3);
    CHECK(ex_vocab_find(&all, "e", 1) == -1);
    for (size_t k = 0; k < 5000; k++) { /* growth of the table and arrays */
        char word[16];
        snprintf(word, sizeof word, "w%zu", k);
        CHECK(ex_vocab_add(&all, word, strlen(word)) == (int64_t)(5 + k));
    }
    CHECK(ex_vocab_find(&all, "w4321", 5) == 5 + 4321);

    /* Specials first, then by count, ties in byte order, min count 1. */
    const char *specials[] = {"<pad>", "<unk>"};
    CHECK(ex_vocab_keep(&all, 2, 100, specials, 2, &kept) == 0);
    CHECK(kept.size == 4);
    CHECK(strcmp(ex_vocab_word(&kept, 0), "<pad>") == 0);
    CHECK(strcmp(ex_vocab_word(&kept, 1), "<unk>") == 0);
    CHECK(strcmp(ex_vocab_word(&kept, 2), "a") == 0 && kept.counts[2] == 3);
    CHECK(strcmp(ex_vocab_word(&kept, 3), "b") == 0);

    lstm_config lstm = LSTM_CONFIG_INIT;
    lstm.input_size = 2;
    lstm.hidden_size = 2;
    lstm.num_layers = 1;
    lstm_embedding_config embedding = LSTM_EMBEDDING_CONFIG_INIT;
    embedding.num_embeddings = 4;
    embedding.embedding_dim = 2;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    config.embedding = &embedding;
    config.lstm = &lstm;
    lstm_network *net = NULL;
    CHECK(lstm_network_create(&config, &net) == LSTM_OK);
    CHECK(ex_vocab_save_meta(&kept, net, "vocabulary") == 0);
    CHECK(strcmp(ex_meta_text(net, "vocabulary"), "<pad>\n<unk>\na\nb\n") == 0);
    CHECK(ex_vocab_load_meta(&loaded, net, "vocabulary", 4) == 0);
    CHECK(loaded.size == 4 && ex_vocab_find(&loaded, "b", 1) == 3);
    ex_vocab_free(&loaded);
    CHECK(ex_vocab_load_meta(&loaded, net, "vocabulary", 5) == 1); /* wrong size */
    CHECK(ex_set_meta_text(net, "vocabulary", "a\na\n") == 0);
    CHECK(ex_vocab_load_meta(&loaded, net, "vocabulary", 0) == 1); /* a repeated word */
    lstm_network_destroy(net);
    ex_vocab_free(&kept);
    ex_vocab_free(&all);
}

static void check_options(void)
{
    const char *text = NULL;
    uint64_t number = 0;
    const ex_option options[] = {{.name = "--text", .text = &text},
                                 {.name = "--number", .number = &number, .min = 2, .max = 9}};
    char *argv[] = {"prog", "--text", "t", "--number", "7", "--other", "--number", "10", "--text"};
    const int argc = 9;
    int k = 1;
    CHECK(ex_take_option(options, 2, argc, argv, &k) == 1 && k == 2 && strcmp(text, "t") == 0);
    k = 3;
    CHECK(ex_take_option(options, 2, argc, argv, &k) == 1 && k == 4 && number == 7);
    k = 5; /* not one of them */
    CHECK(ex_take_option(options, 2, argc, argv, &k) == 0 && k == 5);
    k = 6; /* out of range */
    CHECK(ex_take_option(options, 2, argc, argv, &k) == -1 && number == 7);
    k = 8; /* no value */
    CHECK(ex_take_option(options, 2, argc, argv, &k) == 0 && k == 8);
}

/* Counts the calls of ex_evaluate_precisions()'s evaluation. */
static int count_calls(void *context, double *metric)
{
    int *calls = context;
    *metric = (double)++*calls;
    return 0;
}

static void check_precision(void)
{
    lstm_precision precision;
    CHECK(ex_parse_precision(NULL, &precision) == 0 && precision == LSTM_PRECISION_FP32);
    CHECK(ex_parse_precision("int8", &precision) == 0 && precision == LSTM_PRECISION_INT8);
    CHECK(ex_parse_precision("bf16", &precision) == 0 && precision == LSTM_PRECISION_BF16);
    CHECK(ex_parse_precision("fp16", &precision) == 1);
    CHECK(strcmp(ex_precision_name(LSTM_PRECISION_INT8), "int8") == 0);
    /* training: fp32 or bf16 only */
    CHECK(ex_parse_training_precision(NULL, &precision) == 0 && precision == LSTM_PRECISION_FP32);
    CHECK(ex_parse_training_precision("bf16", &precision) == 0 && precision == LSTM_PRECISION_BF16);
    CHECK(ex_parse_training_precision("fp32", &precision) == 0 && precision == LSTM_PRECISION_FP32);
    CHECK(ex_parse_training_precision("int8", &precision) == 1);
    CHECK(ex_parse_training_precision("BF16", &precision) == 1);
    CHECK(ex_precision_within(98.65, 98.20, 0.5, 0) && !ex_precision_within(98.65, 98.1, 0.5, 0));
    CHECK(ex_precision_within(162.0, 163.6, 0.01, 1) &&
          !ex_precision_within(162.0, 163.7, 0.01, 1));
    int calls = 0;
    double metrics[EX_PRECISIONS];
    CHECK(ex_evaluate_precisions(NULL, NULL, count_calls, &calls, metrics) == 0 && calls == 3);
    CHECK(metrics[0] == 1.0 && metrics[1] == 2.0 && metrics[2] == 3.0);
}

int main(void)
{
    check_options();
    check_precision();
    check_json();
    check_words();
    check_vocab();
    float values[] = {0.5f, 2.0f, 2.0f, -1.0f};
    double p[4];
    CHECK(ex_argmax(values, 4) == 1);
    double lse = ex_softmax(values, 4, p);
    CHECK(lse > 2.0 && p[1] == p[2] && p[1] > p[0] && p[0] > p[3]);
    CHECK(fabs(p[0] + p[1] + p[2] + p[3] - 1.0) < 1e-12);
    if (failures)
        fprintf(stderr, "%d checks failed\n", failures);
    return failures != 0;
}
