/* The terminal summary. It starts with the lines wrk prints (so scripts
 * that read "N requests in T" and "Requests/sec:" keep working), then
 * tells more: each group's status codes, admitted versus rejected, errors
 * by kind, latency percentiles from the HDR histograms (and, in open
 * loop, the service time beside the latency, which is the difference
 * coordinated omission would hide), requests still in flight or never
 * sent at the end, each template, and a per-second table. */
#include "flood/flood.h"

#include <math.h>
#include <string.h>

void fl_fmt_us(uint64_t us, char *out, size_t outlen)
{
    if (us < 1000)
        snprintf(out, outlen, "%luus", (unsigned long)us);
    else if (us < 1000000)
        snprintf(out, outlen, "%.2fms", (double)us / 1e3);
    else
        snprintf(out, outlen, "%.2fs", (double)us / 1e6);
}

static void fmt_bytes(double b, char *out, size_t outlen)
{
    static const char *const u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, outlen, "%.2f%s", b, u[i]);
}

static double per_sec(uint64_t n, uint64_t ns) { return ns ? (double)n * 1e9 / (double)ns : 0; }

static void pct_row(FILE *f, const char *label, const struct fl_hist *h)
{
    static const double ps[] = {50, 75, 90, 99, 99.9, 99.99};
    char v[32];
    fprintf(f, "    %-9s", label);
    if (!h->total) {
        fprintf(f, " (none)\n");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ps); i++) {
        fl_fmt_us(fl_hist_percentile(h, ps[i]), v, sizeof v);
        fprintf(f, " %9s", v);
    }
    fl_fmt_us(h->max, v, sizeof v);
    fprintf(f, " %9s", v);
    fl_fmt_us((uint64_t)llround(fl_hist_mean(h)), v, sizeof v);
    fprintf(f, " %9s", v);
    fl_fmt_us((uint64_t)llround(fl_hist_stdev(h)), v, sizeof v);
    fprintf(f, " %9s\n", v);
}

static void group_text(FILE *f, const struct fl_config *cfg, const struct fl_result *res, int g)
{
    const struct fl_gstats *s = &res->g[g];
    bool open = g == FL_USERS ? cfg->open : cfg->attacker_rate > 0;
    char mode[160];
    if (g == FL_USERS && open) {
        char prof[128];
        fl_profile_describe(&cfg->profile, prof, sizeof prof);
        snprintf(mode, sizeof mode, "open loop, %s", prof);
    } else if (open) {
        snprintf(mode, sizeof mode, "open loop, %.0f/s", cfg->attacker_rate);
    } else {
        snprintf(mode, sizeof mode, "closed loop");
    }
    fprintf(f, "\n%s: %d connections, %s", g == FL_USERS ? "Users" : "Attackers", cfg->group_conns[g], mode);
    if (res->sources_used[g])
        fprintf(f, ", %llu source addresses", (unsigned long long)res->sources_used[g]);
    fprintf(f, "\n");
    fprintf(f, "  responses  %llu (%.1f/s), sent %llu\n", (unsigned long long)s->done,
            per_sec(s->done, res->elapsed_ns), (unsigned long long)s->sent);
    double pa = s->done ? 100.0 * (double)s->admitted / (double)s->done : 0;
    fprintf(f, "  admitted   %llu (%.1f%%)   rejected %llu (429: %llu, 503: %llu)\n",
            (unsigned long long)s->admitted, pa, (unsigned long long)s->rejected,
            (unsigned long long)s->status[429], (unsigned long long)s->status[503]);
    fprintf(f, "  status    ");
    bool any = false;
    for (int i = 0; i < FL_NSTATUS; i++) {
        if (s->status[i]) {
            fprintf(f, " %d: %llu", i, (unsigned long long)s->status[i]);
            any = true;
        }
    }
    fprintf(f, "%s\n", any ? "" : " (none)");
    fprintf(f, "  errors    ");
    if (!s->errors) {
        fprintf(f, " none\n");
    } else {
        for (int e = 0; e < FL_E_MAX; e++)
            if (s->err[e])
                fprintf(f, " %s: %llu", fl_err_names[e], (unsigned long long)s->err[e]);
        fprintf(f, "\n");
    }
    fprintf(f, "  latency, %s:\n", open ? "from the intended send time" : "from the request's write");
    fprintf(f, "    %-9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "", "p50", "p75", "p90", "p99", "p99.9",
            "p99.99", "max", "mean", "stdev");
    pct_row(f, "admitted", &s->lat);
    if (s->rejected)
        pct_row(f, "rejected", &s->lat_rej);
    if (open)
        pct_row(f, "service", &s->svc);
    if (s->unfinished || s->unsent) {
        char old[32];
        fl_fmt_us(s->oldest_unsent_us, old, sizeof old);
        fprintf(f, "  at the end: %llu in flight", (unsigned long long)s->unfinished);
        if (open)
            fprintf(f, ", %llu due but never sent (the oldest waited %s)", (unsigned long long)s->unsent, old);
        fprintf(f, "\n");
    }
}

void fl_report_text(FILE *f, const struct fl_config *cfg, const struct fl_result *res)
{
    const struct fl_gstats *u = &res->g[FL_USERS], *a = &res->g[FL_ATTACKERS];
    uint64_t done = u->done + a->done, bytes = u->bytes_in + a->bytes_in;
    double secs = (double)res->elapsed_ns / 1e9;
    char b[32];
    fprintf(f, "flood %s @ %s%s\n", cfg->open ? "open loop" : "closed loop", cfg->urls[0],
            res->interrupted ? " (interrupted)" : "");
    fprintf(f, "  %d threads and %d connections", cfg->threads, cfg->conns);
    if (cfg->conn_per_request)
        fprintf(f, ", a new connection per request");
    fprintf(f, "\n");
    fmt_bytes((double)bytes, b, sizeof b);
    fprintf(f, "  %llu requests in %.2fs, %s read\n", (unsigned long long)done, secs, b);
    if (u->errors + a->errors) {
        fprintf(f, "  Socket errors: connect %llu, read %llu, write %llu, timeout %llu\n",
                (unsigned long long)(u->err[FL_E_CONNECT] + a->err[FL_E_CONNECT]),
                (unsigned long long)(u->err[FL_E_READ] + u->err[FL_E_CLOSED] + a->err[FL_E_READ] +
                                     a->err[FL_E_CLOSED]),
                (unsigned long long)(u->err[FL_E_WRITE] + a->err[FL_E_WRITE]),
                (unsigned long long)(u->err[FL_E_TIMEOUT] + a->err[FL_E_TIMEOUT]));
    }
    fprintf(f, "Requests/sec: %10.2f\n", per_sec(done, res->elapsed_ns));
    fmt_bytes(per_sec(bytes, res->elapsed_ns), b, sizeof b);
    fprintf(f, "Transfer/sec: %10s\n", b);

    group_text(f, cfg, res, FL_USERS);
    if (cfg->group_conns[FL_ATTACKERS])
        group_text(f, cfg, res, FL_ATTACKERS);

    if (cfg->mix.n > 1 || cfg->group_conns[FL_ATTACKERS]) {
        fprintf(f, "\nTemplates:\n  %-24s %-9s %6s %10s %9s %9s %7s %9s %9s %9s\n", "name", "group", "weight",
                "responses", "admitted", "rejected", "errors", "p50", "p99", "max");
        double wsum = 0;
        for (size_t i = 0; i < cfg->mix.n; i++)
            wsum += cfg->mix.t[i].weight;
        for (int g = 0; g < FL_NGROUPS; g++) {
            if (!cfg->group_conns[g])
                continue;
            for (size_t i = 0; i < cfg->mix.n; i++) {
                const struct fl_tstats *t = &res->t[g * cfg->mix.n + i];
                char p50[32], p99[32], mx[32];
                fl_fmt_us(fl_hist_percentile(&t->lat, 50), p50, sizeof p50);
                fl_fmt_us(fl_hist_percentile(&t->lat, 99), p99, sizeof p99);
                fl_fmt_us(t->lat.total ? t->lat.max : 0, mx, sizeof mx);
                fprintf(f, "  %-24.24s %-9s %5.1f%% %10llu %9llu %9llu %7llu %9s %9s %9s\n", cfg->mix.t[i].name,
                        g == FL_USERS ? "users" : "attackers", 100 * cfg->mix.t[i].weight / wsum,
                        (unsigned long long)t->done, (unsigned long long)t->admitted,
                        (unsigned long long)t->rejected, (unsigned long long)t->errors, p50, p99, mx);
            }
        }
    }

    if (res->npts) {
        size_t step = res->npts <= 60 ? 1 : (res->npts + 59) / 60;
        fprintf(f, "\nPer second (users%s):\n  %5s %9s %9s %8s %8s %8s %8s %8s %8s %9s %9s %9s\n",
                step > 1 ? ", every few seconds" : "", "t", "sent", "done", "2xx", "4xx", "429", "5xx", "503",
                "errors", "p50", "p99", "max");
        for (size_t s = 0; s < res->npts; s += step) {
            const struct fl_point *p = &res->pts[s];
            char p50[32], p99[32], mx[32];
            fl_fmt_us(p->p50, p50, sizeof p50);
            fl_fmt_us(p->p99, p99, sizeof p99);
            fl_fmt_us(p->max, mx, sizeof mx);
            fprintf(f, "  %4zus %9llu %9llu %8llu %8llu %8llu %8llu %8llu %8llu %9s %9s %9s\n", s,
                    (unsigned long long)p->sent[FL_USERS], (unsigned long long)p->done[FL_USERS],
                    (unsigned long long)p->cls[FL_C_2XX], (unsigned long long)p->cls[FL_C_4XX],
                    (unsigned long long)p->cls[FL_C_429], (unsigned long long)p->cls[FL_C_5XX],
                    (unsigned long long)p->cls[FL_C_503], (unsigned long long)p->cls[FL_C_ERR], p50, p99, mx);
        }
    }
}
