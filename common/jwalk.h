/* A JSON object read member by member, one array of it element by element: replies of millions of rows without a tree of millions of nodes. */
#ifndef UG_JWALK_H
#define UG_JWALK_H

#include <stddef.h>

#include <jansson.h>

#include "ug_proto.h"

/* Called for each element of the split array, in order; elem is borrowed.
 * A non-zero return stops the walk and is returned. */
typedef int (*ug_jwalk_elem)(void *ctx, size_t i, const json_t *elem);

/* Parses text[0..len) as one JSON object (surrounding white space
 * allowed). Every member except the one named split (when its value is an
 * array) goes into *members (a new object); the split array's elements are
 * each parsed alone and handed to on_elem, so memory stays that of one
 * element. Every piece goes through jansson, so the text is held to JSON
 * as strictly as json_loadb with JSON_REJECT_DUPLICATES would hold it (a
 * member named twice is refused). 0, -1 with err set ("at byte N:
 * ..."), or on_elem's non-zero return (members then set, maybe partly). */
int ug_jwalk(const char *text, size_t len, const char *split, ug_jwalk_elem on_elem, void *ctx, json_t **members,
             char *err, size_t errcap) UG_WUR;

#endif
