/* The history's records: who changed what, and why, as one line of the store's history (store/layout.c). */
#ifndef UG_AUDIT_H
#define UG_AUDIT_H

#include <stddef.h>
#include <stdint.h>

/* Who made a change (docs/control.md "history"). */
typedef enum {
    UG_ACTOR_UNKNOWN = 0, /* a record written before actors were kept */
    UG_ACTOR_HOST,        /* the host process itself: start, stop, its own requests */
    UG_ACTOR_CONTROL,     /* a control socket's client, by uid and pid (SO_PEERCRED) */
    UG_ACTOR_SIGNAL,      /* a signal to the host (SIGHUP's reload) */
    UG_ACTOR_AUTOMATIC,   /* the plugin: halt_when, hold_when_unhealthy */
    UG_ACTOR_FLEET,       /* another tracker of the fleet, through Redis */
    UG_ACTOR_COUNT
} ug_actor_kind;

typedef struct {
    ug_actor_kind kind;
    uint32_t uid; /* HOST, CONTROL: the process's or client's user */
    int32_t pid;  /* HOST, CONTROL: 0 when unknown */
} ug_actor;

/* One change. Strings may be NULL or "" (absent); each is one line. */
typedef struct {
    ug_actor by;
    const char *action;  /* a word: start, stop, pause, resume, halt, reload, ... */
    const char *rollout; /* the rollout changed, if one */
    const char *reason;  /* why: the operator's text, a halt's cause, a refused reload's error */
    const char *summary; /* what a reload changed */
    const char *what;    /* the whole change in one sentence, for people */
} ug_event;

/* The longest record (fields are cut to fit, at a character boundary). */
#define UG_AUDIT_MAX 1000u

/* "control", "signal", ...: the kind's name in history --json. */
const char *ug_actor_name(ug_actor_kind k);

/* The host process itself (getuid, getpid). */
ug_actor ug_actor_self(void);

/* Codes e as one NUL-free line of at most UG_AUDIT_MAX bytes into out
 * (cap > UG_AUDIT_MAX). Control characters in fields become '?'. */
void ug_audit_encode(const ug_event *e, char *out, size_t cap);

/* Reads a stored line back into e, whose strings point into line (which
 * it cuts up). A line of an older layout is all "what", actor UNKNOWN. */
void ug_audit_decode(char *line, ug_event *e);

#endif
