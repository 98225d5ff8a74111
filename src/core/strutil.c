/* Implementation of strutil.h. */
#include "core/strutil.h"

ssize_t pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' && (flags & PCT_PLUS_SPACE)) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex_val(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_val(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if ((c == '\0' && (flags & PCT_NO_NUL)) || o >= cap)
            return -1;
        out[o++] = c;
    }
    return (ssize_t)o;
}
