/* The policy's YAML layer: libyaml's event parser into a bounded tree whose
 * aliases share nodes, and the checked access a loader needs, every refusal
 * one line "file:line: key: message". Knows nothing of policies. */
#ifndef UG_YAML_DOC_H
#define UG_YAML_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard bounds on a document, so that any file under the size cap is read,
 * or refused, in linear time and bounded memory. */
#define UG_YAML_DEPTH_MAX 32u     /* collections inside collections */
#define UG_YAML_ANCHORS_MAX 1000u
#define UG_YAML_ALIASES_MAX 1000u
#define UG_YAML_NODES_MAX (1u << 21) /* scalars and collections, aliases not counted */
#define UG_YAML_KEY_MAX 192u      /* a dotted key like rollouts[1].stages[0].percent[2].at */
#define UG_YAML_SHOW_MAX 64u      /* how much of a bad value a message quotes */

typedef enum { UG_Y_SCALAR, UG_Y_SEQ, UG_Y_MAP } ug_ykind;

/* A node of the tree. An alias is the node its anchor names, not a copy:
 * the same node may sit in several places, so the tree is read-only. */
typedef struct ug_ynode ug_ynode;
struct ug_ynode {
    uint8_t kind;    /* ug_ykind */
    uint8_t plain;   /* scalar: written without quotes (YAML plain style) */
    uint16_t anchor; /* 0, or 1 + its index among the document's anchors */
    uint32_t line;   /* 1-based line where the node starts */
    uint32_t n;      /* scalar: bytes of text; seq: items; map: pairs */
    union {
        const char *text;       /* scalar: n bytes, then a NUL (may hold NULs) */
        ug_ynode *const *items; /* seq: n items; map: 2n, each key then its value */
    } u;
};

/* Where messages go: "file:line: key: message" into err[0..errcap). */
typedef struct {
    const char *path; /* the document's file, for messages */
    char *err;        /* may be NULL */
    size_t errcap;
} ug_ylog;

/* Writes one line "file:line: key: message" (control bytes shown as '?',
 * truncated to errcap) and returns -1, so callers can `return ug_yfail(...)`. */
int ug_yfail(const ug_ylog *y, const char *file, size_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Replaces control bytes, so a message stays one line whatever the input. */
void ug_yone_line(char *s);
#define UG_YFAIL(y, node, key, ...) ug_yfail((y), (y)->path, ug_yline(node), (key), __VA_ARGS__)

typedef struct ug_ydoc ug_ydoc;

/* libyaml's reader (a yaml_read_handler_t) over fd, refusing more than max
 * bytes in all. When the parser then fails, too_big or err (an errno) says
 * whether the input was why. ug_ydoc_read reads through it, and so does
 * upgate-ctl --policy, which stops at the state key. */
typedef struct {
    int fd;
    uint64_t max, total;
    bool too_big;
    int err;
} ug_yinput;
int ug_yinput_read(void *data, unsigned char *buf, size_t size, size_t *got);

/* Reads one YAML document from fd (at most max bytes; fd is not closed)
 * into a tree. Refuses, as "(yaml)" or with the key path where it
 * happened, a syntax error, a second document, a tag, an alias to an
 * unknown or unfinished anchor, and anything past the bounds above. NULL
 * on refusal (the message in y). An empty stream is a document without
 * a root. */
ug_ydoc *ug_ydoc_read(const ug_ylog *y, int fd, uint64_t max) __attribute__((warn_unused_result));
const ug_ynode *ug_ydoc_root(const ug_ydoc *d); /* NULL: no document */
void ug_ydoc_free(ug_ydoc *d);

/* One remembered value per anchored node, for a loader that builds
 * something costly from a node an alias may share: get returns the value
 * set for this node under tag (NULL if none or another tag). */
void *ug_ydoc_memo_get(const ug_ydoc *d, const ug_ynode *n, const void *tag);
void ug_ydoc_memo_set(ug_ydoc *d, const ug_ynode *n, const void *tag, void *val);

/* ---- access (yaml_access.c) ------------------------------------------ */

size_t ug_yline(const ug_ynode *n); /* 0 for NULL */
bool ug_yis_null(const ug_ynode *n);  /* plain "", "~" or null in any YAML case */
bool ug_yis_plain(const ug_ynode *n); /* an unquoted scalar that is not null */
bool ug_ytext_is(const ug_ynode *n, const char *s);
/* "a mapping", "a list", "null", "a scalar", "a quoted string", "nothing". */
const char *ug_ykind_name(const ug_ynode *n);
/* A printable, bounded copy of s[0..len) for quoting in a message. */
const char *ug_yshow(char *out, size_t cap, const char *s, size_t len);
/* out = base + "." + key (just key when base is ""), or base + "[i]" when
 * key is NULL; key shown as by ug_yshow. */
void ug_ykey(char *out, size_t cap, const char *base, const char *key, size_t klen, size_t i);

/* A mapping's keys against the fields f[0..nf): every key a known one, at
 * most once, every required one present; fills key and val. path names
 * the mapping ("" at the top, shown as "(top)"). */
typedef struct {
    const char *name;
    bool required;
    const ug_ynode *key, *val;
} ug_yfield;
int ug_ycollect(const ug_ylog *y, const ug_ynode *m, const char *path, ug_yfield *f, size_t nf)
    __attribute__((warn_unused_result));

/* Typed values; each refuses with a message naming key at v's line. */
/* Unquoted decimal in [min, max]: digits only, no leading zero (YAML 1.1
 * reads 010 as octal), no sign, no overflow. */
int ug_yget_uint(const ug_ylog *y, const ug_ynode *v, const char *key, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((warn_unused_result));
/* Unquoted true/false (True, TRUE, False, FALSE). */
int ug_yget_bool(const ug_ylog *y, const ug_ynode *v, const char *key, bool *out) __attribute__((warn_unused_result));
/* A string of minlen..maxlen bytes without NUL, quoted or not, never null. */
int ug_yget_str(const ug_ylog *y, const ug_ynode *v, const char *key, size_t minlen, size_t maxlen, const char **s,
                size_t *len) __attribute__((warn_unused_result));
/* An unquoted scalar (numbers): its text; what names the value expected. */
int ug_yget_plain(const ug_ylog *y, const ug_ynode *v, const char *key, const char *what, const char **s,
                  size_t *len) __attribute__((warn_unused_result));
/* A list of 1..max items. */
int ug_yget_list(const ug_ylog *y, const ug_ynode *v, const char *key, size_t max, ug_ynode *const **items,
                 size_t *n) __attribute__((warn_unused_result));
/* A path, resolved against dir unless absolute, into out[0..cap). */
int ug_yget_path(const ug_ylog *y, const ug_ynode *v, const char *key, const char *dir, char *out, size_t cap)
    __attribute__((warn_unused_result));

#endif
