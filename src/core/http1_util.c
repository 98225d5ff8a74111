/* Small HTTP/1 helpers beside the parsers, declared in http1.h: header
 * lookups (by name, hop-by-hop names, Connection tokens), reason phrases,
 * the status and text of a parse error, and the IMF-fixdate of Date. */
#include "core/http1.h"
#include "core/http1_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct http_header *http_find_header(const struct http_header *h, size_t n,
                                           const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == len && strncasecmp(h[i].name, name, len) == 0)
            return &h[i];
    return NULL;
}

bool http_is_hop_by_hop(const char *name, size_t len)
{
    switch (len) {
    case 2:
        return fg_strieq(name, len, "te");
    case 7:
        return fg_strieq(name, len, "trailer") || fg_strieq(name, len, "upgrade");
    case 10:
        return fg_strieq(name, len, "connection") || fg_strieq(name, len, "keep-alive");
    case 16:
        return fg_strieq(name, len, "proxy-connection");
    case 17:
        return fg_strieq(name, len, "transfer-encoding");
    }
    return false;
}

bool http_connection_has(const struct http_header *h, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (!fg_strieq(h[i].name, h[i].name_len, "connection"))
            continue;
        const char *p = h[i].value, *e = h[i].value + h[i].value_len;
        while (p < e) {
            while (p < e && (IS(*p, CC_WS) || *p == ','))
                p++;
            const char *t = p;
            while (p < e && *p != ',')
                p++;
            const char *te = p;
            while (te > t && IS(te[-1], CC_WS))
                te--;
            if ((size_t)(te - t) == len && len && strncasecmp(t, name, len) == 0)
                return true;
        }
    }
    return false;
}

const char *http_reason(int status)
{
    /* clang-format off */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    }
    /* clang-format on */
    return "Unknown";
}

int http_error_status(int rc)
{
    switch (rc) {
    case HTTP_ETOOBIG:
        return 431;
    case HTTP_EVERSION:
        return 505;
    case HTTP_ETE:
        return 501;
    default:
        return 400;
    }
}

const char *http_error_text(int rc)
{
    switch (rc) {
    case HTTP_ETOOBIG:
        return "request header fields too large";
    case HTTP_EVERSION:
        return "HTTP version not supported";
    case HTTP_ETE:
        return "transfer coding not implemented";
    default:
        return "malformed request";
    }
}

size_t http_date(char *out, time_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return 0;
    }
    int n = snprintf(out, HTTP_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    return n < 0 ? 0 : FG_MIN((size_t)n, (size_t)HTTP_DATE_SIZE - 1);
}
