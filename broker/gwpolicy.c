/*
 * gwpolicy: a reference-counted consent index swapped under a mutex when the store's data
 * version moves, and a bounded session table (hash buckets + an LRU list). The store handle is
 * only ever used with the mutex held; decisions run outside it on their own snapshot.
 */
#define _GNU_SOURCE
#include "gwpolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ly_file.h"
#include "store.h"

#define N_BUCKETS 16384

struct gwpolicy_snap {
    atomic_int refs;
    struct consent_index *idx;
};

struct sess {
    struct sess *next;            /* bucket chain */
    struct sess *lru_prev, *lru_next;
    size_t len;
    char *client;
    char *user; /* NULL: workload-only */
    char sid[GWPOLICY_SESSION_ID_MAX + 1];
};

struct gwpolicy {
    pthread_mutex_t mu;
    struct store *store;
    int64_t version;
    char *path;
    int ino_fd; /* inotify on the database and its WAL, or -1: then every snapshot asks SQLite */
    struct gwpolicy_snap *cur;
    uint64_t rebuilds;

    pthread_mutex_t smu;
    struct sess *buckets[N_BUCKETS];
    struct sess *lru_head, *lru_tail; /* head = most recently used */
    size_t n_sess;
};

static void snap_unref(struct gwpolicy_snap *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) {
        return;
    }
    consent_index_free(s->idx);
    free(s);
}

/* Build a fresh index from every record; called with p->mu held. */
static int rebuild(struct gwpolicy *p, struct ly_error *err)
{
    struct consent **recs = NULL;
    size_t n = 0;
    struct gwpolicy_snap *s;
    int rc;

    rc = store_consent_list(p->store, NULL, NULL, &recs, &n, err);
    if (rc < 0) {
        return rc;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        consent_list_free(recs, n);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    atomic_init(&s->refs, 1);
    rc = consent_index_build(recs, n, &s->idx, err);
    consent_list_free(recs, n);
    if (rc < 0) {
        free(s);
        return rc;
    }
    snap_unref(p->cur);
    p->cur = s;
    p->rebuilds++;
    return 0;
}

/* Watch the database file and its WAL for writes by any process; mu held (or at open). */
static void watch_store(struct gwpolicy *p)
{
    char wal[4096];
    int n = snprintf(wal, sizeof(wal), "%s-wal", p->path);

    if (p->ino_fd < 0) {
        p->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    }
    if (p->ino_fd < 0) {
        return;
    }
    if (n < 0 || (size_t)n >= sizeof(wal) ||
        inotify_add_watch(p->ino_fd, p->path, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                                  IN_MOVE_SELF) < 0 ||
        inotify_add_watch(p->ino_fd, wal, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                              IN_MOVE_SELF) < 0) {
        (void)close(p->ino_fd);
        p->ino_fd = -1;
    }
}

/*
 * 1 when the store may have changed since the last look (or we cannot tell), 0 when it
 * certainly has not. A commit by any process writes the WAL with write(2), which queues an
 * inotify event before that process's COMMIT returns; so a request that starts after a
 * `lanyard consent revoke` finished always finds the event here and rechecks. Only the data
 * version decides what changed; this merely spares asking SQLite when nothing was written.
 */
static int store_maybe_changed(struct gwpolicy *p)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changed = 0;
    int rewatch = 0;

    if (p->ino_fd < 0) {
        return 1;
    }
    for (;;) {
        ssize_t n = read(p->ino_fd, buf, sizeof(buf));
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            changed = rewatch = 1;
            break;
        }
        changed = 1;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)(buf + off);
            if (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)) {
                rewatch = 1;
            }
            off += (ssize_t)sizeof(struct inotify_event) + (ssize_t)ev->len;
        }
    }
    if (rewatch) {
        /* A file was replaced or events were lost: start over (or fall back to asking). */
        if (p->ino_fd >= 0) {
            (void)close(p->ino_fd);
            p->ino_fd = -1;
        }
        watch_store(p);
    }
    return changed;
}

int gwpolicy_open(const char *store_path, struct gwpolicy **out, struct ly_error *err)
{
    struct gwpolicy *p;
    int rc;

    *out = NULL;
    if (store_path == NULL || !ly_file_exists(store_path)) {
        return ly_error_setx(err, LY_ERR_IO, 0,
                             "no lanyard store at %.200s (start `lanyard server` on this data "
                             "directory first)",
                             store_path != NULL ? store_path : "(null)");
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    p->ino_fd = -1;
    p->path = strdup(store_path);
    if (p->path == NULL) {
        free(p);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_mutex_init(&p->smu, NULL) != 0) {
        free(p);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "mutex init failed");
    }
    rc = store_open(store_path, &p->store, err);
    if (rc == 0) {
        /* Watch before reading, so a write racing the first load is noticed. */
        watch_store(p);
        rc = store_data_version(p->store, &p->version, err);
    }
    if (rc == 0) {
        rc = rebuild(p, err);
    }
    if (rc < 0) {
        (void)ly_error_wrap(err, "consent store %.200s", store_path);
        gwpolicy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void gwpolicy_free(struct gwpolicy *p)
{
    if (p == NULL) {
        return;
    }
    snap_unref(p->cur);
    p->cur = NULL;
    store_close(p->store);
    if (p->ino_fd >= 0) {
        (void)close(p->ino_fd);
    }
    free(p->path);
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct sess *e = p->buckets[i];
        while (e != NULL) {
            struct sess *nx = e->next;
            free(e->client);
            free(e->user);
            free(e);
            e = nx;
        }
    }
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->smu);
    free(p);
}

struct gwpolicy_snap *gwpolicy_snapshot(struct gwpolicy *p, struct ly_error *err)
{
    struct gwpolicy_snap *s = NULL;
    int64_t v = 0;

    pthread_mutex_lock(&p->mu);
    if (!store_maybe_changed(p)) {
        goto take;
    }
    if (store_data_version(p->store, &v, err) < 0) {
        goto out;
    }
    if (v != p->version) {
        /* Another connection committed: consent may have been granted or revoked. */
        if (rebuild(p, err) < 0) {
            goto out;
        }
        p->version = v;
    }
take:
    s = p->cur;
    atomic_fetch_add(&s->refs, 1);
out:
    pthread_mutex_unlock(&p->mu);
    return s;
}

void gwpolicy_release(struct gwpolicy_snap *s)
{
    snap_unref(s);
}

size_t gwpolicy_snap_count(const struct gwpolicy_snap *s)
{
    return consent_index_count(s->idx);
}

uint64_t gwpolicy_rebuilds(struct gwpolicy *p)
{
    uint64_t n;

    pthread_mutex_lock(&p->mu);
    n = p->rebuilds;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int gwpolicy_decide(const struct gwpolicy_snap *s, const char *user,
                    const struct spiffeid *client, const char *op_kind, const char *target,
                    int64_t now, struct gwpolicy_verdict *out)
{
    struct consent_decision d;
    int plumbing = strcmp(op_kind, CONSENT_OP_PLUMBING) == 0;
    int n;

    memset(out, 0, sizeof(*out));
    out->allow = consent_decide_from(s->idx, user, client, NULL, op_kind,
                                     plumbing ? "" : target, now, &d) == 1;
    out->reason = d.reason;
    if (d.record_id != NULL) {
        (void)snprintf(out->consent_id, sizeof(out->consent_id), "%s", d.record_id);
    }
    if (!plumbing) {
        n = snprintf(out->scope, sizeof(out->scope), "%s:%s", op_kind, target);
        if (n < 0 || (size_t)n >= sizeof(out->scope)) {
            out->scope[0] = '\0';
        }
    }
    if (plumbing && !out->allow && d.reason == CONSENT_R_NO_RECORD) {
        (void)snprintf(out->text, sizeof(out->text),
                       "no consent for this user and client");
    } else if (plumbing && out->allow) {
        (void)snprintf(out->text, sizeof(out->text), "protocol method allowed by consent %s",
                       out->consent_id);
    } else {
        (void)consent_decision_describe(&d, out->text, sizeof(out->text));
    }
    return out->allow;
}

/* ---- sessions ---------------------------------------------------------------------------- */

static int sid_ok(const char *sid, size_t len)
{
    if (sid == NULL || len == 0 || len > GWPOLICY_SESSION_ID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)sid[i];
        if (ch < 0x21 || ch > 0x7e) {
            return 0;
        }
    }
    return 1;
}

static size_t bucket_of(const char *sid, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)sid[i]) * 1099511628211ULL;
    }
    return (size_t)(h % N_BUCKETS);
}

static struct sess **find_slot(struct gwpolicy *p, const char *sid, size_t len)
{
    struct sess **pp = &p->buckets[bucket_of(sid, len)];
    while (*pp != NULL && ((*pp)->len != len || memcmp((*pp)->sid, sid, len) != 0)) {
        pp = &(*pp)->next;
    }
    return pp;
}

static void lru_unlink(struct gwpolicy *p, struct sess *e)
{
    if (e->lru_prev != NULL) {
        e->lru_prev->lru_next = e->lru_next;
    } else {
        p->lru_head = e->lru_next;
    }
    if (e->lru_next != NULL) {
        e->lru_next->lru_prev = e->lru_prev;
    } else {
        p->lru_tail = e->lru_prev;
    }
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct gwpolicy *p, struct sess *e)
{
    e->lru_prev = NULL;
    e->lru_next = p->lru_head;
    if (p->lru_head != NULL) {
        p->lru_head->lru_prev = e;
    }
    p->lru_head = e;
    if (p->lru_tail == NULL) {
        p->lru_tail = e;
    }
}

/* Remove e from its bucket and the LRU list and free it; smu held. */
static void sess_remove(struct gwpolicy *p, struct sess *e)
{
    struct sess **pp = find_slot(p, e->sid, e->len);
    if (*pp == e) {
        *pp = e->next;
    }
    lru_unlink(p, e);
    free(e->client);
    free(e->user);
    free(e);
    p->n_sess--;
}

int gwpolicy_session_bind(struct gwpolicy *p, const char *sid, size_t len,
                          const struct spiffeid *client, const char *user,
                          struct ly_error *err)
{
    struct sess *e;
    struct sess **pp;

    if (!sid_ok(sid, len)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "the upstream's Mcp-Session-Id is not 1..%d visible ASCII bytes",
                             GWPOLICY_SESSION_ID_MAX);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(e->sid, sid, len);
    e->len = len;
    e->client = strndup(client->str, client->len);
    e->user = user != NULL ? strdup(user) : NULL;
    if (e->client == NULL || (user != NULL && e->user == NULL)) {
        free(e->client);
        free(e->user);
        free(e);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    pthread_mutex_lock(&p->smu);
    pp = find_slot(p, sid, len);
    if (*pp != NULL) {
        /* The upstream reused an id: the newest opener owns it. */
        sess_remove(p, *pp);
        pp = find_slot(p, sid, len);
    }
    while (p->n_sess >= GWPOLICY_MAX_SESSIONS && p->lru_tail != NULL) {
        sess_remove(p, p->lru_tail);
        pp = find_slot(p, sid, len);
    }
    *pp = e;
    lru_push(p, e);
    p->n_sess++;
    pthread_mutex_unlock(&p->smu);
    return 0;
}

enum gwpolicy_session gwpolicy_session_check(struct gwpolicy *p, const char *sid, size_t len,
                                             const struct spiffeid *client, const char *user)
{
    enum gwpolicy_session r;
    struct sess *e;

    if (!sid_ok(sid, len)) {
        return GWPOLICY_SESSION_BAD_ID;
    }
    pthread_mutex_lock(&p->smu);
    e = *find_slot(p, sid, len);
    if (e == NULL) {
        r = GWPOLICY_SESSION_UNKNOWN;
    } else if (strlen(e->client) != client->len ||
               memcmp(e->client, client->str, client->len) != 0) {
        r = GWPOLICY_SESSION_OTHER_CLIENT;
    } else if ((e->user == NULL) != (user == NULL) ||
               (user != NULL && strcmp(e->user, user) != 0)) {
        r = GWPOLICY_SESSION_OTHER_USER;
    } else {
        r = GWPOLICY_SESSION_OK;
        lru_unlink(p, e);
        lru_push(p, e);
    }
    pthread_mutex_unlock(&p->smu);
    return r;
}

void gwpolicy_session_drop(struct gwpolicy *p, const char *sid, size_t len)
{
    struct sess *e;

    if (!sid_ok(sid, len)) {
        return;
    }
    pthread_mutex_lock(&p->smu);
    e = *find_slot(p, sid, len);
    if (e != NULL) {
        sess_remove(p, e);
    }
    pthread_mutex_unlock(&p->smu);
}

size_t gwpolicy_session_count(struct gwpolicy *p)
{
    size_t n;

    pthread_mutex_lock(&p->smu);
    n = p->n_sess;
    pthread_mutex_unlock(&p->smu);
    return n;
}

const char *gwpolicy_session_text(enum gwpolicy_session r)
{
    switch (r) {
    case GWPOLICY_SESSION_OK:
        return "session bound to this client and user";
    case GWPOLICY_SESSION_UNKNOWN:
        return "unknown or ended session";
    case GWPOLICY_SESSION_OTHER_CLIENT:
        return "session opened by another client";
    case GWPOLICY_SESSION_OTHER_USER:
        return "session opened for another user";
    case GWPOLICY_SESSION_BAD_ID:
    default:
        return "malformed session id";
    }
}
