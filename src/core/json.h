/* Strict JSON parsing over cJSON, for request bodies and stored
 * documents: one value and nothing after it but whitespace; and small
 * helpers for building one JSON shape from another. */
#ifndef FG_JSON_H
#define FG_JSON_H

#include "core/common.h"

#include <cjson/cJSON.h>

/* Strict JSON parse of s[0..len): one value and nothing but whitespace
 * after it; NULL when invalid. Caller frees with cJSON_Delete. */
cJSON *json_parse_strict(const char *s, size_t len);

/* Copies src's string member from into dst under name; nothing when src
 * has no such string (renaming fields between two JSON shapes). */
void json_copy_str(cJSON *dst, const char *name, const cJSON *src, const char *from);

#endif
