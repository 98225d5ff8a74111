/* floodgate echo: private definitions shared by the echo server's files.
 *
 * echo is a small HTTP/1.1 origin server for tests, demos and benchmarks.
 * Its shape follows the rest of floodgate: N worker threads, each with its
 * own event loop and its own SO_REUSEPORT listener; a connection lives on
 * one thread and needs no locks. The files split the work as follows:
 *   echo.c    flags, listeners, threads, signals (echo_main);
 *   worker.c  one thread's loop and its core/httpd server, draining on stop;
 *   conn.c    echo on core/httpd: bodies counted through a body sink, the
 *             latency (a held answer), the capacity model, large bodies
 *             streamed from the shared block;
 *   reply.c   what to answer: routing a request head and formatting the
 *             response into an output buffer;
 *   register.c  --register: the registration lease and its renewals. */
#ifndef ECHO_ECHO_H
#define ECHO_ECHO_H

#include "core/buf.h"
#include "core/common.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/httpd.h"
#include "core/net.h"

#include <pthread.h>
#include <time.h>

#define ECHO_MAX_HEAD (32 * 1024)     /* request head limit; over it: 431 */
#define ECHO_MAX_HEADERS 128          /* header field limit; over it: 431 */
#define ECHO_MAX_TRAILER (16 * 1024)  /* chunked trailer section limit */
#define ECHO_READ_CHUNK (64 * 1024)   /* bytes asked of each read(2) */
#define ECHO_BLOCK_SIZE (64 * 1024)   /* shared body block, repeated for large --size */
#define ECHO_BLOCK_REPEAT 8           /* copies of it in cfg->block: one write's worth */
#define ECHO_INLINE_BODY (16 * 1024)  /* bodies up to this are copied into the output */
#define ECHO_OUT_HIGH (64 * 1024)     /* queued output that pauses pipelined parsing */
#define ECHO_STASH_KEEP 256           /* per-connection stash kept between requests */
#define ECHO_LINGER_MS 1000           /* discard input this long after a closing error */
#define ECHO_DRAIN_MS 2000            /* on SIGTERM, busy connections get this long */

/* Everything the flags configure; read-only once the workers run. */
struct echo_config {
    struct net_addr addr;      /* where to listen (port resolved when 0 was asked) */
    char addr_str[64];         /* addr as text, for the start line and the default name */
    int threads;               /* worker threads, >= 1 */
    int64_t body_size;         /* --size; -1: the short text body */
    char *block;               /* ECHO_BLOCK_REPEAT copies of an ECHO_BLOCK_SIZE pattern */
    uint32_t latency_ms;       /* added before each response (not /health) */
    uint32_t jitter_ms;        /* uniform extra latency, 0..jitter_ms */
    double error_rate;         /* fraction of requests answered 500 (not /health) */
    uint32_t max_concurrency;  /* requests in service at once per thread (0: no limit); see conn.c */
    const char *name;          /* X-Server value and the default body's first word */
    size_t name_len;
    int health_status;         /* status of /health */
    const char *register_url;  /* --register: gateway admin URL of the service, or NULL */
    int weight;                /* --weight to register with */
    uint64_t register_ttl_ms;  /* --register-ttl: the lease, renewed every third of it */
    char *register_auth;       /* "Authorization: Bearer T\r\n" from --register-token-file, or NULL */
};

/* Where the body of the current response comes from. */
enum echo_src {
    ECHO_SRC_STASH, /* c->stash holds it */
    ECHO_SRC_SIZED, /* cfg->body_size bytes of the shared block pattern */
    ECHO_SRC_SINK,  /* the decimal count of request payload bytes */
};

/* Where a request stands in the capacity model (--max-concurrency). */
enum echo_job {
    ECHO_JOB_NONE,    /* not in the model (no limit, /health, or answered) */
    ECHO_JOB_QUEUED,  /* waiting in the worker's FIFO for a service slot */
    ECHO_JOB_SERVING, /* holds a slot; the timer ends its service time */
};

/* One client connection: core/httpd's connection (which owns the socket,
 * the framing and the buffers, none while idle) and echo's reply state. */
struct echo_conn {
    struct httpd_conn h;   /* first: httpd allocates struct echo_conn */
    struct echo_worker *w;
    uint8_t src;           /* enum echo_src of the current response */
    uint8_t minor;         /* HTTP/1.<minor> of the current request */
    bool head_only;        /* HEAD: headers without the body */
    bool has_body;         /* the request framed a body: send X-Received-Bytes */
    bool quick;            /* answer without the configured latency (/health) */
    bool load_hdrs;        /* /health with --max-concurrency: report busy and queued */
    uint8_t job;           /* enum echo_job */
    uint32_t service_ms;   /* ECHO_JOB_*: this request's service time */
    struct echo_conn *qnext; /* ECHO_JOB_QUEUED: next in the worker's FIFO */
    struct echo_conn *gprev, *gnext; /* a ghost: the worker's ghost list */
    int status;            /* status of the current response */
    uint64_t received;     /* request payload bytes received */
    uint64_t big_off;      /* position in the block pattern of the large body */
    uint64_t big_left;     /* large body bytes still to hand to httpd */
    struct buf stash;      /* current response body when built from the request */
    struct ev_timer timer; /* latency, or service time in the capacity model */
};

/* One thread: its loop and its httpd server (listener and connections). */
struct echo_worker {
    const struct echo_config *cfg;
    struct ev_loop *loop;
    struct httpd *srv;
    pthread_t thread;
    int id;
    /* Capacity model (--max-concurrency): requests in service, the FIFO of
     * those waiting for a slot, and "ghosts": requests whose connection
     * closed while queued or in service, which still take their slot for
     * their service time, as work already handed to a thread pool does. */
    uint32_t busy;
    struct echo_conn *q_head, *q_tail;
    size_t queued;
    struct echo_conn *ghosts;   /* closed connections still queued or in service */
    bool stopping;              /* SIGTERM seen: no accepts, close after each response */
    bool failed;                /* the loop stopped on an error */
    struct ev_timer drain_timer;  /* deadline for busy connections on stop */
    uint64_t rng;               /* xorshift64* state for error rate and jitter */
    time_t date_sec;            /* second the Date header was formatted for */
    char date[48];              /* "Date: <IMF-fixdate>\r\n" */
    size_t date_len;
};

int echo_main(int argc, char **argv);

/* worker.c. Creates a worker listening on lfd (owned from then on); called
 * on the main thread before the worker's thread starts. */
struct echo_worker *echo__worker_new(const struct echo_config *cfg, int id, int lfd);
/* Thread body: runs the loop until stopped, then frees every connection. */
void *echo__worker_run(void *arg);
/* Asks the worker to stop; callable from any thread. */
void echo__worker_stop(struct echo_worker *w);
/* Frees the worker after its thread has been joined. */
void echo__worker_free(struct echo_worker *w);
/* Next pseudo-random 64-bit number of the worker's generator. */
uint64_t echo__rand(struct echo_worker *w);

/* conn.c. The httpd hooks and limits of a worker's server. */
extern const struct httpd_limits echo__limits;
extern const struct httpd_hooks echo__hooks;
/* At the end of the worker's run: drops the ghosts (see conn.c). */
void echo__ghosts_free(struct echo_worker *w);

/* reply.c. Decides the response to a parsed request head (head[0..head_len)
 * is the head as received) and prepares the per-request fields of c. */
void echo__route(struct echo_conn *c, const struct http_request *req, const char *head,
                 size_t head_len);
/* Milliseconds to wait before answering the current request. */
uint32_t echo__delay(struct echo_conn *c);
/* Appends the current response to out. A large sized body is not copied:
 * c->big_left/big_off describe it for the writer. Sets c->h.keep_alive to
 * whether the connection stays open after this response. */
void echo__reply(struct echo_conn *c, struct buf *out);
/* Prepares a closing error response (400, 431, 501, 505) for a request
 * that could not be parsed; echo__reply() then writes it. */
void echo__reply_error(struct echo_conn *c, int status);
/* Refreshes w->date when the wall-clock second changed. */
void echo__date_update(struct echo_worker *w);

/* register.c: starts the thread that registers cfg->addr_str with the
 * gateway at cfg->register_url and renews the lease; 0, or -1 after
 * printing why (a bad URL). */
int echo__register_start(const struct echo_config *cfg);
/* Stops renewing and deregisters. Returns -1 when the gateway refused the
 * registration for good (the process was told to stop), else 0. */
int echo__register_stop(void);

#endif
