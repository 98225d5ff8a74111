/* The --json report: one object, documented in docs/flood.md (schema
 * version 1). Latencies are integers in microseconds; rates are per
 * second of the run's elapsed time. */
#include "flood/flood.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

static double per_sec(uint64_t n, uint64_t ns) { return ns ? (double)n * 1e9 / (double)ns : 0; }

static cJSON *hist_json(const struct fl_hist *h)
{
    static const struct {
        const char *name;
        double p;
    } ps[] = {{"p50", 50}, {"p75", 75}, {"p90", 90}, {"p99", 99}, {"p99_9", 99.9}, {"p99_99", 99.99}};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)h->total);
    cJSON_AddNumberToObject(o, "min", (double)(h->total ? h->min : 0));
    for (size_t i = 0; i < ARRAY_SIZE(ps); i++)
        cJSON_AddNumberToObject(o, ps[i].name, (double)fl_hist_percentile(h, ps[i].p));
    cJSON_AddNumberToObject(o, "max", (double)(h->total ? h->max : 0));
    cJSON_AddNumberToObject(o, "mean", round(fl_hist_mean(h) * 10) / 10);
    cJSON_AddNumberToObject(o, "stdev", round(fl_hist_stdev(h) * 10) / 10);
    return o;
}

static cJSON *classes_json(const uint64_t *cls)
{
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < FL_C_MAX; c++)
        cJSON_AddNumberToObject(o, fl_cls_names[c], (double)cls[c]);
    return o;
}

static cJSON *group_json(const struct fl_config *cfg, const struct fl_result *res, int g)
{
    const struct fl_gstats *s = &res->g[g];
    bool open = g == FL_USERS ? cfg->open : cfg->attacker_rate > 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "connections", cfg->group_conns[g]);
    cJSON_AddStringToObject(o, "mode", open ? "open" : "closed");
    cJSON_AddNumberToObject(o, "sources_used", (double)res->sources_used[g]);
    cJSON_AddNumberToObject(o, "sent", (double)s->sent);
    cJSON_AddNumberToObject(o, "done", (double)s->done);
    cJSON_AddNumberToObject(o, "rps", round(per_sec(s->done, res->elapsed_ns) * 100) / 100);
    cJSON_AddNumberToObject(o, "admitted", (double)s->admitted);
    cJSON_AddNumberToObject(o, "rejected", (double)s->rejected);
    cJSON_AddNumberToObject(o, "errors", (double)s->errors);
    cJSON *ek = cJSON_AddObjectToObject(o, "errors_by_kind");
    for (int e = 0; e < FL_E_MAX; e++)
        cJSON_AddNumberToObject(ek, fl_err_names[e], (double)s->err[e]);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    for (int i = 0; i < FL_NSTATUS; i++) {
        if (s->status[i]) {
            char k[8];
            snprintf(k, sizeof k, "%d", i);
            cJSON_AddNumberToObject(st, k, (double)s->status[i]);
        }
    }
    cJSON_AddNumberToObject(o, "unfinished", (double)s->unfinished);
    cJSON_AddNumberToObject(o, "unsent", (double)s->unsent);
    cJSON_AddNumberToObject(o, "oldest_unsent_us", (double)s->oldest_unsent_us);
    cJSON_AddNumberToObject(o, "bytes_in", (double)s->bytes_in);
    cJSON_AddNumberToObject(o, "bytes_out", (double)s->bytes_out);
    cJSON_AddNumberToObject(o, "connects", (double)s->connects);
    cJSON_AddItemToObject(o, "latency_us", hist_json(&s->lat));
    cJSON_AddItemToObject(o, "rejected_latency_us", hist_json(&s->lat_rej));
    cJSON_AddItemToObject(o, "service_time_us", hist_json(&s->svc));
    return o;
}

/* The run's settings, as the report's "config" object. */
static cJSON *config_json(const struct fl_config *cfg)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "url", cfg->urls[0]);
    cJSON_AddStringToObject(c, "target", cfg->target_str);
    cJSON_AddNumberToObject(c, "connections", cfg->conns);
    cJSON_AddNumberToObject(c, "threads", cfg->threads);
    cJSON_AddNumberToObject(c, "duration_s", (double)cfg->duration_ms / 1e3);
    cJSON_AddNumberToObject(c, "timeout_s", (double)cfg->timeout_ms / 1e3);
    cJSON_AddStringToObject(c, "mode", cfg->open ? "open" : "closed");
    cJSON_AddNumberToObject(c, "rate", cfg->rate);
    if (cfg->open) {
        char prof[512];
        fl_profile_describe(&cfg->profile, prof, sizeof prof);
        cJSON_AddStringToObject(c, "profile", prof);
    } else {
        cJSON_AddNullToObject(c, "profile");
    }
    cJSON_AddBoolToObject(c, "conn_per_request", cfg->conn_per_request);
    cJSON_AddNumberToObject(c, "sources", (double)cfg->sources.total);
    if (cfg->priority_header)
        cJSON_AddStringToObject(c, "priority_header", cfg->priority_header);
    cJSON *tl = cJSON_AddArrayToObject(c, "templates");
    for (size_t i = 0; i < cfg->mix.n; i++) {
        const struct fl_template *t = &cfg->mix.t[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "method", t->method);
        cJSON_AddStringToObject(o, "path", t->path);
        cJSON_AddNumberToObject(o, "weight", t->weight);
        if (t->priority)
            cJSON_AddStringToObject(o, "priority", t->priority);
        cJSON_AddItemToArray(tl, o);
    }
    if (cfg->group_conns[FL_ATTACKERS]) {
        cJSON *a = cJSON_AddObjectToObject(c, "attacker");
        cJSON_AddNumberToObject(a, "share", cfg->attacker_share);
        cJSON_AddNumberToObject(a, "connections", cfg->group_conns[FL_ATTACKERS]);
        cJSON_AddNumberToObject(a, "sources", (double)cfg->attacker_sources.total);
        cJSON_AddNumberToObject(a, "rate", cfg->attacker_rate);
    }
    return c;
}

/* Per-template results of each group that ran, as the "templates" array. */
static cJSON *templates_json(const struct fl_config *cfg, const struct fl_result *res)
{
    cJSON *ta = cJSON_CreateArray();
    for (int g = 0; g < FL_NGROUPS; g++) {
        if (!cfg->group_conns[g])
            continue;
        for (size_t i = 0; i < cfg->mix.n; i++) {
            const struct fl_tstats *t = &res->t[g * cfg->mix.n + i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", cfg->mix.t[i].name);
            cJSON_AddStringToObject(o, "group", g == FL_USERS ? "users" : "attackers");
            cJSON_AddNumberToObject(o, "done", (double)t->done);
            cJSON_AddNumberToObject(o, "admitted", (double)t->admitted);
            cJSON_AddNumberToObject(o, "rejected", (double)t->rejected);
            cJSON_AddNumberToObject(o, "errors", (double)t->errors);
            cJSON_AddItemToObject(o, "classes", classes_json(t->cls));
            cJSON_AddItemToObject(o, "latency_us", hist_json(&t->lat));
            cJSON_AddItemToArray(ta, o);
        }
    }
    return ta;
}

/* One point a second, as the "series" array. */
static cJSON *series_json(const struct fl_result *res)
{
    cJSON *series = cJSON_CreateArray();
    for (size_t s = 0; s < res->npts; s++) {
        const struct fl_point *p = &res->pts[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "t", (double)s);
        cJSON_AddNumberToObject(o, "sent", (double)p->sent[FL_USERS]);
        cJSON_AddNumberToObject(o, "done", (double)p->done[FL_USERS]);
        cJSON_AddNumberToObject(o, "target", round(p->target * 100) / 100);
        cJSON_AddItemToObject(o, "classes", classes_json(p->cls));
        cJSON *l = cJSON_AddObjectToObject(o, "latency_us");
        cJSON_AddNumberToObject(l, "p50", (double)p->p50);
        cJSON_AddNumberToObject(l, "p90", (double)p->p90);
        cJSON_AddNumberToObject(l, "p99", (double)p->p99);
        cJSON_AddNumberToObject(l, "p99_9", (double)p->p999);
        cJSON_AddNumberToObject(l, "max", (double)p->max);
        cJSON_AddNumberToObject(o, "attacker_sent", (double)p->sent[FL_ATTACKERS]);
        cJSON_AddNumberToObject(o, "attacker_done", (double)p->done[FL_ATTACKERS]);
        cJSON_AddItemToObject(o, "attacker_classes", classes_json(p->atk_cls));
        cJSON_AddNumberToObject(o, "bytes_in", (double)p->bytes_in);
        cJSON_AddItemToArray(series, o);
    }
    return series;
}

int fl_report_json(FILE *f, const struct fl_config *cfg, const struct fl_result *res)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddItemToObject(root, "config", config_json(cfg));
    const struct fl_gstats *u = &res->g[FL_USERS], *at = &res->g[FL_ATTACKERS];
    cJSON_AddNumberToObject(root, "elapsed_s", round((double)res->elapsed_ns / 1e6) / 1e3);
    cJSON_AddBoolToObject(root, "interrupted", res->interrupted);
    cJSON_AddNumberToObject(root, "requests", (double)(u->done + at->done));
    cJSON_AddNumberToObject(root, "rps", round(per_sec(u->done + at->done, res->elapsed_ns) * 100) / 100);
    cJSON_AddNumberToObject(root, "errors", (double)(u->errors + at->errors));
    cJSON_AddNumberToObject(root, "bytes_in", (double)(u->bytes_in + at->bytes_in));
    cJSON_AddItemToObject(root, "users", group_json(cfg, res, FL_USERS));
    if (cfg->group_conns[FL_ATTACKERS])
        cJSON_AddItemToObject(root, "attackers", group_json(cfg, res, FL_ATTACKERS));
    else
        cJSON_AddNullToObject(root, "attackers");
    cJSON_AddItemToObject(root, "templates", templates_json(cfg, res));
    cJSON_AddItemToObject(root, "series", series_json(res));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    int rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
    free(text);
    return rc;
}
