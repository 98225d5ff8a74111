/* The --html report: one self-contained file that any browser shows
 * offline. Inline CSS and inline SVG drawn here, no script, no external
 * font or image. Three charts over the run's seconds: throughput (with
 * the open-loop target and the attackers), latency percentiles on a log
 * scale (p50, p90, p99, max of the users' admitted responses), and the
 * status mix as stacked bars; then the summary tables. */
#include "flood/flood.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 1000          /* chart width */
#define H 300           /* chart height */
#define ML 80           /* plot margins */
#define MR 20
#define MT 36
#define MB 44
#define PW (W - ML - MR)
#define PH (H - MT - MB)

static const char *const cls_colors[FL_C_MAX] = {
    "#94a3b8", /* 1xx */
    "#16a34a", /* 2xx */
    "#0ea5e9", /* 3xx */
    "#eab308", /* 4xx */
    "#f97316", /* 429 */
    "#dc2626", /* 5xx */
    "#9333ea", /* 503 */
    "#111827", /* errors */
};

static void esc(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_append_str(b, "&lt;"); break;
        case '>': buf_append_str(b, "&gt;"); break;
        case '&': buf_append_str(b, "&amp;"); break;
        case '"': buf_append_str(b, "&quot;"); break;
        default: buf_append(b, s, 1);
        }
    }
}

/* A "nice" step (1, 2 or 5 times a power of ten) giving about n ticks. */
static double nice_step(double range, int n)
{
    if (range <= 0)
        return 1;
    double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void fmt_num(double v, char *out, size_t n)
{
    if (v >= 1e6)
        snprintf(out, n, "%.3gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, n, "%.3gk", v / 1e3);
    else
        snprintf(out, n, "%.3g", v);
}

static double xpos(size_t i, size_t n) { return ML + (n > 1 ? (double)i * PW / (double)(n - 1) : PW / 2.0); }

/* Frame: title, x axis in seconds, legend entries (name, color). */
static void chart_open(struct buf *b, const char *id, const char *title, size_t n, const char *const *names,
                       const char *const *colors, size_t nlegend)
{
    buf_printf(b, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n",
               id, W, H, W, H, title);
    buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
    buf_printf(b, "<text x=\"%d\" y=\"20\" class=\"title\">%s</text>\n", ML, title);
    double lx = W - MR;
    for (size_t i = nlegend; i-- > 0;) {
        lx -= 12 + 8 * (double)strlen(names[i]) + 18;
        buf_printf(b, "<rect x=\"%.0f\" y=\"10\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                      "<text x=\"%.0f\" y=\"21\" class=\"legend\">%s</text>\n",
                   lx, colors[i], lx + 16, names[i]);
    }
    buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f8fafc\" stroke=\"#cbd5e1\"/>\n", ML,
               MT, PW, PH);
    size_t step = (size_t)nice_step((double)(n ? n - 1 : 1), 10);
    if (step < 1)
        step = 1;
    for (size_t i = 0; i < n; i += step) {
        double x = xpos(i, n);
        buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e2e8f0\"/>"
                      "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%zus</text>\n",
                   x, MT, x, MT + PH, x, MT + PH + 16, i);
    }
    buf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">time since the start</text>\n",
               ML + PW / 2, H - 6);
}

/* Draws the grid of a linear axis from 0 to 10% above max (at least 1,
 * so an empty chart still has a scale) and returns that top. */
static double y_grid_linear(struct buf *b, double max)
{
    double ymax = fmax(max, 1) * 1.1;
    double step = nice_step(ymax, 5);
    for (double v = 0; v <= ymax * 1.0001; v += step) {
        double y = MT + PH - v / ymax * PH;
        char t[32];
        fmt_num(v, t, sizeof t);
        buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e2e8f0\"/>"
                      "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                   ML, y, ML + PW, y, ML - 6, y + 4, t);
    }
    return ymax;
}

static void polyline(struct buf *b, const double *ys, size_t n, const char *color, bool dashed, double width)
{
    if (!n)
        return;
    buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s points=\"", color, width,
               dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%.1f,%.1f ", xpos(i, n), ys[i]);
    buf_append_str(b, "\"/>\n");
}

/* The body of a chart without data, and the chart's end. */
static void no_data(struct buf *b)
{
    buf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"legend\" text-anchor=\"middle\">no complete second of "
                  "data</text>\n</svg>\n",
               ML + PW / 2, MT + PH / 2);
}

static void chart_throughput(struct buf *b, const struct fl_config *cfg, const struct fl_result *res)
{
    size_t n = res->npts;
    bool atk = cfg->group_conns[FL_ATTACKERS] > 0;
    const char *names[4] = {"responses/s", "rejected/s", "errors/s", NULL};
    const char *colors[4] = {"#2563eb", "#f97316", "#111827", NULL};
    size_t nl = 3;
    if (cfg->open) {
        names[nl] = "target/s";
        colors[nl++] = "#64748b";
    }
    if (atk && nl < 4) {
        names[nl] = "attackers/s";
        colors[nl++] = "#db2777";
    }
    chart_open(b, "throughput", "Throughput (users' responses per second)", n, names, colors, nl);
    if (!n) {
        no_data(b);
        return;
    }
    double top = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fl_point *p = &res->pts[i];
        top = fmax(top, (double)p->done[FL_USERS]);
        top = fmax(top, p->target);
        if (atk)
            top = fmax(top, (double)p->done[FL_ATTACKERS]);
    }
    double ymax = y_grid_linear(b, top);
    double *ys = xcalloc(n, sizeof *ys);
#define SERIES(expr, color, dashed)                                    \
    do {                                                               \
        for (size_t i = 0; i < n; i++) {                               \
            const struct fl_point *p = &res->pts[i];                   \
            ys[i] = MT + PH - (double)(expr) / ymax * PH;              \
            (void)p;                                                   \
        }                                                              \
        polyline(b, ys, n, color, dashed, 2);                          \
    } while (0)
    if (atk)
        SERIES(p->done[FL_ATTACKERS], "#db2777", false);
    SERIES(p->cls[FL_C_ERR], "#111827", false);
    SERIES(p->cls[FL_C_429] + p->cls[FL_C_503], "#f97316", false);
    SERIES(p->done[FL_USERS], "#2563eb", false);
    if (cfg->open) /* last and dashed: visible where the rate meets it */
        SERIES(p->target, "#64748b", true);
#undef SERIES
    free(ys);
    buf_append_str(b, "</svg>\n");
}

static void chart_latency(struct buf *b, const struct fl_result *res)
{
    size_t n = res->npts;
    const char *names[] = {"p50", "p90", "p99", "max"};
    const char *colors[] = {"#16a34a", "#2563eb", "#ea580c", "#dc2626"};
    chart_open(b, "latency", "Latency of admitted responses (users, log scale)", n, names, colors, 4);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fl_point *p = &res->pts[i];
        if (p->p50 && p->p50 < lo)
            lo = p->p50;
        if (p->max > hi)
            hi = p->max;
    }
    if (!n || !hi) {
        no_data(b);
        return;
    }
    if (lo == UINT64_MAX || lo < 1)
        lo = 1;
    double l0 = floor(log10((double)lo)), l1 = ceil(log10((double)hi));
    if (l1 <= l0)
        l1 = l0 + 1;
    for (double e = l0; e <= l1 + 1e-9; e += 1) {
        double y = MT + PH - (e - l0) / (l1 - l0) * PH;
        char t[32];
        fl_fmt_us((uint64_t)llround(pow(10, e)), t, sizeof t);
        buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e2e8f0\"/>"
                      "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                   ML, y, ML + PW, y, ML - 6, y + 4, t);
    }
    double *ys = xcalloc(n, sizeof *ys);
    for (int k = 3; k >= 0; k--) {
        for (size_t i = 0; i < n; i++) {
            const struct fl_point *p = &res->pts[i];
            uint64_t v = k == 0 ? p->p50 : k == 1 ? p->p90 : k == 2 ? p->p99 : p->max;
            double lv = v ? log10((double)v) : l0;
            if (lv < l0)
                lv = l0;
            ys[i] = MT + PH - (lv - l0) / (l1 - l0) * PH;
        }
        polyline(b, ys, n, colors[k], false, k == 3 ? 1.5 : 2);
    }
    free(ys);
    buf_append_str(b, "</svg>\n");
}

static void chart_status(struct buf *b, const struct fl_result *res)
{
    size_t n = res->npts;
    const char *names[FL_C_MAX];
    const char *colors[FL_C_MAX];
    size_t nl = 0;
    for (int c = 0; c < FL_C_MAX; c++) {
        uint64_t any = 0;
        for (size_t i = 0; i < n; i++)
            any += res->pts[i].cls[c];
        if (any || c == FL_C_2XX) {
            names[nl] = fl_cls_names[c];
            colors[nl++] = cls_colors[c];
        }
    }
    chart_open(b, "status", "Status mix per second (users)", n, names, colors, nl);
    if (!n) {
        no_data(b);
        return;
    }
    double top = 0;
    for (size_t i = 0; i < n; i++) {
        double t = 0;
        for (int c = 0; c < FL_C_MAX; c++)
            t += (double)res->pts[i].cls[c];
        top = fmax(top, t);
    }
    double ymax = y_grid_linear(b, top);
    double bw = (double)PW / (double)n * 0.8;
    if (bw < 1)
        bw = 1;
    for (size_t i = 0; i < n; i++) {
        double x = n > 1 ? xpos(i, n) - bw / 2 : ML + PW / 2.0 - bw / 2, y = MT + PH;
        if (x < ML)
            x = ML;
        if (x + bw > ML + PW)
            x = ML + PW - bw;
        for (int c = 0; c < FL_C_MAX; c++) {
            double h = (double)res->pts[i].cls[c] / ymax * PH;
            if (h <= 0)
                continue;
            y -= h;
            buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, y, bw, h,
                       cls_colors[c]);
        }
    }
    buf_append_str(b, "</svg>\n");
}

static void td_us(struct buf *b, uint64_t us)
{
    char t[32];
    fl_fmt_us(us, t, sizeof t);
    buf_printf(b, "<td>%s</td>", t);
}

static void pct_tr(struct buf *b, const char *label, const struct fl_hist *h)
{
    static const double ps[] = {50, 75, 90, 99, 99.9, 99.99};
    buf_printf(b, "<tr><th>%s</th><td>%llu</td>", label, (unsigned long long)h->total);
    for (size_t i = 0; i < ARRAY_SIZE(ps); i++)
        td_us(b, fl_hist_percentile(h, ps[i]));
    td_us(b, h->total ? h->max : 0);
    td_us(b, (uint64_t)llround(fl_hist_mean(h)));
    buf_append_str(b, "</tr>\n");
}

static void group_html(struct buf *b, const struct fl_config *cfg, const struct fl_result *res, int g)
{
    const struct fl_gstats *s = &res->g[g];
    bool open = g == FL_USERS ? cfg->open : cfg->attacker_rate > 0;
    double secs = (double)res->elapsed_ns / 1e9;
    buf_printf(b, "<h2>%s</h2>\n<table class=\"kv\">\n", g == FL_USERS ? "Users" : "Attackers");
    buf_printf(b, "<tr><th>connections</th><td>%d, %s loop", cfg->group_conns[g], open ? "open" : "closed");
    if (res->sources_used[g])
        buf_printf(b, ", %llu source addresses", (unsigned long long)res->sources_used[g]);
    buf_append_str(b, "</td></tr>\n");
    buf_printf(b, "<tr><th>responses</th><td>%llu (%.1f/s); sent %llu</td></tr>\n", (unsigned long long)s->done,
               secs > 0 ? (double)s->done / secs : 0, (unsigned long long)s->sent);
    buf_printf(b, "<tr><th>admitted</th><td>%llu</td></tr>\n<tr><th>rejected</th><td>%llu (429: %llu, 503: "
                  "%llu)</td></tr>\n",
               (unsigned long long)s->admitted, (unsigned long long)s->rejected,
               (unsigned long long)s->status[429], (unsigned long long)s->status[503]);
    buf_append_str(b, "<tr><th>status codes</th><td>");
    for (int i = 0; i < FL_NSTATUS; i++)
        if (s->status[i])
            buf_printf(b, "%d: %llu &nbsp; ", i, (unsigned long long)s->status[i]);
    buf_append_str(b, "</td></tr>\n<tr><th>errors</th><td>");
    if (!s->errors)
        buf_append_str(b, "none");
    for (int e = 0; e < FL_E_MAX; e++)
        if (s->err[e])
            buf_printf(b, "%s: %llu &nbsp; ", fl_err_names[e], (unsigned long long)s->err[e]);
    buf_append_str(b, "</td></tr>\n");
    if (s->unfinished || s->unsent) {
        char t[32];
        fl_fmt_us(s->oldest_unsent_us, t, sizeof t);
        buf_printf(b, "<tr><th>at the end</th><td>%llu in flight; %llu due but never sent (oldest waited "
                      "%s)</td></tr>\n",
                   (unsigned long long)s->unfinished, (unsigned long long)s->unsent, t);
    }
    buf_append_str(b, "</table>\n");
    buf_printf(b, "<p class=\"note\">Latency is measured from %s.</p>\n",
               open ? "each request's intended send time (queueing in the generator counts)"
                    : "each request's write");
    buf_append_str(b, "<table class=\"grid\"><tr><th></th><th>count</th><th>p50</th><th>p75</th><th>p90</th>"
                      "<th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>mean</th></tr>\n");
    pct_tr(b, "admitted", &s->lat);
    if (s->rejected)
        pct_tr(b, "rejected", &s->lat_rej);
    if (open)
        pct_tr(b, "service time", &s->svc);
    buf_append_str(b, "</table>\n");
}

int fl_report_html(FILE *f, const struct fl_config *cfg, const struct fl_result *res)
{
    struct buf b;
    buf_init(&b);
    const struct fl_gstats *u = &res->g[FL_USERS], *a = &res->g[FL_ATTACKERS];
    double secs = (double)res->elapsed_ns / 1e9;
    buf_append_str(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>flood report: ");
    esc(&b, cfg->urls[0]);
    buf_append_str(&b,
                   "</title>\n<style>\n"
                   "body{font-family:sans-serif;margin:24px;color:#0f172a;background:#ffffff;max-width:1040px}\n"
                   "h1{font-size:22px}h2{font-size:18px;margin-top:28px}\n"
                   ".chart{display:block;margin:12px 0;border:1px solid #e2e8f0}\n"
                   ".title{font-size:15px;font-weight:bold;fill:#0f172a}\n"
                   ".legend{font-size:13px;fill:#334155}.tick{font-size:11px;fill:#475569}\n"
                   "table{border-collapse:collapse;margin:8px 0}\n"
                   "td,th{padding:4px 10px;border:1px solid #e2e8f0;text-align:right;font-size:13px}\n"
                   "th{background:#f1f5f9}table.kv th{text-align:left}table.kv td{text-align:left}\n"
                   ".note{color:#475569;font-size:13px}\n"
                   "</style></head><body>\n<h1>flood report</h1>\n<table class=\"kv\">\n<tr><th>target</th><td>");
    esc(&b, cfg->urls[0]);
    buf_printf(&b, "</td></tr>\n<tr><th>mode</th><td>%s loop", cfg->open ? "open" : "closed");
    if (cfg->open) {
        char prof[512];
        fl_profile_describe(&cfg->profile, prof, sizeof prof);
        buf_append_str(&b, ", ");
        esc(&b, prof);
    }
    buf_printf(&b, "</td></tr>\n<tr><th>threads, connections</th><td>%d, %d%s</td></tr>\n", cfg->threads, cfg->conns,
               cfg->conn_per_request ? " (a new connection per request)" : "");
    buf_printf(&b, "<tr><th>duration</th><td>%.2fs%s</td></tr>\n", secs, res->interrupted ? " (interrupted)" : "");
    buf_printf(&b, "<tr><th>requests</th><td>%llu (%.1f/s)</td></tr>\n", (unsigned long long)(u->done + a->done),
               secs > 0 ? (double)(u->done + a->done) / secs : 0);
    buf_printf(&b, "<tr><th>errors</th><td>%llu</td></tr>\n</table>\n", (unsigned long long)(u->errors + a->errors));

    chart_throughput(&b, cfg, res);
    chart_latency(&b, res);
    chart_status(&b, res);

    group_html(&b, cfg, res, FL_USERS);
    if (cfg->group_conns[FL_ATTACKERS])
        group_html(&b, cfg, res, FL_ATTACKERS);

    buf_append_str(&b, "<h2>Templates</h2>\n<table class=\"grid\"><tr><th>name</th><th>group</th><th>weight</th>"
                       "<th>responses</th><th>admitted</th><th>rejected</th><th>errors</th><th>p50</th><th>p99</th>"
                       "<th>max</th></tr>\n");
    for (int g = 0; g < FL_NGROUPS; g++) {
        if (!cfg->group_conns[g])
            continue;
        for (size_t i = 0; i < cfg->mix.n; i++) {
            const struct fl_tstats *t = &res->t[g * cfg->mix.n + i];
            buf_append_str(&b, "<tr><th>");
            esc(&b, cfg->mix.t[i].name);
            buf_printf(&b, "</th><td>%s</td><td>%g</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>",
                       g == FL_USERS ? "users" : "attackers", cfg->mix.t[i].weight, (unsigned long long)t->done,
                       (unsigned long long)t->admitted, (unsigned long long)t->rejected,
                       (unsigned long long)t->errors);
            td_us(&b, fl_hist_percentile(&t->lat, 50));
            td_us(&b, fl_hist_percentile(&t->lat, 99));
            td_us(&b, t->lat.total ? t->lat.max : 0);
            buf_append_str(&b, "</tr>\n");
        }
    }
    buf_append_str(&b, "</table>\n<p class=\"note\">Percentiles come from HDR histograms: whole-run values are "
                       "within 0.1% of the exact value, per-template and per-second ones within 0.8%.</p>\n"
                       "</body></html>\n");
    size_t len = buf_len(&b);
    int rc = fwrite(buf_rptr(&b), 1, len, f) == len ? 0 : -1;
    buf_free(&b);
    return rc;
}
