/* sd_notify(3) through libsystemd when built with it (HAVE_SYSTEMD); a no-op otherwise. */
#ifndef UG_NOTIFY_H
#define UG_NOTIFY_H

/* Sends one state string ("READY=1\nSTATUS=..."), formatted; silent when
 * there is no NOTIFY_SOCKET or no libsystemd. */
void ug_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
