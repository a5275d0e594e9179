/*
 * lstm__model_touch() (private, defined in model.c): gives a model a generation no
 * model has had (from 1 on), on creation and whenever a call may change its
 * parameters (lstm_model_set_params(), lstm_model_init(), handing out
 * lstm_model_params()'s view, an optimizer step over lstm_optim_add_model()'s
 * binding). Packed weights kept between calls (lstm_workspace_keep_weights())
 * belong to one generation. Its own header, so that the optimizer module
 * needs nothing else of the model's internals.
 */
#ifndef LSTM_TOUCH_H
#define LSTM_TOUCH_H

#include "lstm/model.h"

void lstm__model_touch(lstm_model *model);

#endif /* LSTM_TOUCH_H */
