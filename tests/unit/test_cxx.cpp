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
    std::printf("C++ consumer OK, y[0] = %f\n", static_cast<double>(y[0]));
    return 0;
}
