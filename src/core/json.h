/* Strict JSON parsing over cJSON, for request bodies and stored
 * documents: one value and nothing after it but whitespace. */
#ifndef FG_JSON_H
#define FG_JSON_H

#include "core/common.h"

#include <cjson/cJSON.h>

/* Strict JSON parse of s[0..len): one value and nothing but whitespace
 * after it; NULL when invalid. Caller frees with cJSON_Delete. */
cJSON *json_parse_strict(const char *s, size_t len);

#endif
