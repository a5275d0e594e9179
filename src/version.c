/* Runtime version of the loaded library, from lstm/version.h. */
#include "lstm/version.h"

LSTM_API unsigned lstm_version_number(void)
{
    return LSTM_VERSION_NUMBER;
}

LSTM_API const char *lstm_version_string(void)
{
    return LSTM_VERSION_STRING;
}
