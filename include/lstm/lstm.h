/**
 * @file lstm/lstm.h
 * @brief liblstm: fast LSTM training and inference behind a stable C ABI.
 *
 * Include this umbrella header; it pulls in every public module:
 *   - lstm/common.h   status codes, lstm_strerror(), lstm_error_message()
 *   - lstm/version.h  version macros and lstm_version_*()
 *   - lstm/model.h    configuration, model, parameters, workspace, inference
 *   - lstm/train.h    training forward and backpropagation through time
 *   - lstm/optim.h    optimizers, gradient clipping, learning-rate schedules
 *   - lstm/io.h       model files: save and load, to a path or memory
 *   - lstm/head.h     output heads (dense layer, last step) and losses
 *   - lstm/embedding.h  the embedding layer: token ids to vectors
 *   - lstm/network.h  whole sequence models: input, LSTM, head, loss, metadata
 *   - lstm/ctc.h      the CTC loss and greedy decoder, for unsegmented labels
 */
#ifndef LSTM_LSTM_H
#define LSTM_LSTM_H

#include "lstm/common.h"
#include "lstm/version.h"
#include "lstm/model.h"
#include "lstm/train.h"
#include "lstm/optim.h"
#include "lstm/io.h"
#include "lstm/head.h"
#include "lstm/embedding.h"
#include "lstm/network.h"
#include "lstm/ctc.h"

#endif /* LSTM_LSTM_H */
