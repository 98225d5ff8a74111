/* Rate profiles and the open-loop schedule.
 *
 * A profile is a list of stages, each a rate that holds or moves linearly
 * over a duration; after the last stage its final rate holds. The number
 * of requests the profile has asked for by time t is the integral of the
 * rate, a piecewise quadratic N(t). A schedule with share f and phase ph
 * makes its k-th request due at the time t where f * N(t) = k + ph: the
 * inverse is solved stage by stage, in closed form, so intended send
 * times are exact whatever the profile and never drift over a long run.
 * Splitting one profile over T threads with share 1/T and phases i/T
 * interleaves their requests into one evenly spaced sequence. */
#include "flood/flood.h"

#include "core/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"constant", "ramp", "step", "spike"};

const char *fl_profile_kind_name(enum fl_profile_kind k) { return kind_names[k]; }

void fl_profile_free(struct fl_profile *p)
{
    free(p->stages);
    p->stages = NULL;
    p->n = 0;
}

void fl_profile_constant(struct fl_profile *p, double rate)
{
    fl_profile_free(p);
    p->kind = FL_PROF_CONSTANT;
    p->stages = xcalloc(1, sizeof *p->stages);
    p->stages[0].from = p->stages[0].to = rate;
    p->stages[0].dur_ns = 0;
    p->n = 1;
}

/* Parses a LEVEL at *s ("2x", "0.5x", "300/s"), advancing *s. */
static int parse_level(const char **s, double base, double *out, const char *spec, char **err)
{
    const char *p = *s;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !isfinite(v) || v < 0 || *p == '+' || *p == '-') {
        *err = xasprintf("profile '%s': expected a level like 2x or 500/s at '%s'", spec, p);
        return -1;
    }
    if (*end == 'x') {
        if (base <= 0) {
            *err = xasprintf("profile '%s': a level in x is a multiple of --rate, which is not set", spec);
            return -1;
        }
        v *= base;
        end++;
    } else if (end[0] == '/' && end[1] == 's') {
        end += 2;
    } else {
        *err = xasprintf("profile '%s': level '%.*s' needs a unit: x (times --rate) or /s", spec,
                         (int)(end - p), p);
        return -1;
    }
    if (v > FL_MAX_RATE) {
        *err = xasprintf("profile '%s': rate %.0f/s is over the limit of %.0f/s", spec, v, FL_MAX_RATE);
        return -1;
    }
    *out = v;
    *s = end;
    return 0;
}

/* The kind named before the first ':' of spec, or -1 after setting *err. */
static int parse_kind(const char *spec, const char *colon, char **err)
{
    size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
    int kind = -1;
    for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
        if (strlen(kind_names[i]) == klen && strncmp(spec, kind_names[i], klen) == 0)
            kind = (int)i;
    if (kind < 0)
        *err = xasprintf("profile '%s': unknown kind '%.*s' (constant, ramp, step or spike)", spec,
                         (int)klen, spec);
    return kind;
}

/* "constant" (the base rate) or "constant:LEVEL". */
static int parse_constant(const char *spec, const char *colon, double base, struct fl_profile *p, char **err)
{
    double r = base;
    if (colon) {
        const char *s = colon + 1;
        if (parse_level(&s, base, &r, spec, err) != 0)
            return -1;
        if (*s) {
            *err = xasprintf("profile '%s': constant takes one level and no duration", spec);
            return -1;
        }
    } else if (base <= 0) {
        *err = xasprintf("profile '%s': constant needs --rate or a level (constant:500/s)", spec);
        return -1;
    }
    fl_profile_constant(p, r);
    return 0;
}

/* One stage "LEVEL[-LEVEL]DURATION" at *s, which is left at the ',' or the
 * end that follows it. */
static int parse_stage(const char **s, double base, int kind, const char *spec, struct fl_stage *st, char **err)
{
    if (parse_level(s, base, &st->from, spec, err) != 0)
        return -1;
    st->to = st->from;
    if (**s == '-') {
        (*s)++;
        if (parse_level(s, base, &st->to, spec, err) != 0)
            return -1;
    }
    size_t dlen = strcspn(*s, ",");
    char dur[32];
    uint64_t ms;
    if (dlen == 0 || dlen >= sizeof dur) {
        *err = xasprintf("profile '%s': each stage needs a duration, e.g. 10x30s", spec);
        return -1;
    }
    memcpy(dur, *s, dlen);
    dur[dlen] = '\0';
    if (cfg_parse_duration(dur, &ms) != 0 || ms == 0 || ms > FL_MAX_DURATION_MS) {
        *err = xasprintf("profile '%s': bad duration '%s' (like 500ms, 20s or 1m, at most 1h)", spec, dur);
        return -1;
    }
    st->dur_ns = ms * 1000000ull;
    if ((kind == FL_PROF_STEP || kind == FL_PROF_SPIKE) && st->from != st->to) {
        *err = xasprintf("profile '%s': %s stages are flat; use ramp for FROM-TO stages", spec, kind_names[kind]);
        return -1;
    }
    *s += dlen;
    return 0;
}

int fl_profile_parse(const char *spec, double base, struct fl_profile *p, char **err)
{
    const char *colon = strchr(spec, ':');
    int kind = parse_kind(spec, colon, err);
    if (kind < 0)
        return -1;
    if (kind == FL_PROF_CONSTANT)
        return parse_constant(spec, colon, base, p, err);
    if (!colon || !colon[1]) {
        *err = xasprintf("profile '%s': expected %s:STAGE,STAGE,... (e.g. %s)", spec, kind_names[kind],
                         kind == FL_PROF_RAMP ? "ramp:1x-10x30s" : "spike:1x20s,10x30s,1x20s");
        return -1;
    }
    struct fl_profile np = {.kind = (enum fl_profile_kind)kind};
    const char *s = colon + 1;
    size_t cap = 0;
    for (;;) {
        struct fl_stage st;
        if (parse_stage(&s, base, kind, spec, &st, err) != 0)
            goto fail;
        if (np.n == cap) {
            cap = cap ? cap * 2 : 4;
            np.stages = xrealloc(np.stages, cap * sizeof *np.stages);
        }
        np.stages[np.n++] = st;
        if (!*s)
            break;
        s++; /* ',' */
        if (np.n >= 1000) {
            *err = xasprintf("profile '%s': more than 1000 stages", spec);
            goto fail;
        }
    }
    fl_profile_free(p);
    *p = np;
    return 0;
fail:
    free(np.stages);
    return -1;
}

uint64_t fl_profile_length_ns(const struct fl_profile *p)
{
    uint64_t t = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->stages[i].dur_ns)
            return 0;
        t += p->stages[i].dur_ns;
    }
    return t;
}

double fl_profile_rate_at(const struct fl_profile *p, uint64_t t_ns)
{
    uint64_t t0 = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct fl_stage *st = &p->stages[i];
        if (!st->dur_ns || t_ns < t0 + st->dur_ns) {
            if (!st->dur_ns)
                return st->from;
            double f = (double)(t_ns - t0) / (double)st->dur_ns;
            return st->from + (st->to - st->from) * f;
        }
        t0 += st->dur_ns;
    }
    return p->n ? p->stages[p->n - 1].to : 0;
}

static void put_rate(char *out, size_t outlen, double r)
{
    if (r == floor(r))
        snprintf(out, outlen, "%.0f/s", r);
    else
        snprintf(out, outlen, "%.2f/s", r);
}

void fl_profile_describe(const struct fl_profile *p, char *out, size_t outlen)
{
    size_t off = (size_t)snprintf(out, outlen, "%s", kind_names[p->kind]);
    for (size_t i = 0; i < p->n && off < outlen; i++) {
        const struct fl_stage *st = &p->stages[i];
        char a[32], b[32], d[32];
        put_rate(a, sizeof a, st->from);
        put_rate(b, sizeof b, st->to);
        cfg_format_duration(st->dur_ns / 1000000ull, d, sizeof d);
        if (st->from != st->to)
            off += (size_t)snprintf(out + off, outlen - off, "%s %s-%s %s", i ? "," : "", a, b, d);
        else if (st->dur_ns)
            off += (size_t)snprintf(out + off, outlen - off, "%s %s %s", i ? "," : "", a, d);
        else
            off += (size_t)snprintf(out + off, outlen - off, "%s %s", i ? "," : "", a);
    }
}

/* ---- schedule ---- */

/* Time (s, from the stage start) at which a stage starting at rate r0
 * with slope a (req/s^2) has asked for x requests; INFINITY when never. */
static double stage_solve(double r0, double a, double x)
{
    if (x <= 0)
        return 0;
    double disc = r0 * r0 + 2 * a * x;
    if (disc < 0)
        return INFINITY;
    /* 2x / (r0 + sqrt(...)) is the stable form of (-r0 + sqrt(...)) / a. */
    double den = r0 + sqrt(disc);
    return den > 0 ? 2 * x / den : INFINITY;
}

/* Finds the intended time of s->next. */
static void sched_locate(struct fl_sched *s)
{
    const struct fl_profile *p = s->p;
    for (;;) {
        if (s->share <= 0 || s->stage >= p->n + 1) {
            s->next_ns = UINT64_MAX;
            return;
        }
        bool hold = s->stage >= p->n; /* after the last stage */
        const struct fl_stage *st = hold ? &p->stages[p->n - 1] : &p->stages[s->stage];
        double r0 = hold ? st->to : st->from;
        double r1 = st->to;
        double dur = hold || !st->dur_ns ? INFINITY : (double)st->dur_ns / 1e9;
        double a = isinf(dur) ? 0 : (r1 - r0) / dur;
        double x = (s->next - s->stage_n0) / s->share; /* profile requests into the stage */
        double tau = stage_solve(r0, a, x);
        if (tau <= dur) {
            double t = s->stage_t0 + tau;
            if (t * 1e9 >= (double)s->end_ns) {
                s->next_ns = UINT64_MAX;
                return;
            }
            s->next_ns = (uint64_t)llround(t * 1e9);
            if (s->next_ns >= s->end_ns)
                s->next_ns = UINT64_MAX;
            return;
        }
        if (isinf(dur)) {
            s->next_ns = UINT64_MAX; /* the rate is zero from here on */
            return;
        }
        /* Move to the next stage. */
        s->stage_n0 += s->share * (r0 * dur + 0.5 * a * dur * dur);
        s->stage_t0 += dur;
        s->stage++;
        if (s->stage_t0 * 1e9 >= (double)s->end_ns) {
            s->next_ns = UINT64_MAX;
            return;
        }
    }
}

void fl_sched_init(struct fl_sched *s, const struct fl_profile *p, double share, double phase,
                   uint64_t end_ns)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    s->share = share;
    s->next = phase;
    s->end_ns = end_ns;
    if (!p->n)
        s->share = 0;
    sched_locate(s);
}

void fl_sched_advance(struct fl_sched *s)
{
    if (s->next_ns == UINT64_MAX)
        return;
    s->next += 1;
    sched_locate(s);
}
