/*
 * health: one-request-per-connection HTTP/1.1 endpoint. libhttp-parser parses; this file only
 * records the method and path, answers, and closes. Connections that send too much or stall are
 * dropped so a slow client can never pin the daemon.
 */
#define _GNU_SOURCE
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEALTH_MAX_REQUEST 8192
#define HEALTH_MAX_CONNS 64
#define HEALTH_TIMEOUT_MS 5000

struct hconn {
    struct health *h;
    int fd;
    http_parser parser;
    char path[256];
    size_t path_len;
    int path_too_long;
    size_t received;
    int done;        /* request complete */
    char *reply;     /* response bytes (owned) */
    size_t reply_len;
    size_t reply_off;
    uint64_t timer;
    struct hconn *next;
};

struct health {
    struct loop *loop;
    int fd;
    int port;
    health_status_fn fn;
    void *arg;
    struct hconn *conns;
    size_t n_conns;
};

static void conn_close(struct hconn *c)
{
    struct health *h = c->h;
    struct hconn **pp;

    for (pp = &h->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    h->n_conns--;
    loop_fd_del(h->loop, c->fd);
    loop_timer_del(h->loop, c->timer);
    (void)close(c->fd); /* nothing left to flush: the reply was sent or abandoned */
    free(c->reply);
    free(c);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct hconn *c = p->data;

    if (c->path_len + len >= sizeof(c->path)) {
        c->path_too_long = 1;
        return 0;
    }
    memcpy(c->path + c->path_len, at, len);
    c->path_len += len;
    c->path[c->path_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    struct hconn *c = p->data;

    c->done = 1;
    return 1; /* stop parsing: one request per connection */
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_complete,
};

static int set_reply(struct hconn *c, int status, const char *reason, const char *body)
{
    int n = asprintf(&c->reply,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, reason, strlen(body), body);

    if (n < 0) {
        c->reply = NULL;
        return -1;
    }
    c->reply_len = (size_t)n;
    return 0;
}

static void conn_write(struct loop *loop, int fd, int mask, void *arg);

static void answer(struct hconn *c)
{
    struct ly_error e;
    const char *m = http_method_str((enum http_method)c->parser.method);
    int rc;

    ly_error_clear(&e);
    if (c->path_too_long) {
        rc = set_reply(c, 414, "URI Too Long", "{\"error\":\"uri too long\"}");
    } else if (strcmp(c->path, "/healthz") != 0 && strcmp(c->path, "/readyz") != 0) {
        rc = set_reply(c, 404, "Not Found", "{\"error\":\"not found\"}");
    } else if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        rc = set_reply(c, 405, "Method Not Allowed", "{\"error\":\"use GET\"}");
    } else {
        int ready = 0;
        json_t *st = c->h->fn(c->h->arg, &ready);
        char *body = st != NULL ? json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(st);
        rc = ready ? set_reply(c, 200, "OK", body != NULL ? body : "{}")
                   : set_reply(c, 503, "Service Unavailable", body != NULL ? body : "{}");
        free(body);
    }
    if (rc < 0 || loop_fd_mask(c->h->loop, c->fd, LOOP_WRITABLE, &e) < 0) {
        conn_close(c);
        return;
    }
    conn_write(c->h->loop, c->fd, LOOP_WRITABLE, c);
}

static void conn_write(struct loop *loop, int fd, int mask, void *arg)
{
    struct hconn *c = arg;
    ssize_t n;

    (void)loop;
    (void)mask;
    while (c->reply_off < c->reply_len) {
        n = send(fd, c->reply + c->reply_off, c->reply_len - c->reply_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            break;
        }
        c->reply_off += (size_t)n;
    }
    conn_close(c);
}

static void conn_read(struct loop *loop, int fd, int mask, void *arg)
{
    struct hconn *c = arg;
    char buf[1024];
    ssize_t n;

    (void)loop;
    if (mask & LOOP_WRITABLE) {
        conn_write(loop, fd, mask, arg);
        return;
    }
    n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0 || c->received + (size_t)n > HEALTH_MAX_REQUEST) {
        conn_close(c);
        return;
    }
    c->received += (size_t)n;
    (void)http_parser_execute(&c->parser, &settings, buf, (size_t)n);
    if (c->done) {
        answer(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        /* Not HTTP: answer 400 when we can, then close. */
        if (set_reply(c, 400, "Bad Request", "{\"error\":\"bad request\"}") == 0) {
            struct ly_error e;
            ly_error_clear(&e);
            if (loop_fd_mask(c->h->loop, c->fd, LOOP_WRITABLE, &e) == 0) {
                conn_write(loop, fd, LOOP_WRITABLE, c);
                return;
            }
        }
        conn_close(c);
    }
}

static long conn_timeout(struct loop *loop, uint64_t id, void *arg)
{
    struct hconn *c = arg;

    (void)loop;
    (void)id;
    c->timer = 0;
    conn_close(c);
    return LOOP_TIMER_DONE;
}

static void on_accept(struct loop *loop, int fd, int mask, void *arg)
{
    struct health *h = arg;
    struct hconn *c;
    struct ly_error e;
    int cfd;

    (void)mask;
    cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        return;
    }
    if (h->n_conns >= HEALTH_MAX_CONNS) {
        (void)close(cfd); /* shed load: a health probe retries */
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        (void)close(cfd);
        return;
    }
    c->h = h;
    c->fd = cfd;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ly_error_clear(&e);
    if (loop_fd_add(loop, cfd, LOOP_READABLE, conn_read, c, &e) < 0) {
        (void)close(cfd);
        free(c);
        return;
    }
    if (loop_timer_add(loop, HEALTH_TIMEOUT_MS, conn_timeout, c, &c->timer, &e) < 0) {
        c->timer = 0;
    }
    c->next = h->conns;
    h->conns = c;
    h->n_conns++;
}

int health_new(struct loop *loop, const char *host, int port, health_status_fn fn, void *arg,
               struct health **out, struct ly_error *err)
{
    struct health *h;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;
    int rc;

    ly_error_clear(err);
    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "health address '%.64s' is not an IPv4 literal or localhost", host);
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    h->loop = loop;
    h->fn = fn;
    h->arg = arg;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        free(h);
        return ly_error_set(err, LY_ERR_IO, 0, "health endpoint socket");
    }
    if (setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(h->fd, 64) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&sa, &sl) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot listen on %s:%d for the health endpoint",
                          host, port);
        (void)close(h->fd);
        free(h);
        return rc;
    }
    h->port = ntohs(sa.sin_port);
    rc = loop_fd_add(loop, h->fd, LOOP_READABLE, on_accept, h, err);
    if (rc < 0) {
        (void)close(h->fd);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int health_port(const struct health *h)
{
    return h->port;
}

void health_free(struct health *h)
{
    if (h == NULL) {
        return;
    }
    while (h->conns != NULL) {
        conn_close(h->conns);
    }
    loop_fd_del(h->loop, h->fd);
    (void)close(h->fd);
    free(h);
}
