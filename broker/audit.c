/*
 * audit: append-only, hash-chained decision records in DATA/audit.log, encoded with the admin
 * module's strict CBOR codec. Appends are one write(2) + fdatasync(2) on an O_APPEND descriptor;
 * the file is never rewritten or repaired, and no token or key may be written into it.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "../common/ly_buf.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "admin.h"

struct audit_log {
    int fd;
    int broken; /* a write failed: the file may end in a torn record, append no more */
    int deferred; /* 1: appends leave fdatasync to audit_sync() */
    int dirty;    /* written since the last fdatasync */
    uint64_t next_seq;
    uint8_t last_hash[32];
};

/* The text fields of a record, in the order they are checked. */
static const char *const text_fields[] = {"client_id", "cert_sha256", "user",   "method",
                                          "target",    "decision",    "reason", "consent_id"};
#define N_TEXT_FIELDS (sizeof(text_fields) / sizeof(text_fields[0]))
/* seq, time, prev and the text fields: a record holds exactly these keys. */
#define N_RECORD_KEYS (N_TEXT_FIELDS + 3)

static int is_hex64(const char *s)
{
    size_t i;

    for (i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return s[64] == '\0';
}

static int sha256(const uint8_t *data, size_t len, uint8_t out[32], struct ly_error *err)
{
    if (len > 0xffffffffu || wc_Sha256Hash(data, (word32)len, out) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "audit: SHA-256 failed");
    }
    return 0;
}

int audit_value_is_secret(const char *value)
{
    const char *p;

    if (value == NULL) {
        return 0;
    }
    /* A JWT/JWS compact serialisation starts with base64url("{\"") = "eyJ"; refuse it at the
     * start of the value or of any word, so "Bearer eyJ..." is caught too. */
    for (p = value; (p = strstr(p, "eyJ")) != NULL; p++) {
        if (p == value || p[-1] == ' ' || p[-1] == ':' || p[-1] == '=' || p[-1] == '.' ||
            p[-1] == '"') {
            return 1;
        }
    }
    return strstr(value, "-----BEGIN") != NULL || strstr(value, "PRIVATE KEY") != NULL ||
           strncmp(value, "Bearer ", 7) == 0 || strncmp(value, "bearer ", 7) == 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Take a text-or-null field of a decoded record; 0, or -1 when it is of another type. */
static int take_text(const json_t *rec, const char *key, const char **out)
{
    const json_t *v = json_object_get(rec, key);

    *out = NULL;
    if (v == NULL) {
        return -1;
    }
    if (json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > AUDIT_MAX_FIELD ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Check a decoded record's shape and fill r (borrowing from rec). 0 or -1 with *why set. */
static int record_shape(const json_t *rec, struct audit_record *r, const char **why)
{
    const json_t *seq = json_object_get(rec, "seq");
    const json_t *tm = json_object_get(rec, "time");
    const json_t *prev = json_object_get(rec, "prev");
    const char **slots[N_TEXT_FIELDS];
    struct ly_error e;
    size_t i;

    slots[0] = &r->client_id;
    slots[1] = &r->cert_sha256;
    slots[2] = &r->user;
    slots[3] = &r->method;
    slots[4] = &r->target;
    slots[5] = &r->decision;
    slots[6] = &r->reason;
    slots[7] = &r->consent_id;
    if (!json_is_object(rec) || json_object_size(rec) != N_RECORD_KEYS) {
        *why = "not a map of the audit record's fields";
        return -1;
    }
    if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
        *why = "seq is not a positive integer";
        return -1;
    }
    r->seq = (uint64_t)json_integer_value(seq);
    ly_error_clear(&e);
    if (!json_is_string(tm) || ly_time_parse_rfc3339(json_string_value(tm), &r->time, &e) < 0) {
        *why = "time is not an RFC 3339 timestamp";
        return -1;
    }
    r->time_str = json_string_value(tm);
    if (!json_is_string(prev) || json_string_length(prev) != 64 ||
        !is_hex64(json_string_value(prev))) {
        *why = "prev is not a hex SHA-256";
        return -1;
    }
    r->prev = json_string_value(prev);
    for (i = 0; i < N_TEXT_FIELDS; i++) {
        if (take_text(rec, text_fields[i], slots[i]) < 0) {
            *why = "a text field is missing or of the wrong type";
            return -1;
        }
    }
    if (r->client_id == NULL || r->method == NULL || r->reason == NULL || r->decision == NULL ||
        (strcmp(r->decision, "allow") != 0 && strcmp(r->decision, "deny") != 0)) {
        *why = "a required field is null or decision is not allow/deny";
        return -1;
    }
    if (r->cert_sha256 != NULL && !is_hex64(r->cert_sha256)) {
        *why = "cert_sha256 is not a hex SHA-256";
        return -1;
    }
    r->json = rec;
    return 0;
}

static int filter_match(const struct audit_filter *f, const struct audit_record *r)
{
    if (f == NULL) {
        return 1;
    }
    if (f->since != 0 && r->time < f->since) {
        return 0;
    }
    if (f->client_id != NULL && strcmp(f->client_id, r->client_id) != 0) {
        return 0;
    }
    if (f->user != NULL && (r->user == NULL || strcmp(f->user, r->user) != 0)) {
        return 0;
    }
    return f->decision == NULL || strcmp(f->decision, r->decision) == 0;
}

int audit_scan_mem(const uint8_t *data, size_t len, const struct audit_filter *filter,
                   audit_scan_cb cb, void *arg, struct audit_scan_info *info, struct ly_error *err)
{
    struct audit_scan_info st;
    char want[AUDIT_HEX_LEN];
    size_t off = 0;
    int rc = 0;

    memset(&st, 0, sizeof(st));
    while (off < len) {
        struct audit_record r;
        json_t *rec = NULL;
        const char *why = NULL;
        uint32_t plen;
        struct ly_error de;

        /* Framing: 4-byte big-endian length, then exactly that many CBOR bytes. */
        if (len - off < 4) {
            st.broken_seq = st.last_seq + 1;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_TRUNCATED,
                               "audit record seq %" PRIu64 " (expected after seq %" PRIu64
                               ") at offset %zu: truncated length prefix (%zu stray bytes; an "
                               "interrupted write or garbage)",
                               st.last_seq + 1, st.last_seq, off, len - off);
            break;
        }
        plen = ((uint32_t)data[off] << 24) | ((uint32_t)data[off + 1] << 16) |
               ((uint32_t)data[off + 2] << 8) | (uint32_t)data[off + 3];
        if (plen == 0 || plen > AUDIT_MAX_RECORD) {
            st.broken_seq = st.last_seq + 1;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_FRAMING,
                               "audit record seq %" PRIu64 " (expected after seq %" PRIu64
                               ") at offset %zu: bad framing (length %" PRIu32
                               "; garbage or an edited length)",
                               st.last_seq + 1, st.last_seq, off, plen);
            break;
        }
        if (len - off - 4 < plen) {
            st.broken_seq = st.last_seq + 1;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_TRUNCATED,
                               "audit record seq %" PRIu64 " (expected after seq %" PRIu64
                               ") at offset %zu: truncated (%" PRIu32
                               " bytes announced, %zu present; an interrupted write?)",
                               st.last_seq + 1, st.last_seq, off, plen, len - off - 4);
            break;
        }
        ly_error_clear(&de);
        memset(&r, 0, sizeof(r));
        r.offset = off;
        if (admin_cbor_decode(data + off + 4, plen, &rec, &de) < 0) {
            why = de.msg;
        } else if (record_shape(rec, &r, &why) == 0) {
            why = NULL;
        }
        if (why != NULL) {
            st.broken_seq = st.last_seq + 1;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_RECORD,
                               "audit record seq %" PRIu64 " (expected after seq %" PRIu64
                               ") at offset %zu: not a valid record (%s; edited or garbage)",
                               st.last_seq + 1, st.last_seq, off, why);
            json_decref(rec);
            break;
        }
        /* The chain: seq counts up by one from 1, prev is the hash of the previous frame. */
        if (r.seq > st.last_seq + 1) {
            st.broken_seq = st.last_seq + 1;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_SEQ_GAP,
                               "audit record seq %" PRIu64 " missing: seq %" PRIu64
                               " at offset %zu follows seq %" PRIu64 " (record deleted or moved)",
                               st.last_seq + 1, r.seq, off, st.last_seq);
            json_decref(rec);
            break;
        }
        if (r.seq <= st.last_seq) {
            st.broken_seq = r.seq;
            rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_SEQ_ORDER,
                               "audit record seq %" PRIu64 " at offset %zu follows seq %" PRIu64
                               " (records reordered or duplicated)",
                               r.seq, off, st.last_seq);
            json_decref(rec);
            break;
        }
        ly_hex_encode(st.last_hash, sizeof(st.last_hash), want);
        if (strcmp(want, r.prev) != 0) {
            /* The record before this one no longer hashes to what this one recorded. */
            st.broken_seq = st.last_seq > 0 ? st.last_seq : r.seq;
            if (st.last_seq > 0) {
                rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_HASH,
                                   "audit record seq %" PRIu64
                                   ": hash mismatch, the prev hash in seq %" PRIu64
                                   " (offset %zu) does not match it (record edited or reordered)",
                                   st.last_seq, r.seq, off);
            } else {
                rc = ly_error_setx(err, LY_ERR_VERIFY, AUDIT_R_HASH,
                                   "audit record seq %" PRIu64
                                   ": hash mismatch, the first record's prev is not zero "
                                   "(record edited)",
                                   r.seq);
            }
            json_decref(rec);
            break;
        }
        rc = sha256(data + off, (size_t)plen + 4, st.last_hash, err);
        if (rc == 0 && cb != NULL && filter_match(filter, &r)) {
            rc = cb(&r, arg);
        }
        json_decref(rec);
        if (rc < 0) {
            break;
        }
        st.records++;
        st.last_seq = r.seq;
        off += (size_t)plen + 4;
        st.good_len = off;
    }
    if (info != NULL) {
        *info = st;
    }
    return rc;
}

/* Read all of fd (a regular file, at most AUDIT_MAX_FILE bytes) into out (initialised here). */
static int read_fd(int fd, struct ly_buf *out, struct ly_error *err)
{
    struct stat sb;
    off_t pos = 0;

    ly_buf_init(out, AUDIT_MAX_FILE);
    if (fstat(fd, &sb) != 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "audit: fstat");
    }
    if (!S_ISREG(sb.st_mode)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "audit: not a regular file");
    }
    if ((uint64_t)sb.st_size > AUDIT_MAX_FILE) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "audit: file larger than %u bytes",
                             AUDIT_MAX_FILE);
    }
    for (;;) {
        ssize_t n;
        int rc = ly_buf_reserve(out, 65536, err);
        if (rc < 0) {
            return rc;
        }
        n = pread(fd, out->data + out->len, 65536, pos);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ly_buf_free(out);
            return ly_error_set(err, LY_ERR_IO, 0, "audit: read");
        }
        if (n == 0) {
            break;
        }
        out->len += (size_t)n;
        out->data[out->len] = 0;
        pos += n;
    }
    return 0;
}

int audit_scan(const char *path, const struct audit_filter *filter, audit_scan_cb cb, void *arg,
               struct audit_scan_info *info, struct ly_error *err)
{
    struct ly_buf file;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc;

    if (info != NULL) {
        memset(info, 0, sizeof(*info));
    }
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot open audit log %.200s", path);
    }
    rc = read_fd(fd, &file, err);
    (void)close(fd);
    if (rc < 0) {
        ly_buf_free(&file);
        return rc;
    }
    rc = audit_scan_mem(file.data, file.len, filter, cb, arg, info, err);
    ly_buf_free(&file);
    return rc;
}

/* ---- appending --------------------------------------------------------------------------- */

int audit_open(const char *path, struct audit_log **log, struct ly_error *err)
{
    struct audit_log *l;
    struct audit_scan_info info;
    struct ly_buf file;
    struct flock lk;
    struct stat sb;
    int rc;

    *log = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "audit: out of memory");
    }
    l->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l->fd < 0) {
        free(l);
        return ly_error_set(err, LY_ERR_IO, 0, "cannot open audit log %.200s", path);
    }
    /* Check the descriptor we hold, not the path (no check-then-open race). */
    if (fstat(l->fd, &sb) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "audit: fstat %.200s", path);
        goto fail;
    }
    if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0 || sb.st_uid != geteuid()) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                           "audit log %.200s must be a regular file owned by this user with "
                           "mode 0600",
                           path);
        goto fail;
    }
    /* One appender at a time: two writers would fork the chain. */
    memset(&lk, 0, sizeof(lk));
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(l->fd, F_SETLK, &lk) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "audit log %.200s is in use by another process", path);
        goto fail;
    }
    rc = read_fd(l->fd, &file, err);
    if (rc == 0) {
        rc = audit_scan_mem(file.data, file.len, NULL, NULL, NULL, &info, err);
    }
    ly_buf_free(&file);
    if (rc < 0) {
        (void)ly_error_wrap(err, "audit log %.200s (left untouched)", path);
        goto fail;
    }
    l->next_seq = info.last_seq + 1;
    memcpy(l->last_hash, info.last_hash, sizeof(l->last_hash));
    *log = l;
    return 0;
fail:
    (void)close(l->fd);
    free(l);
    return rc;
}

uint64_t audit_next_seq(const struct audit_log *log)
{
    return log->next_seq;
}

/* Check one event field: length cap, no secrets. `required` fields may not be NULL or empty. */
static int check_field(const char *name, const char *v, int required, struct ly_error *err)
{
    if (v == NULL) {
        if (required) {
            return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD, "audit: %s is required", name);
        }
        return 0;
    }
    if ((required && v[0] == '\0') || strlen(v) > AUDIT_MAX_FIELD) {
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD, "audit: %s is empty or too long",
                             name);
    }
    if (audit_value_is_secret(v)) {
        /* Never echo the value: it may be the very token or key being kept out. */
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_SECRET,
                             "audit: refused %s that looks like a token or key", name);
    }
    return 0;
}

static json_t *text_or_null(const char *v)
{
    return v != NULL ? json_string(v) : json_null();
}

int audit_append(struct audit_log *log, const struct audit_event *ev, struct ly_error *err)
{
    const char *vals[N_TEXT_FIELDS];
    static const int required[N_TEXT_FIELDS] = {1, 0, 0, 1, 0, 1, 1, 0};
    char tbuf[32];
    char prev[AUDIT_HEX_LEN];
    struct ly_buf cbor;
    struct ly_buf frame;
    uint8_t hdr[4];
    uint8_t h[32];
    json_t *rec;
    ssize_t n;
    size_t i;
    int rc;

    if (log->broken) {
        return ly_error_setx(err, LY_ERR_IO, AUDIT_R_BROKEN_WRITER,
                             "audit: an earlier write failed; reopen the log to check it");
    }
    vals[0] = ev->client_id;
    vals[1] = ev->cert_sha256;
    vals[2] = ev->user;
    vals[3] = ev->method;
    vals[4] = ev->target;
    vals[5] = ev->decision;
    vals[6] = ev->reason;
    vals[7] = ev->consent_id;
    for (i = 0; i < N_TEXT_FIELDS; i++) {
        rc = check_field(text_fields[i], vals[i], required[i], err);
        if (rc < 0) {
            return rc;
        }
        if (vals[i] != NULL) {
            json_t *probe = json_string(vals[i]);
            if (probe == NULL) {
                return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD, "audit: %s is not UTF-8",
                                     text_fields[i]);
            }
            json_decref(probe);
        }
    }
    if (strcmp(ev->decision, "allow") != 0 && strcmp(ev->decision, "deny") != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD,
                             "audit: decision must be allow or deny");
    }
    if (ev->cert_sha256 != NULL && !is_hex64(ev->cert_sha256)) {
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD,
                             "audit: cert_sha256 must be 64 lower-case hex digits");
    }
    if (log->next_seq > (uint64_t)INT64_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD, "audit: seq exhausted");
    }
    rc = ly_time_format_rfc3339(ev->time != 0 ? ev->time : ly_time_now(), tbuf, sizeof(tbuf), err);
    if (rc < 0) {
        return rc;
    }
    ly_hex_encode(log->last_hash, sizeof(log->last_hash), prev);
    rec = json_object();
    if (rec == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "audit: out of memory");
    }
    rc = json_object_set_new(rec, "seq", json_integer((json_int_t)log->next_seq));
    rc |= json_object_set_new(rec, "time", json_string(tbuf));
    for (i = 0; i < N_TEXT_FIELDS; i++) {
        rc |= json_object_set_new(rec, text_fields[i], text_or_null(vals[i]));
    }
    rc |= json_object_set_new(rec, "prev", json_string(prev));
    if (rc != 0) {
        json_decref(rec);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "audit: out of memory");
    }
    rc = admin_cbor_encode(rec, &cbor, err);
    json_decref(rec);
    if (rc < 0) {
        return rc;
    }
    if (cbor.len > AUDIT_MAX_RECORD) {
        ly_buf_free(&cbor);
        return ly_error_setx(err, LY_ERR_USAGE, AUDIT_R_FIELD, "audit: record too large");
    }
    hdr[0] = (uint8_t)(cbor.len >> 24);
    hdr[1] = (uint8_t)(cbor.len >> 16);
    hdr[2] = (uint8_t)(cbor.len >> 8);
    hdr[3] = (uint8_t)cbor.len;
    ly_buf_init(&frame, AUDIT_MAX_RECORD + 4);
    rc = ly_buf_append(&frame, hdr, sizeof(hdr), err);
    if (rc == 0) {
        rc = ly_buf_append(&frame, cbor.data, cbor.len, err);
    }
    ly_buf_free(&cbor);
    if (rc == 0) {
        rc = sha256(frame.data, frame.len, h, err);
    }
    if (rc < 0) {
        ly_buf_free(&frame);
        return rc;
    }
    /* One write of the whole frame, so a crash leaves at most one torn record at the end. */
    do {
        n = write(log->fd, frame.data, frame.len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != frame.len) {
        log->broken = 1;
        ly_buf_free(&frame);
        if (n < 0) {
            return ly_error_set(err, LY_ERR_IO, 0, "audit: write");
        }
        return ly_error_setx(err, LY_ERR_IO, 0, "audit: short write (%zd bytes)", n);
    }
    ly_buf_free(&frame);
    if (log->deferred) {
        log->dirty = 1;
    } else if (fdatasync(log->fd) != 0) {
        log->broken = 1;
        return ly_error_set(err, LY_ERR_IO, 0, "audit: fdatasync");
    }
    memcpy(log->last_hash, h, sizeof(h));
    log->next_seq++;
    return 0;
}

void audit_defer_sync(struct audit_log *log, int deferred)
{
    log->deferred = deferred;
}

int audit_sync(struct audit_log *log, struct ly_error *err)
{
    if (!log->dirty) {
        return 0;
    }
    if (fdatasync(log->fd) != 0) {
        log->broken = 1;
        return ly_error_set(err, LY_ERR_IO, 0, "audit: fdatasync");
    }
    log->dirty = 0;
    return 0;
}

void audit_close(struct audit_log *log)
{
    if (log == NULL) {
        return;
    }
    if (log->fd >= 0) {
        if (log->dirty) {
            (void)fdatasync(log->fd); /* best effort at exit; audit_sync() reports errors */
        }
        (void)close(log->fd);
        log->fd = -1;
    }
    free(log);
}
