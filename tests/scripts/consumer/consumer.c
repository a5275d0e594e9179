/* A program outside the project, built only against an installed liblstm. */
#include <stdio.h>
#include <string.h>

#include <lstm/lstm.h>

int main(void)
{
    if (lstm_version_number() != LSTM_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", LSTM_VERSION_STRING, lstm_version_string());
        return 1;
    }
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    config.input_size = 3;
    config.hidden_size = 4;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    float x[2 * 3] = {0.1f, 0.2f, 0.3f, -0.1f, -0.2f, -0.3f}, hT[4];
    lstm_status status = lstm_model_create(&config, &model);
    if (status == LSTM_OK)
        status = lstm_model_init(model, 1, LSTM_INIT_FORGET_BIAS_ONE);
    if (status == LSTM_OK)
        status = lstm_workspace_create(model, &workspace);
    if (status == LSTM_OK)
        status = lstm_model_forward(model, workspace, 2, 1, NULL, x, NULL, NULL, NULL, hT, NULL);
    if (status != LSTM_OK) {
        fprintf(stderr, "liblstm: %s: %s\n", lstm_strerror(status), lstm_error_message());
        return 1;
    }
    printf("liblstm %s: hT[0] = %f\n", lstm_version_string(), (double)hT[0]);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    return 0;
}
