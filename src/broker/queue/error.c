/* The engine's errors: a code of its own and a message for the client.
 * Front ends map the code to their protocol (sqs/actions.c). */
#include "broker/queue/engine.h"

#include <stdarg.h>
#include <stdio.h>

enum bk_err bk_fail(struct bk_error *err, enum bk_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}
