/* classify.c: load a whole sequence model (one file: embedding, LSTM, a
 * head on each sequence's last step, and its labels) and classify token
 * sequences, one per line of standard input.
 *
 * Build: cc classify.c $(pkg-config --cflags --libs lstm)
 * Usage: classify MODEL.lstm < ids.txt
 *   Each input line holds a sequence's token ids, separated by spaces. Each
 *   output line gives the class with the highest logit, and its name when
 *   the file has a "labels" metadata entry (one label per line).
 *
 * The lines below marked "the model" are all a program needs to run a
 * trained network; the rest reads the input and prints the answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lstm/lstm.h>

enum { MAX_BATCH = 1024, MAX_STEPS = 4096 };

#define CHECK(call) \
  do { \
    lstm_status status_ = (call); \
    if (status_ != LSTM_OK) { \
      fprintf(stderr, "%s: %s: %s\n", #call, lstm_strerror(status_), lstm_error_message()); \
      goto out; \
    } \
  } while (0)

/* The ids of each line into rows[b][0 .. lengths[b]); returns the batch, or
 * 0 after saying what is wrong. */
static size_t read_sequences(int64_t (*rows)[MAX_STEPS], size_t *lengths)
{
    static char line[16 * MAX_STEPS];
    size_t batch = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (batch == MAX_BATCH) {
            fprintf(stderr, "more than %d lines\n", MAX_BATCH);
            return 0;
        }
        size_t steps = 0;
        for (char *word = strtok(line, " \t\r\n"); word != NULL; word = strtok(NULL, " \t\r\n")) {
            char *end;
            long long id = strtoll(word, &end, 10);
            if (*end != '\0' || steps == MAX_STEPS) {
                fprintf(stderr, "line %zu: \"%s\" is not a token id, or too many\n", batch + 1,
                        word);
                return 0;
            }
            rows[batch][steps++] = (int64_t)id;
        }
        if (steps == 0) {
            fprintf(stderr, "line %zu holds no token\n", batch + 1);
            return 0;
        }
        lengths[batch++] = steps;
    }
    return batch;
}

/* Label k of a text of one label per line, or NULL. */
static const char *label(const char *labels, size_t k, size_t *length)
{
    for (; labels != NULL && k > 0; k--)
        if ((labels = strchr(labels, '\n')) != NULL)
            labels++;
    if (labels == NULL || *labels == '\0')
        return NULL;
    const char *end = strchr(labels, '\n');
    *length = end != NULL ? (size_t)(end - labels) : strlen(labels);
    return labels;
}

int main(int argc, char **argv)
{
    static int64_t rows[MAX_BATCH][MAX_STEPS];
    static size_t lengths[MAX_BATCH];
    lstm_network *network = NULL;
    lstm_workspace *workspace = NULL;
    int64_t *tokens = NULL;
    float *logits = NULL;
    int exit_code = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.lstm < ids.txt\n", argv[0]);
        return 2;
    }
    const size_t batch = read_sequences(rows, lengths);
    if (batch == 0)
        return 1;
    size_t steps = 0;
    for (size_t b = 0; b < batch; b++)
        steps = lengths[b] > steps ? lengths[b] : steps;
    /* [T][B], time-major; past a sequence's end nothing is read */
    tokens = calloc(steps * batch, sizeof *tokens);
    for (size_t b = 0; tokens != NULL && b < batch; b++)
        for (size_t t = 0; t < lengths[b]; t++)
            tokens[t * batch + b] = rows[b][t];

    /* the model */
    CHECK(lstm_network_load(argv[1], &network));
    CHECK(lstm_workspace_create(lstm_network_model(network), &workspace));
    lstm_network_config config = {.struct_size = sizeof config};
    CHECK(lstm_network_get_config(network, &config));
    const size_t classes = config.head_size;
    logits = calloc(batch * (classes ? classes : 1), sizeof *logits);
    if (tokens == NULL || logits == NULL || config.head != LSTM_HEAD_LAST_STEP) {
        fprintf(stderr, "%s\n",
                tokens == NULL || logits == NULL
                    ? "out of memory"
                    : "the model has no head on each sequence's last step");
        goto out;
    }
    const lstm_sequences sequences = {
        .struct_size = sizeof sequences, .steps = steps, .batch = batch, .lengths = lengths};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = tokens};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = logits};
    CHECK(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs));

    const void *labels = NULL;
    if (lstm_network_get_meta(network, "labels", NULL, &labels, NULL) != LSTM_OK)
        labels = NULL;
    for (size_t b = 0; b < batch; b++) {
        size_t best = 0, length = 0;
        for (size_t k = 1; k < classes; k++)
            best = logits[b * classes + k] > logits[b * classes + best] ? k : best;
        const char *name = label(labels, best, &length);
        printf("%zu%s%.*s\n", best, name != NULL ? " " : "", (int)length, name != NULL ? name : "");
    }
    exit_code = 0;
out:
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
    free(tokens);
    free(logits);
    return exit_code;
}
