/* libyaml's event parser into a bounded tree: depth, anchors, aliases and
 * nodes are capped, and an alias shares the node it names.
 *
 * Why not yaml_parser_load: its composer is quadratic in anchors and deep
 * nesting (78 KB took 12 s) and copies every alias (a 100k-uid list aliased
 * by 300 stages grew from 1 MB to 620 MB). Here the work is linear in the
 * input: each event becomes at most one node, collections are laid out
 * once, and an alias costs one pointer. */
#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "policy/yaml_doc.h"

#define CHUNK_MIN (64u << 10)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} chunk;

typedef struct {
    char *name;
    const ug_ynode *node;
    const void *memo_tag;
    void *memo;
} anchor;

struct ug_ydoc {
    chunk *chunks;
    ug_ynode *root;
    anchor *anchors;
    size_t nanchors;
};

/* ---- memory: one arena per document, freed whole ---------------------- */

static void *arena_alloc(ug_ydoc *d, size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        if (cap > SIZE_MAX - sizeof *c || !(c = malloc(sizeof *c + cap)))
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* a big block goes behind the current chunk, which keeps filling */
        if (d->chunks && cap > CHUNK_MIN) {
            c->next = d->chunks->next;
            d->chunks->next = c;
            c->used = n;
            return c->data;
        }
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void ug_ydoc_free(ug_ydoc *d)
{
    if (!d)
        return;
    for (chunk *c = d->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    for (size_t i = 0; i < d->nanchors; i++)
        free(d->anchors[i].name);
    free(d->anchors);
    free(d);
}

const ug_ynode *ug_ydoc_root(const ug_ydoc *d)
{
    return d ? d->root : NULL;
}

void *ug_ydoc_memo_get(const ug_ydoc *d, const ug_ynode *n, const void *tag)
{
    if (!d || !n || !n->anchor)
        return NULL;
    const anchor *a = &d->anchors[n->anchor - 1];
    return a->memo_tag == tag ? a->memo : NULL;
}

void ug_ydoc_memo_set(ug_ydoc *d, const ug_ynode *n, const void *tag, void *val)
{
    if (!d || !n || !n->anchor)
        return;
    anchor *a = &d->anchors[n->anchor - 1];
    a->memo_tag = tag;
    a->memo = val;
}

/* ---- input: the file descriptor, at most max bytes --------------------- */

int ug_yinput_read(void *data, unsigned char *buf, size_t size, size_t *got)
{
    ug_yinput *in = data;
    for (;;) {
        ssize_t n = read(in->fd, buf, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            in->err = errno;
            return 0;
        }
        in->total += (uint64_t)n;
        if (in->total > in->max) {
            in->too_big = true;
            return 0;
        }
        *got = (size_t)n;
        return 1;
    }
}

/* ---- building ----------------------------------------------------------- */

typedef struct {
    ug_ynode *node;
    size_t first;  /* its first item in the pending stack */
    char *anchor;  /* registered when the collection ends, so it cannot contain itself */
} frame;

typedef struct {
    const ug_ylog *y;
    ug_ydoc *d;
    frame stack[UG_YAML_DEPTH_MAX];
    size_t depth;
    ug_ynode **pending; /* items of every open collection, innermost last */
    size_t npending, cap;
    size_t nodes, aliases, docs;
} builder;

/* The dotted key of the place the parser is at, for messages. */
static void where(const builder *b, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < b->depth; i++) {
        const frame *f = &b->stack[i];
        size_t count = (i + 1 < b->depth ? b->stack[i + 1].first : b->npending) - f->first;
        char base[UG_YAML_KEY_MAX];
        memcpy(base, out, strlen(out) + 1);
        if (f->node->kind == UG_Y_SEQ) {
            ug_ykey(out, cap, base, NULL, 0, count);
        } else if (count % 2 == 1 && b->pending[f->first + count - 1]->kind == UG_Y_SCALAR) {
            const ug_ynode *k = b->pending[f->first + count - 1];
            ug_ykey(out, cap, base, k->u.text, k->n, 0);
        } else {
            return; /* at a key: the mapping itself is the place */
        }
    }
}

__attribute__((format(printf, 3, 4))) static int refuse(const builder *b, size_t line, const char *fmt, ...)
{
    char key[UG_YAML_KEY_MAX], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    where(b, key, sizeof key);
    return ug_yfail(b->y, b->y->path, line, key[0] ? key : "(yaml)", "%s", msg);
}

/* Why a node could not be made: the node cap, or memory. */
static int no_node(const builder *b, size_t line)
{
    if (b->nodes >= UG_YAML_NODES_MAX)
        return refuse(b, line, "more than %u YAML nodes (long uid lists belong in a uids_file)", UG_YAML_NODES_MAX);
    return refuse(b, line, "out of memory");
}

static int push_pending(builder *b, ug_ynode *n)
{
    if (b->npending == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        ug_ynode **p = realloc(b->pending, cap * sizeof *p);
        if (!p)
            return -1;
        b->pending = p;
        b->cap = cap;
    }
    b->pending[b->npending++] = n;
    return 0;
}

static ug_ynode *new_node(builder *b, ug_ykind kind, const yaml_mark_t *mark)
{
    if (b->nodes >= UG_YAML_NODES_MAX)
        return NULL;
    ug_ynode *n = arena_alloc(b->d, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = mark->line + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(mark->line + 1);
    b->nodes++;
    return n;
}

static int name_anchor(builder *b, const char *name, const ug_ynode *node, size_t line)
{
    if (b->d->nanchors >= UG_YAML_ANCHORS_MAX)
        return refuse(b, line, "more than %u anchors (&name)", UG_YAML_ANCHORS_MAX);
    if (!b->d->anchors && !(b->d->anchors = calloc(UG_YAML_ANCHORS_MAX, sizeof *b->d->anchors)))
        return refuse(b, line, "out of memory");
    anchor *a = &b->d->anchors[b->d->nanchors];
    if (!(a->name = strdup(name)))
        return refuse(b, line, "out of memory");
    a->node = node;
    b->d->nanchors++;
    ((ug_ynode *)node)->anchor = (uint16_t)b->d->nanchors;
    return 0;
}

/* A finished node goes to its collection, or is the root. */
static int place(builder *b, ug_ynode *n, size_t line)
{
    if (b->depth == 0) {
        b->d->root = n;
        return 0;
    }
    return push_pending(b, n) == 0 ? 0 : refuse(b, line, "out of memory");
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    size_t line = ev->start_mark.line + 1;
    const yaml_char_t *tag = ev->data.scalar.tag;
    if (tag)
        return refuse(b, line, "YAML tags (%s) are not used in a policy: write the value plainly", (const char *)tag);
    size_t len = ev->data.scalar.length;
    if (len > UINT32_MAX)
        return refuse(b, line, "scalar too long");
    ug_ynode *n = new_node(b, UG_Y_SCALAR, &ev->start_mark);
    if (!n)
        return no_node(b, line);
    char *text = arena_alloc(b->d, len + 1);
    if (!text)
        return refuse(b, line, "out of memory");
    memcpy(text, ev->data.scalar.value, len);
    text[len] = '\0';
    n->u.text = text;
    n->n = (uint32_t)len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (ev->data.scalar.anchor && name_anchor(b, (const char *)ev->data.scalar.anchor, n, line) != 0)
        return -1;
    return place(b, n, line);
}

static int on_start(builder *b, const yaml_event_t *ev, ug_ykind kind)
{
    size_t line = ev->start_mark.line + 1;
    const yaml_char_t *tag = kind == UG_Y_SEQ ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
    const yaml_char_t *name = kind == UG_Y_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    if (tag)
        return refuse(b, line, "YAML tags (%s) are not used in a policy", (const char *)tag);
    if (b->depth == UG_YAML_DEPTH_MAX)
        return refuse(b, line, "nested deeper than %u levels", UG_YAML_DEPTH_MAX);
    ug_ynode *n = new_node(b, kind, &ev->start_mark);
    if (!n)
        return no_node(b, line);
    frame *f = &b->stack[b->depth];
    f->node = n;
    f->first = b->npending;
    f->anchor = NULL;
    if (name && !(f->anchor = strdup((const char *)name)))
        return refuse(b, line, "out of memory");
    b->depth++;
    return 0;
}

static int on_end(builder *b, const yaml_event_t *ev)
{
    size_t line = ev->start_mark.line + 1;
    frame *f = &b->stack[b->depth - 1];
    ug_ynode *n = f->node;
    size_t count = b->npending - f->first;
    if (count > UINT32_MAX)
        return refuse(b, line, "collection too long");
    ug_ynode **items = NULL;
    if (count) {
        if (!(items = arena_alloc(b->d, count * sizeof *items)))
            return refuse(b, line, "out of memory");
        memcpy(items, b->pending + f->first, count * sizeof *items);
    }
    n->u.items = items;
    n->n = (uint32_t)(n->kind == UG_Y_MAP ? count / 2 : count);
    b->npending = f->first;
    char *name = f->anchor;
    f->anchor = NULL;
    b->depth--;
    int rc = name ? name_anchor(b, name, n, line) : 0;
    free(name);
    return rc == 0 ? place(b, n, line) : -1;
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
    size_t line = ev->start_mark.line + 1;
    const char *name = (const char *)ev->data.alias.anchor;
    if (++b->aliases > UG_YAML_ALIASES_MAX)
        return refuse(b, line, "more than %u aliases (*name)", UG_YAML_ALIASES_MAX);
    /* the latest anchor of that name: YAML lets a name be redefined */
    for (size_t i = b->d->nanchors; i-- > 0;)
        if (strcmp(b->d->anchors[i].name, name) == 0)
            return place(b, (ug_ynode *)b->d->anchors[i].node, line);
    for (size_t i = 0; i < b->depth; i++)
        if (b->stack[i].anchor && strcmp(b->stack[i].anchor, name) == 0)
            return refuse(b, line, "alias *%s inside its own anchor (a loop)", name);
    return refuse(b, line, "alias *%s names no anchor before it", name);
}

static int on_event(builder *b, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs == 1)
            return 1; /* a second document: refused at its first node */
        return 0;
    case YAML_DOCUMENT_END_EVENT:
        b->docs++;
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, UG_Y_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, UG_Y_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    default:
        return 0;
    }
}

static int parse_error(const builder *b, const yaml_parser_t *ps, const ug_yinput *in)
{
    if (in->too_big)
        return ug_yfail(b->y, b->y->path, 0, "(file)", "larger than %llu bytes (long uid lists belong in a uids_file)",
                        (unsigned long long)in->max);
    if (in->err)
        return ug_yfail(b->y, b->y->path, 0, "(file)", "read error: %s", strerror(in->err));
    return ug_yfail(b->y, b->y->path, ps->problem_mark.line + 1, "(yaml)", "%s%s%s",
                    ps->problem ? ps->problem : "syntax error", ps->context ? " " : "",
                    ps->context ? ps->context : "");
}

ug_ydoc *ug_ydoc_read(const ug_ylog *y, int fd, uint64_t max)
{
    builder b = {.y = y};
    ug_yinput in = {.fd = fd, .max = max};
    yaml_parser_t ps;
    if (!(b.d = calloc(1, sizeof *b.d)) || !yaml_parser_initialize(&ps)) {
        free(b.d);
        ug_yfail(y, y->path, 0, "(file)", "out of memory");
        return NULL;
    }
    yaml_parser_set_input(&ps, ug_yinput_read, &in);
    int rc = 0;
    bool done = false, second = false;
    while (rc == 0 && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev)) {
            rc = parse_error(&b, &ps, &in);
            break;
        }
        if (second && ev.type != YAML_DOCUMENT_END_EVENT)
            rc = ug_yfail(y, y->path, ev.start_mark.line + 1, "(yaml)", "more than one YAML document");
        else
            rc = on_event(&b, &ev, &done);
        if (rc == 1) {
            second = true;
            rc = 0;
        }
        yaml_event_delete(&ev);
    }
    for (size_t i = 0; i < b.depth; i++)
        free(b.stack[i].anchor);
    free(b.pending);
    yaml_parser_delete(&ps);
    if (rc != 0) {
        ug_ydoc_free(b.d);
        return NULL;
    }
    return b.d;
}
