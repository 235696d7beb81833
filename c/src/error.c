/*
 * error.c - the per-thread "last error" message and its echo on stderr.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* One message per thread, so concurrent callers never read each other's errors. */
static _Thread_local char last_error[256];
static _Thread_local int last_status;

/* Quietness is a process-wide switch; relaxed order is enough for a flag. */
static atomic_int quiet;

int mc_error(int status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    /* vsnprintf truncates long messages instead of overflowing the buffer. */
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    last_status = status;
    if (!atomic_load_explicit(&quiet, memory_order_relaxed))
        fprintf(stderr, "microcrad: %s\n", last_error);
    return status;
}

const char *microcrad_last_error(void) { return last_error; }

int microcrad_last_status(void) { return last_status; }

void microcrad_clear_error(void)
{
    last_error[0] = '\0';
    last_status = MICROCRAD_OK;
}

int microcrad_set_quiet(int on)
{
    return atomic_exchange_explicit(&quiet, on != 0, memory_order_relaxed);
}

const char *microcrad_status_string(int status)
{
    switch (status) {
    case MICROCRAD_OK: return "ok";
    case MICROCRAD_ERR_NULL: return "NULL pointer";
    case MICROCRAD_ERR_RELEASED: return "use of a released Value or freed handle";
    case MICROCRAD_ERR_FOREIGN: return "not a microcrad object of the expected kind";
    case MICROCRAD_ERR_NOMEM: return "out of memory";
    case MICROCRAD_ERR_ARGUMENT: return "invalid argument";
    case MICROCRAD_ERR_OVERFLOW: return "reference count overflow";
    case MICROCRAD_ERR_IO: return "write error";
    case MICROCRAD_ERR_CALLBACK: return "a backward callback failed";
    default: return "unknown status";
    }
}
