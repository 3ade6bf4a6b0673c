/*
 * health: the daemon's HTTP health endpoint on a loopback TCP address. `GET /healthz` answers
 * 200 with a small JSON status while the daemon runs (503 when the status callback reports not
 * ready); anything else gets 404 or 405. Requests are parsed by libhttp-parser, capped in size
 * and time, and each connection serves one request. It exposes no secret and takes no input
 * beyond the request line.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <jansson.h>

#include "../common/ly_error.h"
#include "loop.h"

struct health;

/*
 * Returns a new JSON object describing the daemon (the endpoint adds nothing secret to it)
 * and sets *ready. NULL means "not ready" with an empty body.
 */
typedef json_t *(*health_status_fn)(void *arg, int *ready);

/*
 * Listen on host:port (an IPv4 literal or "localhost"; port 0 picks a free one) and serve on
 * `loop`. Free with health_free(). LY_ERR_IO when the address cannot be bound.
 */
int health_new(struct loop *loop, const char *host, int port, health_status_fn fn, void *arg,
               struct health **out, struct ly_error *err) LY_MUST_USE;

/* The bound port (useful with port 0). */
int health_port(const struct health *h);

/* Close the listener and every connection. NULL is a no-op. */
void health_free(struct health *h);

#endif
