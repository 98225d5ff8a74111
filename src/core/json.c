/* Implementation of json.h. */
#include "core/json.h"

cJSON *json_parse_strict(const char *s, size_t len)
{
    const char *end = NULL;
    if (len == 0)
        return NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, false);
    if (!j)
        return NULL;
    const char *lim = s + len;
    while (end && end < lim && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    /* cJSON stops at a NUL inside the buffer; anything left is garbage. */
    if (end != lim) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

void json_copy_str(cJSON *dst, const char *name, const cJSON *src, const char *from)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, from);
    if (cJSON_IsString(v))
        cJSON_AddStringToObject(dst, name, v->valuestring);
}
