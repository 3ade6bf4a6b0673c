/*
 * server: the daemon's wiring. Everything runs on one loop thread: listeners, the admin protocol,
 * the health endpoint and a half-second tick that performs due CA rotation steps and SVID
 * re-issues and tells the Workload API to push what changed. It never blocks in a callback
 * except on the local SQLite store, and logs only non-secret facts.
 */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/ly_buf.h"
#include "../common/ly_file.h"
#include "../common/ly_time.h"
#include "admin.h"
#include "ca.h"
#include "entry.h"
#include "fedsync.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "provider.h"
#include "store.h"
#include "svidcache.h"
#include "workload.h"

#define SERVER_VERSION "0.2.0"
#define SERVER_TICK_MS 500
#define ADMIN_MAX_CONNS 16
#define ADMIN_TIMEOUT_MS 10000
#define SVID_IDLE_KEEP 30 /* seconds an unused SVID is kept for a workload that reconnects */
/*
 * `ca rotate` on a running server publishes the next CA (bundle pushed on every open stream)
 * and lets it sign only this many seconds later, so that a client holds the new CA before any
 * SVID it signed arrives. Well under ADMIN_TIMEOUT_MS: the CLI's answer waits for the takeover.
 */
#define SERVER_CA_PUBLISH_DELAY 2
/*
 * With a bundle endpoint, federated trust domains must fetch the next CA before it signs, and
 * they refresh within the bundle's refresh hint: the takeover waits that long (plus a margin).
 * A wait longer than this is not held open on the admin connection: the CLI is told when the
 * next CA takes over instead.
 */
#define SERVER_CA_PARK_MAX 8
#define PARK_CA_ROTATE 1      /* aconn.parked: a `ca.rotate` waiting for the takeover */
#define PARK_FED_REFRESH 2    /* aconn.parked: a `federation.refresh` waiting for its fetch */

struct aconn {
    struct server *s;
    int fd;
    struct ly_buf in;
    struct ly_buf out;
    size_t out_off;
    uint64_t timer;
    int parked; /* PARK_*: a request whose answer comes later */
    struct aconn *next;
};

struct server {
    struct config cfg;
    const char *config_path;
    struct loop *loop;
    struct ca_state *ca;
    struct store *store;
    struct svidcache *cache;
    struct provider *prov;
    struct workload *wapi;
    struct health *health;
    struct fedsync *fed;
    struct aconn *current; /* the admin connection whose request is being dispatched */
    int admin_fd;
    struct aconn *aconns;
    size_t n_aconns;
    int64_t started;
    uint64_t tick;
    int exit_code;
    int defer_reply; /* set by an admin op whose answer comes later (see aconn_io) */
};

static void aconn_respond(struct aconn *c, json_t *resp);

/* ---- admin operations ---------------------------------------------------------------------- */

static json_t *entry_json(const struct entry *e, struct ly_error *err)
{
    json_t *j = NULL;

    if (entry_to_json_value(e, &j, err) < 0) {
        return NULL;
    }
    return j;
}

static const char *arg_str(const json_t *args, const char *key)
{
    const json_t *v = args != NULL ? json_object_get(args, key) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *op_status(struct server *s, const json_t *args, struct ly_error *err)
{
    int64_t entries = 0;
    char na[32];

    (void)args;
    if (store_entry_count(s->store, &entries, err) < 0 ||
        ly_time_format_rfc3339(ca_active_not_after(s->ca), na, sizeof(na), err) < 0) {
        return NULL;
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:I}",
                     "version", SERVER_VERSION, "trust_domain", ca_trust_domain(s->ca),
                     "uptime_seconds", (json_int_t)(ly_time_now() - s->started),
                     "workload_socket", s->cfg.workload_socket, "admin_socket",
                     s->cfg.admin_socket, "entries", (json_int_t)entries, "streams",
                     (json_int_t)workload_stream_count(s->wapi), "attested_callers",
                     (json_int_t)provider_caller_count(s->prov), "cached_svids",
                     (json_int_t)svidcache_count(s->cache), "ca_not_after", na,
                     "federation_relationships", (json_int_t)fedsync_relation_count(s->fed),
                     "bundle_endpoint", s->cfg.bundle_endpoint, "bundle_endpoint_port",
                     (json_int_t)fedsync_endpoint_port(s->fed), "bundle_endpoint_served",
                     (json_int_t)fedsync_endpoint_served(s->fed));
}

static json_t *op_entry_create(struct server *s, const json_t *args, struct ly_error *err)
{
    struct entry *e = entry_new();
    const char *id = arg_str(args, "spiffe_id");
    const char *hint = arg_str(args, "hint");
    const json_t *sels = args != NULL ? json_object_get(args, "selectors") : NULL;
    const json_t *dns = args != NULL ? json_object_get(args, "dns") : NULL;
    const json_t *ttl = args != NULL ? json_object_get(args, "ttl") : NULL;
    const json_t *fed = args != NULL ? json_object_get(args, "federates_with") : NULL;
    json_t *res = NULL;
    size_t i;

    if (e == NULL) {
        (void)ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    if (id == NULL || !json_is_array(sels) || (dns != NULL && !json_is_array(dns)) ||
        (fed != NULL && !json_is_array(fed)) || (ttl != NULL && !json_is_integer(ttl))) {
        (void)ly_error_setx(err, LY_ERR_USAGE, 0,
                            "entry.create needs spiffe_id (text) and selectors (array)");
        goto out;
    }
    if (entry_set_spiffe_id(e, id, strlen(id), err) < 0 ||
        entry_set_ttl(e, ttl != NULL ? (int64_t)json_integer_value(ttl)
                                     : s->cfg.default_svid_ttl,
                      err) < 0 ||
        (hint != NULL && entry_set_hint(e, hint, strlen(hint), err) < 0)) {
        goto out;
    }
    for (i = 0; i < json_array_size(sels); i++) {
        const json_t *v = json_array_get(sels, i);
        if (!json_is_string(v) ||
            entry_add_selector(e, json_string_value(v), json_string_length(v), err) < 0) {
            if (!json_is_string(v)) {
                (void)ly_error_setx(err, LY_ERR_USAGE, 0, "selectors must be text");
            }
            goto out;
        }
    }
    for (i = 0; dns != NULL && i < json_array_size(dns); i++) {
        const json_t *v = json_array_get(dns, i);
        if (!json_is_string(v) ||
            entry_add_dns(e, json_string_value(v), json_string_length(v), err) < 0) {
            if (!json_is_string(v)) {
                (void)ly_error_setx(err, LY_ERR_USAGE, 0, "dns names must be text");
            }
            goto out;
        }
    }
    for (i = 0; fed != NULL && i < json_array_size(fed); i++) {
        const json_t *v = json_array_get(fed, i);
        if (!json_is_string(v) ||
            entry_add_federates_with(e, json_string_value(v), json_string_length(v), err) < 0) {
            if (!json_is_string(v)) {
                (void)ly_error_setx(err, LY_ERR_USAGE, 0, "federates_with names must be text");
            }
            goto out;
        }
    }
    if (entry_validate(e, ca_trust_domain(s->ca), err) < 0 ||
        store_entry_add(s->store, e, err) < 0) {
        goto out;
    }
    res = entry_json(e, err);
    if (res != NULL) {
        log_event(LOG_INFO, "entry.created", LOG_STR, "entry_id", e->id, LOG_STR, "spiffe_id",
                  e->spiffe_id, LOG_END);
        workload_notify(s->wapi); /* entitlement changed for matching workloads */
    }
out:
    entry_free(e);
    return res;
}

static json_t *op_entry_list(struct server *s, const json_t *args, struct ly_error *err)
{
    struct entry **list = NULL;
    size_t n = 0;
    size_t i;
    json_t *arr;

    (void)args;
    if (store_entry_list(s->store, &list, &n, err) < 0) {
        return NULL;
    }
    arr = json_array();
    for (i = 0; arr != NULL && i < n; i++) {
        json_t *j = entry_json(list[i], err);
        if (j == NULL || json_array_append_new(arr, j) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    entry_list_free(list, n);
    if (arr == NULL && err->code == LY_OK) {
        (void)ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    return arr;
}

static json_t *op_entry_show(struct server *s, const json_t *args, struct ly_error *err)
{
    const char *id = arg_str(args, "id");
    struct entry *e = NULL;
    json_t *j;

    if (id == NULL) {
        (void)ly_error_setx(err, LY_ERR_USAGE, 0, "entry.show needs id");
        return NULL;
    }
    if (store_entry_get(s->store, id, &e, err) < 0) {
        return NULL;
    }
    j = entry_json(e, err);
    entry_free(e);
    return j;
}

static json_t *op_entry_delete(struct server *s, const json_t *args, struct ly_error *err)
{
    const char *id = arg_str(args, "id");

    if (id == NULL) {
        (void)ly_error_setx(err, LY_ERR_USAGE, 0, "entry.delete needs id");
        return NULL;
    }
    if (store_entry_delete(s->store, id, err) < 0) {
        return NULL;
    }
    (void)svidcache_drop(s->cache, id);
    log_event(LOG_INFO, "entry.deleted", LOG_STR, "entry_id", id, LOG_END);
    workload_notify(s->wapi);
    return json_pack("{s:s}", "deleted", id);
}

/* Act on what a CA rotation step changed (CA_CHANGED_* bits); the caller pushes to streams. */
static void ca_changes_apply(struct server *s, int changed, int64_t now)
{
    if (changed & CA_CHANGED_BUNDLE) {
        provider_bundle_changed(s->prov);
        log_event(LOG_INFO, "bundle.changed", LOG_END);
    }
    if (changed & CA_CHANGED_SIGNER) {
        svidcache_ca_changed(s->cache, now);
        log_event(LOG_INFO, "ca.took_over", LOG_INT, "active_ca", ca_active_id(s->ca), LOG_END);
    }
    if (changed != 0 && s->fed != NULL) {
        fedsync_bundle_changed(s->fed, (changed & CA_CHANGED_SIGNER) != 0);
    }
}

/* Seconds between publishing the next CA and letting it sign. */
static int64_t ca_publish_delay(const struct server *s)
{
    int64_t d = s->cfg.bundle_refresh_hint + 1;

    return s->cfg.bundle_endpoint[0] != '\0' && d > SERVER_CA_PUBLISH_DELAY
               ? d
               : SERVER_CA_PUBLISH_DELAY;
}

/*
 * `ca rotate`, in two phases. Phase 1 (here): the next CA is prepared and published, and the
 * new bundle is pushed on every open stream at once. Phase 2 (on_tick, at the takeover time
 * recorded in the store): it signs, SVIDs are re-issued from it and pushed, and only then is
 * this request answered, so the CLI reports a finished rotation. Because phase 2 is recorded
 * in the store with phase 1, a crash in between is finished by the next start.
 */
static json_t *op_ca_rotate(struct server *s, const json_t *args, struct ly_error *err)
{
    int64_t now = ly_time_now();
    int64_t delay = ca_publish_delay(s);
    /* +1: `now` is truncated to the second, so the wait is never shorter than the delay. */
    int64_t at = now + delay + 1;
    int changed = 0;

    (void)args;
    if (ca_prepare_now(s->ca, now, at, &changed, err) < 0) {
        return NULL;
    }
    ca_changes_apply(s, changed, now);
    workload_notify(s->wapi); /* the bundle holding the next CA goes out before it signs */
    if (changed & CA_CHANGED_SIGNER) {
        /* The old CA had expired: nothing could wait, the next CA took over at once. */
        return json_pack("{s:I}", "active_ca", (json_int_t)ca_active_id(s->ca));
    }
    log_event(LOG_INFO, "ca.rotation_started", LOG_INT, "takes_over_at", ca_takeover_at(s->ca),
              LOG_INT, "publish_delay_seconds", delay, LOG_END);
    if (delay <= SERVER_CA_PARK_MAX) {
        s->defer_reply = PARK_CA_ROTATE;
    }
    return json_pack("{s:I}", "takes_over_at", (json_int_t)ca_takeover_at(s->ca));
}

/* A parked `federation.refresh` is answered once its fetch was judged. */
static void fed_refresh_done(void *arg, int ok, const char *message)
{
    struct aconn *c = arg;
    json_t *res;

    if (ok) {
        res = json_pack("{s:s}", "message", message);
        aconn_respond(c, res != NULL ? admin_response_ok(res) : NULL);
    } else {
        aconn_respond(c, admin_response_error(LY_ERR_VERIFY, message));
    }
}

static json_t *op_federation_refresh(struct server *s, const json_t *args, struct ly_error *err)
{
    const char *td = arg_str(args, "trust_domain");

    if (td == NULL) {
        (void)ly_error_setx(err, LY_ERR_USAGE, 0, "federation.refresh needs trust_domain");
        return NULL;
    }
    if (s->current == NULL || fedsync_refresh(s->fed, td, fed_refresh_done, s->current, err) < 0) {
        return NULL;
    }
    s->defer_reply = PARK_FED_REFRESH;
    return json_object();
}

typedef json_t *(*admin_op_fn)(struct server *s, const json_t *args, struct ly_error *err);

static const struct {
    const char *name;
    admin_op_fn fn;
} admin_ops[] = {
    {"status", op_status},
    {"entry.create", op_entry_create},
    {"entry.list", op_entry_list},
    {"entry.show", op_entry_show},
    {"entry.delete", op_entry_delete},
    {"ca.rotate", op_ca_rotate},
    {"federation.refresh", op_federation_refresh},
};

static json_t *admin_dispatch(struct server *s, const uint8_t *msg, size_t len)
{
    struct ly_error err;
    json_t *req = NULL;
    json_t *res = NULL;
    json_t *resp;
    const char *op = NULL;
    const json_t *args = NULL;
    size_t i;

    ly_error_clear(&err);
    if (admin_cbor_decode(msg, len, &req, &err) < 0 ||
        admin_request_parse(req, &op, &args, &err) < 0) {
        json_decref(req);
        return admin_response_error(err.code, err.msg);
    }
    for (i = 0; i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++) {
        if (strcmp(admin_ops[i].name, op) == 0) {
            res = admin_ops[i].fn(s, args, &err);
            break;
        }
    }
    if (i == sizeof(admin_ops) / sizeof(admin_ops[0])) {
        (void)ly_error_setx(&err, LY_ERR_USAGE, 0, "unknown admin operation '%.64s'", op);
    }
    resp = res != NULL ? admin_response_ok(res)
                       : admin_response_error(err.code != LY_OK ? err.code : LY_ERR_INTERNAL,
                                              err.msg[0] ? err.msg : "operation failed");
    json_decref(req);
    return resp;
}

/* ---- admin connections --------------------------------------------------------------------- */

static void aconn_close(struct aconn *c)
{
    struct server *s = c->s;
    struct aconn **pp;

    for (pp = &s->aconns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->n_aconns--;
    fedsync_forget(s->fed, c);
    loop_fd_del(s->loop, c->fd);
    loop_timer_del(s->loop, c->timer);
    (void)close(c->fd); /* one request per connection: nothing left to send */
    ly_buf_free(&c->in);
    ly_buf_free(&c->out);
    free(c);
}

static void aconn_io(struct loop *loop, int fd, int mask, void *arg)
{
    struct aconn *c = arg;
    struct ly_error err;

    (void)loop; /* the same loop as c->s->loop, which aconn_respond() uses */
    ly_error_clear(&err);
    if (c->out.data != NULL) {
        while (c->out_off < c->out.len) {
            ssize_t n = send(fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return;
                }
                break;
            }
            c->out_off += (size_t)n;
        }
        aconn_close(c);
        return;
    }
    if (mask & LOOP_READABLE) {
        uint8_t chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        size_t flen = 0;
        json_t *resp;

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        /* One request per connection: a parked one that says more (or hangs up) is closed. */
        if (n <= 0 || c->parked || ly_buf_append(&c->in, chunk, (size_t)n, &err) < 0) {
            aconn_close(c);
            return;
        }
        if (admin_frame_check(c->in.data, c->in.len, &flen, &err) < 0) {
            resp = admin_response_error(err.code, err.msg);
        } else if (flen == 0) {
            return; /* wait for the rest of the frame */
        } else {
            c->s->defer_reply = 0;
            c->s->current = c;
            resp = admin_dispatch(c->s, c->in.data + 4, flen - 4);
            c->s->current = NULL;
            if (c->s->defer_reply) {
                /* Answered later by aconn_respond(); until then only a hang-up is read. */
                c->parked = c->s->defer_reply;
                c->s->defer_reply = 0;
                json_decref(resp);
                return;
            }
        }
        aconn_respond(c, resp);
    }
}

/* Send `resp` (taken over, may be NULL) as this connection's one answer, then close it. */
static void aconn_respond(struct aconn *c, json_t *resp)
{
    struct ly_error err;

    ly_error_clear(&err);
    c->parked = 0;
    if (resp == NULL || admin_frame_encode(resp, &c->out, &err) < 0 ||
        loop_fd_mask(c->s->loop, c->fd, LOOP_WRITABLE, &err) < 0) {
        json_decref(resp);
        aconn_close(c);
        return;
    }
    json_decref(resp);
    aconn_io(c->s->loop, c->fd, LOOP_WRITABLE, c);
}

/*
 * Answer every parked `ca.rotate`: with the active CA once the new one took over, or with the
 * error of the failed rotation step (`failure` non-NULL; the server retries on its own).
 */
static void aconn_answer_parked(struct server *s, const struct ly_error *failure)
{
    struct aconn *c = s->aconns;

    while (c != NULL) {
        struct aconn *next = c->next; /* c may be closed and freed by the answer */
        json_t *res;

        if (c->parked == PARK_CA_ROTATE) {
            if (failure != NULL) {
                aconn_respond(c, admin_response_error(failure->code, failure->msg));
            } else {
                res = json_pack("{s:I}", "active_ca", (json_int_t)ca_active_id(s->ca));
                aconn_respond(c, res != NULL ? admin_response_ok(res) : NULL);
            }
        }
        c = next;
    }
}

static long aconn_timeout(struct loop *loop, uint64_t id, void *arg)
{
    struct aconn *c = arg;

    (void)loop;
    (void)id;
    c->timer = 0;
    aconn_close(c);
    return LOOP_TIMER_DONE;
}

static void admin_accept(struct loop *loop, int fd, int mask, void *arg)
{
    struct server *s = arg;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct ly_error err;
    struct aconn *c;
    int cfd;

    (void)mask;
    cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        return;
    }
    /* Owner-only: the socket's mode says so, and the peer's uid is checked too. */
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 ||
        (cred.uid != geteuid() && cred.uid != 0) || s->n_aconns >= ADMIN_MAX_CONNS) {
        log_event(LOG_WARN, "admin.refused", LOG_INT, "uid", (int64_t)cred.uid, LOG_END);
        (void)close(cfd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        (void)close(cfd);
        return;
    }
    c->s = s;
    c->fd = cfd;
    ly_buf_init(&c->in, ADMIN_MAX_MESSAGE + 4);
    ly_buf_init(&c->out, 0);
    ly_error_clear(&err);
    if (loop_fd_add(loop, cfd, LOOP_READABLE, aconn_io, c, &err) < 0) {
        (void)close(cfd);
        free(c);
        return;
    }
    if (loop_timer_add(loop, ADMIN_TIMEOUT_MS, aconn_timeout, c, &c->timer, &err) < 0) {
        c->timer = 0;
    }
    c->next = s->aconns;
    s->aconns = c;
    s->n_aconns++;
}

static int admin_listen(struct server *s, struct ly_error *err)
{
    struct sockaddr_un sa;
    const char *path = s->cfg.admin_socket;
    struct stat st;
    mode_t old;
    int fd;

    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "%s exists and is not a socket; refusing to replace it", path);
        }
        (void)unlink(path); /* a stale socket from an earlier run */
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "admin socket");
    }
    old = umask(077); /* created 0600: no window in which others could connect */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        umask(old);
        (void)close(fd);
        return ly_error_set(err, LY_ERR_IO, 0, "cannot bind the admin socket %s", path);
    }
    umask(old);
    if (chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
        (void)close(fd);
        return ly_error_set(err, LY_ERR_IO, 0, "cannot listen on the admin socket %s", path);
    }
    if (loop_fd_add(s->loop, fd, LOOP_READABLE, admin_accept, s, err) < 0) {
        (void)close(fd);
        return err->code;
    }
    s->admin_fd = fd;
    return 0;
}

/* ---- health, tick, signals ----------------------------------------------------------------- */

static json_t *health_status(void *arg, int *ready)
{
    struct server *s = arg;

    *ready = 1;
    return json_pack("{s:s, s:s, s:I}", "status", "ok", "trust_domain", ca_trust_domain(s->ca),
                     "streams", (json_int_t)workload_stream_count(s->wapi));
}

static void on_reminted(void *arg, const struct svidcache_svid *svid)
{
    int *count = arg;

    (*count)++;
    log_event(LOG_INFO, "svid.rotated", LOG_STR, "entry_id", svid->entry_id, LOG_STR,
              "spiffe_id", svid->spiffe_id, LOG_INT, "not_after", svid->not_after, LOG_END);
}

static long on_tick(struct loop *loop, uint64_t id, void *arg)
{
    struct server *s = arg;
    struct ly_error err;
    int64_t now = ly_time_now();
    int changed = 0;
    int reminted = 0;
    struct ly_error ca_err;
    int ca_failed = 0;

    (void)loop;
    (void)id;
    ly_error_clear(&err);
    ly_error_clear(&ca_err);
    if (ca_next_event(s->ca, now) <= now) {
        if (ca_maintain(s->ca, now, &changed, &ca_err) < 0) {
            log_event(LOG_ERROR, "ca.maintenance_failed", LOG_STR, "reason", ca_err.msg, LOG_END);
            ca_failed = 1;
        }
        ca_changes_apply(s, changed, now);
    }
    if (svidcache_next_refresh(s->cache) <= now &&
        svidcache_refresh_due(s->cache, now, on_reminted, &reminted, &err) < 0) {
        log_event(LOG_ERROR, "svid.rotation_failed", LOG_STR, "reason", err.msg, LOG_END);
    }
    fedsync_tick(s->fed, now);
    if (changed != 0 || reminted != 0) {
        workload_notify(s->wapi);
    }
    /* Phase 2 of `ca rotate` is done (SVIDs re-issued and pushed above), or it failed. */
    if (changed & CA_CHANGED_SIGNER) {
        aconn_answer_parked(s, NULL);
    } else if (ca_failed) {
        aconn_answer_parked(s, &ca_err);
    }
    return SERVER_TICK_MS;
}

static void on_stop(struct loop *loop, int signo, void *arg)
{
    (void)arg;
    log_event(LOG_INFO, "server.stopping", LOG_INT, "signal", (int64_t)signo, LOG_END);
    loop_stop(loop);
}

static void on_hup(struct loop *loop, int signo, void *arg)
{
    struct server *s = arg;
    struct config c = s->cfg;
    struct ly_error err;

    (void)loop;
    (void)signo;
    ly_error_clear(&err);
    if (s->config_path == NULL) {
        log_event(LOG_INFO, "config.reload_skipped", LOG_STR, "reason", "no config file",
                  LOG_END);
        return;
    }
    if (config_load_file(&c, s->config_path, &err) < 0) {
        log_event(LOG_ERROR, "config.reload_failed", LOG_STR, "reason", err.msg, LOG_END);
        return;
    }
    /* Only settings that are safe to change live are applied; the rest need a restart. */
    s->cfg.log_level = c.log_level;
    s->cfg.default_svid_ttl = c.default_svid_ttl;
    log_set_level(c.log_level);
    fedsync_reload(s->fed); /* the https_web certificate may have been renewed */
    log_event(LOG_INFO, "config.reloaded", LOG_STR, "path", s->config_path, LOG_END);
}

/* Federated bundles (or entries another process wrote) may have changed: recompute streams. */
static void on_federation_changed(void *arg)
{
    struct server *s = arg;

    provider_federation_changed(s->prov);
    workload_notify(s->wapi);
}

static int federation_start(struct server *s, struct ly_error *err)
{
    struct fedsync_config fc;
    int rc;

    memset(&fc, 0, sizeof(fc));
    fc.endpoint_listen = s->cfg.bundle_endpoint;
    fc.web_cert = s->cfg.web_cert;
    fc.web_key = s->cfg.web_key;
    rc = fed_profile_parse(s->cfg.bundle_endpoint_profile, &fc.endpoint_profile, err);
    if (rc == 0) {
        ca_set_refresh_hint(s->ca, s->cfg.bundle_refresh_hint);
        rc = fedsync_new(s->loop, s->ca, s->store, &fc, on_federation_changed, s, &s->fed, err);
    }
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static int ensure_ca(struct server *s, struct ly_error *err)
{
    char db[CONFIG_PATH_MAX + 16];
    int n;

    n = snprintf(db, sizeof(db), "%s/lanyard.db", s->cfg.data_dir);
    if (n < 0 || (size_t)n >= sizeof(db)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "data directory path too long");
    }
    if (ca_open(s->cfg.data_dir, &s->ca, err) == 0) {
        if (s->cfg.trust_domain[0] != '\0' &&
            strcmp(s->cfg.trust_domain, ca_trust_domain(s->ca)) != 0) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "%s holds trust domain %s, not the configured %s",
                                 s->cfg.data_dir, ca_trust_domain(s->ca), s->cfg.trust_domain);
        }
        return 0;
    }
    if (err->code != LY_ERR_USAGE || s->cfg.trust_domain[0] == '\0') {
        return err->code;
    }
    /* An empty data directory and a configured trust domain: create the CA. */
    {
        struct ca_init_params p = {s->cfg.trust_domain, s->cfg.ca_key_type, s->cfg.ca_ttl};
        ly_error_clear(err);
        if (ca_init(s->cfg.data_dir, &p, err) < 0) {
            return err->code;
        }
        log_event(LOG_INFO, "ca.initialised", LOG_STR, "trust_domain", p.trust_domain, LOG_END);
    }
    return ca_open(s->cfg.data_dir, &s->ca, err);
}

int server_run(const struct config *cfg, const char *config_path)
{
    struct server s;
    struct ly_error err;
    char db[CONFIG_PATH_MAX + 16];
    int rc;

    memset(&s, 0, sizeof(s));
    s.cfg = *cfg;
    s.config_path = config_path;
    s.admin_fd = -1;
    s.started = ly_time_now();
    s.exit_code = 3;
    ly_error_clear(&err);
    log_set_level(cfg->log_level);
    (void)signal(SIGPIPE, SIG_IGN); /* every send uses MSG_NOSIGNAL; this is belt and braces */
    rc = ensure_ca(&s, &err);
    if (rc < 0) {
        s.exit_code = rc == LY_ERR_USAGE ? 2 : 3;
        goto out;
    }
    (void)snprintf(db, sizeof(db), "%s/lanyard.db", s.cfg.data_dir);
    if (store_open(db, &s.store, &err) < 0 ||
        svidcache_new(s.ca, SVID_KEY_EC_P256, SVID_IDLE_KEEP, &s.cache, &err) < 0 ||
        provider_new(s.ca, s.cache, db, s.cfg.jwt_ttl, &s.prov, &err) < 0 ||
        loop_new(&s.loop, &err) < 0 ||
        workload_new(s.loop, s.cfg.workload_socket, &provider_ops, s.prov, &s.wapi, &err) < 0 ||
        admin_listen(&s, &err) < 0 ||
        loop_signal_add(s.loop, SIGTERM, on_stop, &s, &err) < 0 ||
        loop_signal_add(s.loop, SIGINT, on_stop, &s, &err) < 0 ||
        loop_signal_add(s.loop, SIGHUP, on_hup, &s, &err) < 0 ||
        loop_timer_add(s.loop, SERVER_TICK_MS, on_tick, &s, &s.tick, &err) < 0 ||
        federation_start(&s, &err) < 0) {
        goto out;
    }
    if (s.cfg.health_listen[0] != '\0') {
        char host[64];
        int port;
        if (config_parse_listen(s.cfg.health_listen, host, sizeof(host), &port, &err) < 0 ||
            health_new(s.loop, host, port, health_status, &s, &s.health, &err) < 0) {
            goto out;
        }
    }
    log_event(LOG_INFO, "server.started", LOG_STR, "version", SERVER_VERSION, LOG_STR,
              "trust_domain", ca_trust_domain(s.ca), LOG_STR, "workload_socket",
              s.cfg.workload_socket, LOG_STR, "admin_socket", s.cfg.admin_socket, LOG_STR,
              "health", s.cfg.health_listen, LOG_INT, "pid", (int64_t)getpid(), LOG_END);
    if (loop_run(s.loop, &err) < 0) {
        goto out;
    }
    s.exit_code = 0;
out:
    if (s.exit_code != 0) {
        log_event(LOG_ERROR, "server.failed", LOG_STR, "reason", err.msg, LOG_END);
    }
    while (s.aconns != NULL) {
        aconn_close(s.aconns);
    }
    if (s.admin_fd >= 0) {
        loop_fd_del(s.loop, s.admin_fd);
        (void)close(s.admin_fd);
        (void)unlink(s.cfg.admin_socket);
    }
    health_free(s.health);
    fedsync_free(s.fed);
    workload_free(s.wapi);
    provider_free(s.prov);
    svidcache_free(s.cache);
    store_close(s.store);
    ca_close(s.ca);
    loop_free(s.loop);
    if (s.exit_code == 0) {
        log_event(LOG_INFO, "server.stopped", LOG_END);
    }
    return s.exit_code;
}
