/* sd_notify(3) through libsystemd when built with it (HAVE_SYSTEMD); a no-op otherwise. */
#include <stdarg.h>
#include <stdio.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "notify.h"

void ug_notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
    char state[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state, sizeof state, fmt, ap);
    va_end(ap);
    int rc = sd_notify(0, state);
    if (rc < 0)
        ug_log(UG_LOG_WARN, "sd_notify: error %d", -rc);
#else
    (void)fmt;
#endif
}
