/* One HTTP/1.1 server connection layer on an event loop, shared by the
 * admin API (core/admin.c) and the broker (broker/http/server.c).
 *
 * The layer owns the listeners and the connections: it accepts (up to
 * max_conns, more are closed at once), reads, assembles each request
 * (head up to max_head bytes and max_headers fields, else 431; a body by
 * Content-Length or chunked, decoded, up to max_body, else 413; malformed
 * framing 400; the core parser's 501 and 505), answers Expect:
 * 100-continue, keeps connections alive, writes what handlers queue, and
 * closes with a lingering close (flush, shut down the write side, drain
 * the peer for linger_ms) so that an early answer (413) is not destroyed
 * by a reset (with limits.quick_close, only after an error answer or when
 * input is left unread: a client that asked to close sends nothing more,
 * and lingering costs each close three more system calls). Pipelined
 * requests are answered strictly in order; parsing pauses while the
 * output holds out_high bytes.
 *
 * Timeouts: a request head must arrive within header_ms of its first
 * byte and its body within body_ms of the head (else 408 and close); a
 * connection with nothing pending closes after idle_ms, and one whose
 * output makes no progress for write_ms. A timeout of 0 is none.
 *
 * Handler contract. hooks.on_request(c) runs once per complete request:
 * c->req holds the parsed head (views into c->head), c->body the decoded
 * body (NUL-terminated outside its length), c->keep_alive whether the
 * connection may serve another request (clear it to close after this
 * answer). The handler appends its complete response to c->out, or calls
 * httpd_hold(c) to answer later: a held connection parses nothing more
 * (it reads, up to a bound, only to notice a hang-up) until the owner
 * appends the answer to c->out and calls httpd_release(c), which resumes
 * with the next pipelined request. The layer's own error answers go
 * through hooks.on_error(c, status, message) with c->keep_alive already
 * false.
 *
 * Hooks for servers that do not keep whole messages (echo; later an
 * HTTP/2 or cache stage):
 *  - Body sink. hooks.on_head(c) runs once the head is parsed, before the
 *    body; calling httpd_body_sink(c, cb, ud) there passes the decoded
 *    body to cb as it arrives instead of storing it (c->body stays empty
 *    and max_body does not apply), so bodies of any size cost no memory.
 *  - Streamed answer. httpd_stream(c, cb) after queuing the head in
 *    c->out: once c->out is written, the layer asks cb for the next
 *    bytes and writes them in place (no copy into c->out) until cb
 *    returns 0. Nothing behind the request is answered meanwhile.
 *  - Idle release (limits.idle_release): a connection owns no buffers
 *    while idle; it borrows the server's spare ones for the time it has
 *    bytes to keep, so that the common request allocates nothing.
 *  - Work that outlives its connection: on_close may httpd_ref(c) to keep
 *    the struct (say, a service slot whose timer lives in the server's
 *    part of it) and httpd_unref(c) when done; httpd_free_dead then frees
 *    it. Accepting pauses for a while when descriptors run out (EMFILE),
 *    so that a readable listener does not spin the loop.
 *
 * Lifetime. Connections are never freed inside their callbacks:
 * httpd_kill() closes the socket, calls hooks.on_close and queues the
 * struct, which httpd_free_dead() (to be run before each poll) frees, but
 * not while httpd_ref() holds it (a commit group that points at it).
 * A connection struct is hooks.conn_size bytes: a server embeds struct
 * httpd_conn as the first member of its own connection struct.
 *
 * Thread context: everything runs on the loop's thread. */
#ifndef FG_HTTPD_H
#define FG_HTTPD_H

#include "core/buf.h"
#include "core/common.h"
#include "core/ev.h"
#include "core/http1.h"
#include "core/net.h"

struct httpd;

struct httpd_limits {
    uint32_t max_conns;          /* open connections; more are closed at once */
    uint32_t max_head;           /* request head bytes: 431 above */
    uint32_t max_headers;        /* header fields: 431 above */
    uint64_t max_body;           /* decoded request body: 413 above */
    uint32_t max_trailer;        /* chunked trailer section */
    uint64_t header_ms;          /* head within this of its first byte: 408 */
    uint64_t body_ms;            /* body within this of its head: 408 */
    uint64_t idle_ms;            /* keep-alive connection with nothing pending */
    uint64_t write_ms;           /* output pending without progress */
    uint64_t linger_ms;          /* draining the peer after the last answer */
    size_t read_chunk;           /* bytes asked of each read(2) */
    size_t in_max;               /* stop reading while c->in holds this much */
    size_t held_in_max;          /* the same while an answer is held */
    size_t out_high;             /* stop answering while c->out holds this much */
    bool idle_release;           /* idle connections own no buffers (see above) */
    bool quick_close;            /* closing after a clean answer with no input left
                                    unread: close at once, no lingering */
};

enum httpd_state {
    HTTPD_HEAD,   /* waiting for a request head */
    HTTPD_BODY,   /* collecting its body */
    HTTPD_HELD,   /* answered later (httpd_hold) */
    HTTPD_LINGER, /* write side shut, draining input until EOF */
};

struct httpd_conn;
/* Streamed answer: sets *p to the next bytes to write and returns their
 * count, 0 at the end. The bytes must stay valid until the stream ends or
 * the connection is freed (a shared read-only block, a referenced entry). */
typedef size_t (*httpd_refill_cb)(struct httpd_conn *c, const char **p);

struct httpd_conn {
    struct httpd *srv;
    struct httpd_conn *prev, *next; /* open list, then dead list */
    int fd;
    uint8_t state;                /* enum httpd_state */
    bool keep_alive;              /* the current request allows another */
    bool closing;                 /* no more requests; close once out is written */
    bool peer_eof;                /* read returned 0 */
    bool dead;                    /* closed, waiting to be freed */
    bool drop_on_eof;             /* held: a hang-up kills (nobody left to answer) */
    bool body_too_big;            /* chunked body went over max_body */
    bool failed;                  /* an error answer (httpd_fail): always linger */
    uint32_t refs;                /* httpd_ref() holders; freed at 0 only */
    enum http_body body_kind;
    uint64_t body_left;           /* Content-Length bytes still to read */
    struct http_chunked chunked;
    struct buf in;                /* bytes read, not yet parsed */
    struct buf out;               /* answers, not yet written */
    struct buf head;              /* the current request's head, as sent */
    struct buf body;              /* the current request's decoded body */
    struct http_request req;      /* views into head */
    struct http_header *hdrs;     /* max_headers fields */
    http_data_cb sink;            /* httpd_body_sink: the body goes there */
    void *sink_ud;
    httpd_refill_cb refill;       /* httpd_stream: the answer's next bytes */
    const char *view;             /* bytes from refill not yet written */
    size_t view_len;
    struct ev_timer timer;        /* the layer's timeouts and linger */
};

struct httpd_hooks {
    size_t conn_size;             /* of the server's struct; >= sizeof(struct httpd_conn) */
    void (*on_request)(struct httpd_conn *c);
    void (*on_head)(struct httpd_conn *c);  /* optional: head parsed, body to come */
    void (*on_error)(struct httpd_conn *c, int status, const char *msg);
    void (*on_open)(struct httpd_conn *c);  /* optional: accepted, before any request */
    void (*on_close)(struct httpd_conn *c); /* optional: killed; struct still valid */
    void (*on_free)(struct httpd_conn *c);  /* optional: before the struct is freed */
};

struct httpd_stats {
    uint64_t accepted, refused, requests;
};

/* Creates a server on loop (owned by the caller) with limits and hooks
 * (both copied); ud is for the owner (httpd_ud). Listens on nothing yet. */
struct httpd *httpd_new(struct ev_loop *loop, const struct httpd_limits *l, const struct httpd_hooks *hooks,
                        void *ud);
/* Closes the listeners and every connection and frees everything; no
 * connection may still be referenced. h may be NULL. */
void httpd_free(struct httpd *h);
void *httpd_ud(const struct httpd *h);
struct ev_loop *httpd_loop(const struct httpd *h);

/* Listens on addr (backlog as given) and serves what it accepts. With
 * bound non-NULL, stores the address actually bound (port 0 resolved).
 * Returns 0 or -errno. */
int httpd_listen(struct httpd *h, const struct net_addr *addr, int backlog, struct net_addr *bound);
/* Serves lfd, a socket already listening (owned from then on, closed
 * on failure too). Returns 0 or -errno. */
int httpd_adopt(struct httpd *h, int lfd);
/* Stops accepting: closes every listener. */
void httpd_unlisten(struct httpd *h);
/* Draining: no new connections, and every answer from now on closes its
 * connection (c->keep_alive starts false). */
void httpd_drain(struct httpd *h);

/* Frees the killed connections that nothing references. Run it before
 * each poll (ev_set_before_poll, or from the owner's hook). */
void httpd_free_dead(struct httpd *h);
/* Kills every connection with nothing pending (no partial request, no
 * unsent answer, not held). */
void httpd_close_idle(struct httpd *h);
void httpd_close_all(struct httpd *h);

/* Open connections (iterate with c->next; a callee may kill c). */
struct httpd_conn *httpd_conns(const struct httpd *h);
uint32_t httpd_nconns(const struct httpd *h);
const struct httpd_stats *httpd_stats(const struct httpd *h);
/* The current time as an IMF-fixdate for Date, refreshed once a second. */
const char *httpd_date(struct httpd *h);

/* In on_request: the answer comes later. drop_on_eof: kill the
 * connection when the peer hangs up meanwhile. */
void httpd_hold(struct httpd_conn *c, bool drop_on_eof);
/* The held answer is in c->out: write it and go on with the next
 * request. Any time on the loop's thread, but not from the connection's
 * own on_request (answer at once there instead); a no-op on a dead
 * connection. */
void httpd_release(struct httpd_conn *c);
/* In on_head: the body's payload goes to cb(ud, ...) as it arrives,
 * not into c->body (see the hooks above). */
void httpd_body_sink(struct httpd_conn *c, http_data_cb cb, void *ud);
/* In on_request, or before httpd_release: after what c->out holds, the
 * answer goes on with the bytes cb hands out until it returns 0. */
void httpd_stream(struct httpd_conn *c, httpd_refill_cb cb);
/* Answers status with msg through hooks.on_error and closes afterwards:
 * the request stream can no longer be trusted. */
void httpd_fail(struct httpd_conn *c, int status, const char *msg);
/* Closes the socket now; the struct stays valid until httpd_free_dead. */
void httpd_kill(struct httpd_conn *c);
void httpd_ref(struct httpd_conn *c);
void httpd_unref(struct httpd_conn *c);

/* Request body framing (the layer's, open to other framings): feeds p[0..n) to a body of kind (HTTP_BODY_LENGTH with *left bytes to
 * go, or HTTP_BODY_CHUNKED decoded by ch) and hands the payload to cb.
 * Returns the bytes consumed, with *done set once the body is complete,
 * or -1 for bad chunked encoding. Any other kind is complete at once. */
ssize_t httpd_body_feed(enum http_body kind, uint64_t *left, struct http_chunked *ch, const char *p, size_t n,
                        http_data_cb cb, void *ud, bool *done);

#endif
