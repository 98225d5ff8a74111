/* Request templates and the traffic mix. Each template (method, path,
 * headers, body, priority, weight) is rendered once into the exact bytes
 * of its request, so sending one is a single write of a shared read-only
 * buffer: nothing is formatted on the data path. A request's template is
 * drawn with a 32-bit random number against cumulative weights. */
#include "flood/flood.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum http_method method_of(const char *m)
{
    static const struct {
        const char *name;
        enum http_method m;
    } tab[] = {
        {"GET", HTTP_M_GET},       {"HEAD", HTTP_M_HEAD},       {"POST", HTTP_M_POST},
        {"PUT", HTTP_M_PUT},       {"DELETE", HTTP_M_DELETE},   {"OPTIONS", HTTP_M_OPTIONS},
        {"PATCH", HTTP_M_PATCH},   {"TRACE", HTTP_M_TRACE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
        if (strcmp(m, tab[i].name) == 0)
            return tab[i].m;
    return HTTP_M_OTHER;
}

struct fl_template *fl_mix_add(struct fl_mix *mix, const char *method, const char *path, double weight)
{
    ASSERT(mix->n < FL_MAX_TEMPLATES);
    mix->t = xrealloc(mix->t, (mix->n + 1) * sizeof *mix->t);
    struct fl_template *t = &mix->t[mix->n++];
    memset(t, 0, sizeof *t);
    t->method = xstrdup(method);
    t->path = xstrdup(path);
    t->weight = weight;
    return t;
}

void fl_template_add_header(struct fl_template *t, const char *line)
{
    t->headers = xrealloc(t->headers, (t->nheaders + 1) * sizeof *t->headers);
    t->headers[t->nheaders++] = xstrdup(line);
}

void fl_mix_free(struct fl_mix *mix)
{
    for (size_t i = 0; i < mix->n; i++) {
        struct fl_template *t = &mix->t[i];
        free(t->name);
        free(t->method);
        free(t->path);
        for (size_t j = 0; j < t->nheaders; j++)
            free(t->headers[j]);
        free(t->headers);
        free(t->body);
        free(t->priority);
        buf_free(&t->req);
    }
    free(mix->t);
    memset(mix, 0, sizeof *mix);
}

static bool is_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c && strchr(extra, c))))
            return false;
    }
    return true;
}

static bool is_target(const char *s)
{
    if (s[0] != '/' && strcmp(s, "*") != 0)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int fl_mix_parse(struct fl_mix *mix, const char *spec, char **err)
{
    char *copy = xstrdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *f[4] = {0};
        int nf = 0;
        char *s2 = NULL;
        for (char *x = strtok_r(item, ":", &s2); x && nf < 4; x = strtok_r(NULL, ":", &s2))
            f[nf++] = x;
        char *end;
        errno = 0;
        double wgt = nf >= 1 ? strtod(f[0], &end) : 0;
        if (nf < 3 || errno || *end || !isfinite(wgt) || wgt <= 0) {
            *err = xasprintf("--mix '%s': expected WEIGHT:METHOD:PATH[:PRIORITY] items, e.g. "
                             "80:GET:/products,20:POST:/cart",
                             spec);
            rc = -1;
            break;
        }
        if (mix->n >= FL_MAX_TEMPLATES) {
            *err = xasprintf("--mix: more than %d templates", FL_MAX_TEMPLATES);
            rc = -1;
            break;
        }
        struct fl_template *t = fl_mix_add(mix, f[1], f[2], wgt);
        if (nf == 4)
            t->priority = xstrdup(f[3]);
    }
    free(copy);
    return rc;
}

/* Checks a "Name: value" line. */
static bool header_ok(const char *line)
{
    const char *colon = strchr(line, ':');
    return colon && is_token(line, (size_t)(colon - line)) && !strpbrk(line, "\r\n");
}

static bool names_header(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* Checks template i (1-based in messages) and fills in what the file or
 * flags left out: the method code and the default name. */
static int check_template(struct fl_template *t, size_t i, char **err)
{
    if (!is_token(t->method, strlen(t->method))) {
        *err = xasprintf("template %zu: method '%s' is not a token", i + 1, t->method);
        return -1;
    }
    if (!is_target(t->path)) {
        *err = xasprintf("template %zu: path '%s' must start with '/' and hold no spaces or "
                         "control characters",
                         i + 1, t->path);
        return -1;
    }
    if (!(t->weight > 0) || !isfinite(t->weight)) {
        *err = xasprintf("template %zu: weight must be above 0", i + 1);
        return -1;
    }
    if (t->priority && strpbrk(t->priority, "\r\n")) {
        *err = xasprintf("template %zu: priority holds a line break", i + 1);
        return -1;
    }
    for (size_t j = 0; j < t->nheaders; j++) {
        if (!header_ok(t->headers[j])) {
            *err = xasprintf("template %zu: header '%s': expected 'Name: value' on one line", i + 1,
                             t->headers[j]);
            return -1;
        }
    }
    t->m = method_of(t->method);
    if (!t->name)
        t->name = xasprintf("%s %s", t->method, t->path);
    return 0;
}

/* Renders t's whole request (head and body) into t->req, once, so that
 * sending it is one copy. Host and Content-Length are added unless a
 * header of the template (or, for Host, an extra header) sets them. */
static void render_template(struct fl_template *t, const char *host, char *const *extra, size_t nextra,
                            const char *priority_header, bool close)
{
    bool has_host = false, has_cl = false;
    for (size_t j = 0; j < t->nheaders; j++) {
        has_host |= names_header(t->headers[j], "Host");
        has_cl |= names_header(t->headers[j], "Content-Length");
    }
    for (size_t j = 0; j < nextra; j++)
        has_host |= names_header(extra[j], "Host");
    buf_reset(&t->req);
    buf_printf(&t->req, "%s %s HTTP/1.1\r\n", t->method, t->path);
    if (!has_host)
        buf_printf(&t->req, "Host: %s\r\n", host);
    for (size_t j = 0; j < nextra; j++)
        buf_printf(&t->req, "%s\r\n", extra[j]);
    for (size_t j = 0; j < t->nheaders; j++)
        buf_printf(&t->req, "%s\r\n", t->headers[j]);
    if (priority_header && t->priority)
        buf_printf(&t->req, "%s: %s\r\n", priority_header, t->priority);
    bool body = t->body_len || t->has_body || t->m == HTTP_M_POST || t->m == HTTP_M_PUT || t->m == HTTP_M_PATCH;
    if (body && !has_cl)
        buf_printf(&t->req, "Content-Length: %zu\r\n", t->body_len);
    if (close)
        buf_append_str(&t->req, "Connection: close\r\n");
    buf_append_str(&t->req, "\r\n");
    if (t->body_len)
        buf_append(&t->req, t->body, t->body_len);
}

/* The cumulative weights as fractions of 2^32, the last one exactly
 * UINT32_MAX so that every draw lands on a template. */
static void set_cumulative(struct fl_mix *mix)
{
    double total = 0, acc = 0;
    for (size_t i = 0; i < mix->n; i++)
        total += mix->t[i].weight;
    for (size_t i = 0; i < mix->n; i++) {
        acc += mix->t[i].weight;
        double c = acc / total * 4294967295.0;
        mix->cum[i] = i + 1 == mix->n ? UINT32_MAX : (uint32_t)(c > 4294967295.0 ? 4294967295.0 : c);
    }
}

int fl_mix_prepare(struct fl_mix *mix, const char *host, char *const *extra, size_t nextra,
                   const char *priority_header, bool close, char **err)
{
    if (!mix->n) {
        *err = xstrdup("no request template");
        return -1;
    }
    if (priority_header && (!is_token(priority_header, strlen(priority_header)))) {
        *err = xasprintf("priority header name '%s' is not a valid field name", priority_header);
        return -1;
    }
    for (size_t i = 0; i < nextra; i++) {
        if (!header_ok(extra[i])) {
            *err = xasprintf("header '%s': expected 'Name: value' on one line", extra[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < mix->n; i++) {
        if (check_template(&mix->t[i], i, err) != 0)
            return -1;
        render_template(&mix->t[i], host, extra, nextra, priority_header, close);
    }
    set_cumulative(mix);
    return 0;
}
