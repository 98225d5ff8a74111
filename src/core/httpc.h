/* A tiny blocking HTTP/1.1 client for control-plane calls (a server
 * registering itself with the gateway's admin API at boot and leaving at
 * stop; the autoscaler registering replicas). Not for the data path: one
 * request per connection, whole bodies in memory, bounded by timeouts and
 * a response size limit. */
#ifndef FG_HTTPC_H
#define FG_HTTPC_H

#include "core/common.h"

#define HTTPC_MAX_RESPONSE (1u << 20)

/* Splits "http://host:port/path" into "host:port" and "/path" (caller
 * frees both). Returns 0 or -1 with *err. */
int httpc_split_url(const char *url, char **hostport, char **path, char **err);

/* Sends method path (body: JSON, or NULL) to hostport and waits for the
 * whole response within timeout_ms. On success returns 0 with *status and
 * (when body_out is not NULL) the response body (caller frees); returns -1
 * with *err on connection, timeout or protocol errors. */
int httpc_request(const char *hostport, const char *method, const char *path, const char *body,
                  int timeout_ms, int *status, char **body_out, char **err);

/* Same, with extra header lines (each ending in CRLF, e.g.
 * "Authorization: Bearer T\r\n"; NULL: none) sent after the others. */
int httpc_request_h(const char *hostport, const char *method, const char *path, const char *headers,
                    const char *body, int timeout_ms, int *status, char **body_out, char **err);

#endif
