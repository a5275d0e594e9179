// The public headers compile as C++ and link with C linkage.
#include <lstm/lstm.h>

#include <cstdio>
#include <vector>

int main()
{
    lstm_config config = LSTM_CONFIG_INIT;
    config.input_size = 2;
    config.hidden_size = 3;
    lstm_model *model = nullptr;
    lstm_workspace *workspace = nullptr;
    if (lstm_model_create(&config, &model) != LSTM_OK || lstm_model_init(model, 5, 0) != LSTM_OK ||
        lstm_workspace_create(model, &workspace) != LSTM_OK) {
        std::fprintf(stderr, "setup failed: %s\n", lstm_error_message());
        return 1;
    }
    std::vector<float> x(4 * 2 * 2, 0.5f), y(4 * 2 * 3);
    lstm_status status = lstm_model_forward(model, workspace, 4, 2, NULL, x.data(), nullptr,
                                            nullptr, y.data(), nullptr, nullptr);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    if (status != LSTM_OK || lstm_strerror(LSTM_E_NULL) == nullptr)
        return 1;
    // Both batch rows saw the same input, so they must agree.
    for (int j = 0; j < 3; j++)
        if (y[j] != y[3 + j])
            return 1;
    // The embedding layer (lstm/embedding.h): its initializer and a lookup.
    lstm_embedding_config embedding_config = LSTM_EMBEDDING_CONFIG_INIT;
    embedding_config.num_embeddings = 4;
    embedding_config.embedding_dim = 2;
    embedding_config.flags = LSTM_EMBEDDING_PADDING;
    embedding_config.padding_idx = -1;
    lstm_embedding *embedding = nullptr;
    const int64_t ids[3] = {0, 3, 0};
    std::vector<float> looked_up(3 * 2);
    if (lstm_embedding_create(&embedding_config, &embedding) != LSTM_OK ||
        lstm_embedding_init(embedding, 7) != LSTM_OK ||
        lstm_embedding_forward(embedding, 3, ids, looked_up.data()) != LSTM_OK) {
        std::fprintf(stderr, "embedding failed: %s\n", lstm_error_message());
        lstm_embedding_destroy(embedding);
        return 1;
    }
    lstm_embedding_destroy(embedding);
    // Row 3 is the padding row (zero); positions 0 and 2 both look up row 0.
    if (looked_up[2] != 0.0f || looked_up[3] != 0.0f || looked_up[0] != looked_up[4])
        return 1;
    std::printf("C++ consumer OK, y[0] = %f\n", static_cast<double>(y[0]));
    return 0;
}
