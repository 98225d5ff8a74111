/* `echo --register URL`: a registration lease with a gateway service.
 *
 * One thread registers the server (POST URL/servers with a "ttl"), then
 * registers again every ttl/3, which renews the lease; the gateway removes
 * a server whose lease runs out, so an echo killed without deregistering
 * leaves the pool by itself, and a gateway that restarted learns the
 * server again at the next renewal. A gateway that is down or refuses for
 * a while (503, 404 while its config is being fixed) is retried every
 * second until it answers; only a 400, 401 or 403 at the first attempt
 * (a malformed registration, a missing or wrong token: nothing that
 * waiting fixes) is fatal: the thread then sends SIGTERM to the process
 * and echo_main exits 1. At stop
 * the thread is woken and joined, and the server deregisters (DELETE)
 * before the listeners close.
 *
 * Thread context: echo__register_start() and echo__register_stop() on the
 * main thread; the loop on its own thread, sharing only the fields of
 * struct echo_register under its lock. */
#include "echo/echo.h"

#include "core/httpc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REG_RETRY_MS 1000    /* wait after a failed attempt */
#define REG_TIMEOUT_MS 2000  /* one request's limit (less for short TTLs) */

struct echo_register {
    const struct echo_config *cfg;
    char *hostport, *path;   /* the split --register URL */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* stop requested */
    bool stop;               /* under lock */
    bool fatal;              /* the gateway refused the registration for good */
};

static struct echo_register reg;

/* One registration (join) or deregistration. Returns the HTTP status, or
 * -1 when the gateway did not answer; *why gets a message (caller frees). */
static int announce(bool join, uint64_t ttl_ms, char **why)
{
    const struct echo_config *cfg = reg.cfg;
    char *target, *json = NULL, *body = NULL, *err = NULL;
    int status = -1;
    if (join) {
        target = xasprintf("%s/servers", reg.path);
        json = xasprintf("{\"address\":\"%s\",\"weight\":%d,\"ttl\":\"%llums\"}", cfg->addr_str, cfg->weight,
                         (unsigned long long)ttl_ms);
    } else {
        target = xasprintf("%s/servers/%s", reg.path, cfg->addr_str);
    }
    int timeout = (int)FG_MIN((uint64_t)REG_TIMEOUT_MS, ttl_ms / 3 ? ttl_ms / 3 : 1);
    if (httpc_request_h(reg.hostport, join ? "POST" : "DELETE", target, cfg->register_auth, json, timeout, &status,
                        &body, &err) != 0) {
        *why = err;
        status = -1;
    } else {
        *why = xasprintf("status %d: %s", status, body ? body : "");
        free(err);
    }
    free(body);
    free(json);
    free(target);
    return status;
}

/* Sleeps ms or until stop; returns true when stopping. */
static bool nap(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&reg.lock);
    while (!reg.stop && pthread_cond_timedwait(&reg.wake, &reg.lock, &ts) != ETIMEDOUT)
        ;
    bool stop = reg.stop;
    pthread_mutex_unlock(&reg.lock);
    return stop;
}

/* The renewal loop: register, then renew every ttl/3; retry every second
 * while the gateway does not accept. Logs changes of state only, not each
 * renewal. */
static void *renew_loop(void *arg)
{
    const struct echo_config *cfg = reg.cfg;
    uint64_t ttl = cfg->register_ttl_ms, every = FG_MAX(ttl / 3, 1);
    int state = 0; /* 0: first attempt, 1: registered, 2: failing */
    bool accepted, ever = false;
    do {
        char *why = NULL;
        int st = announce(true, ttl, &why);
        /* 409: present but not as a lease (in the gateway's config, or
         * added by an operator): nothing to renew, but nothing wrong. */
        accepted = st / 100 == 2 || st == 409;
        /* 400: malformed; 401/403: no or a wrong token, or a Host the
         * admin API refuses. None is fixed by waiting. */
        bool fatal = (st == 400 || st == 401 || st == 403) && !ever;
        if (accepted && state != 1)
            fprintf(stderr, "echo registered with %s as %s (lease %llu ms, renewed every %llu ms)\n",
                    cfg->register_url, cfg->addr_str, (unsigned long long)ttl, (unsigned long long)every);
        if (!accepted && state != 2)
            fprintf(stderr, "floodgate echo: register with %s: %s%s\n", cfg->register_url, why,
                    fatal ? "" : "; retrying every second");
        free(why);
        if (fatal) {
            reg.fatal = true;
            kill(getpid(), SIGTERM);
            return NULL;
        }
        ever = ever || accepted;
        state = accepted ? 1 : 2;
    } while (!nap(accepted ? every : FG_MIN(every, (uint64_t)REG_RETRY_MS)));
    return NULL;
}

int echo__register_start(const struct echo_config *cfg)
{
    char *err = NULL;
    memset(&reg, 0, sizeof reg);
    reg.cfg = cfg;
    if (httpc_split_url(cfg->register_url, &reg.hostport, &reg.path, &err) != 0) {
        fprintf(stderr, "floodgate echo: --register %s\n", err);
        free(err);
        return -1;
    }
    pthread_mutex_init(&reg.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reg.wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&reg.thread, NULL, renew_loop, NULL);
    if (rc != 0) {
        fprintf(stderr, "floodgate echo: cannot start the registration thread: %s\n", strerror(rc));
        free(reg.hostport);
        free(reg.path);
        return -1;
    }
    return 0;
}

int echo__register_stop(void)
{
    pthread_mutex_lock(&reg.lock);
    reg.stop = true;
    pthread_cond_signal(&reg.wake);
    pthread_mutex_unlock(&reg.lock);
    pthread_join(reg.thread, NULL);
    int rc = reg.fatal ? -1 : 0;
    if (!reg.fatal) {
        /* Leave the pool before closing: no new request is routed here
         * while the in-flight ones finish. */
        char *why = NULL;
        int st = announce(false, REG_TIMEOUT_MS * 3ull, &why);
        if (st / 100 == 2)
            fprintf(stderr, "echo deregistered from %s as %s\n", reg.cfg->register_url, reg.cfg->addr_str);
        else
            fprintf(stderr, "floodgate echo: deregister from %s: %s\n", reg.cfg->register_url, why);
        free(why);
    }
    pthread_cond_destroy(&reg.wake);
    pthread_mutex_destroy(&reg.lock);
    free(reg.hostport);
    free(reg.path);
    return rc;
}
