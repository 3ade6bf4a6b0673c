/*
 * store: the SQLite store. Every statement is prepared and bound (never built with printf),
 * every sqlite3_step result is checked, and SQLite's messages are copied into ly_error. It holds
 * no private key bytes: key files are referenced by name only.
 */
#include "store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_SCHEMA_VERSION 1

struct store {
    sqlite3 *db;
};

static const char *const schema_v1 =
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE ca ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  key_type TEXT NOT NULL,"
    "  key_file TEXT NOT NULL UNIQUE,"
    "  cert_der BLOB NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('active','retired')));"
    "CREATE TABLE jwt_key ("
    "  kid TEXT PRIMARY KEY NOT NULL,"
    "  key_file TEXT NOT NULL UNIQUE,"
    "  spki BLOB NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('active','retired')),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE svid ("
    "  serial TEXT PRIMARY KEY NOT NULL,"
    "  spiffe_id TEXT NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  ca_id INTEGER NOT NULL REFERENCES ca(id),"
    "  issued_at INTEGER NOT NULL);"
    "CREATE INDEX svid_by_id ON svid(spiffe_id);";

static int db_error(struct store *s, struct ly_error *err, const char *what)
{
    return ly_error_setx(err, LY_ERR_IO, 0, "database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_sql(struct store *s, const char *sql, const char *what, struct ly_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = ly_error_setx(err, LY_ERR_IO, 0, "database: %s: %s", what,
                               msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct ly_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        return db_error(s, err, "prepare");
    }
    return 0;
}

/* Step a statement that returns no rows; finalizes it. */
static int step_done(struct store *s, sqlite3_stmt *st, const char *what, struct ly_error *err)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, what);
        (void)sqlite3_finalize(st); /* the step error is what we report */
        return rc;
    }
    if (sqlite3_finalize(st) != SQLITE_OK) {
        return db_error(s, err, what);
    }
    return 0;
}

static int migrate(struct store *s, struct ly_error *err)
{
    sqlite3_stmt *st;
    int version;
    int rc;

    rc = prepare(s, "PRAGMA user_version", &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "reading schema version");
        (void)sqlite3_finalize(st);
        return rc;
    }
    version = sqlite3_column_int(st, 0);
    (void)sqlite3_finalize(st); /* read-only statement */
    if (version == STORE_SCHEMA_VERSION) {
        return 0;
    }
    if (version > STORE_SCHEMA_VERSION) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "database schema version %d is newer than this lanyard (%d)",
                             version, STORE_SCHEMA_VERSION);
    }
    rc = exec_sql(s, "BEGIN IMMEDIATE", "begin migration", err);
    if (rc < 0) {
        return rc;
    }
    rc = exec_sql(s, schema_v1, "creating schema", err);
    if (rc == 0) {
        rc = exec_sql(s, "PRAGMA user_version = 1", "setting schema version", err);
    }
    if (rc == 0) {
        rc = exec_sql(s, "COMMIT", "commit migration", err);
    }
    if (rc < 0) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int store_open(const char *path, struct store **out, struct ly_error *err)
{
    struct store *s;
    int fd;
    int rc;

    *out = NULL;
    /* Create the file ourselves so it is 0600 from the first byte. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot open database %s", path);
    }
    (void)close(fd); /* nothing written through this descriptor */
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "cannot open database %s: %s", path,
                           s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK) {
        rc = db_error(s, err, "busy timeout");
        goto fail;
    }
    /* WAL + synchronous=FULL: a committed transaction survives a crash or kill -9. */
    rc = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON",
                  "configuring", err);
    if (rc < 0) {
        goto fail;
    }
    rc = migrate(s, err);
    if (rc < 0) {
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_close(struct store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->db != NULL) {
        (void)sqlite3_close(s->db); /* all statements are finalized by their users */
    }
    free(s);
}

int store_begin(struct store *s, struct ly_error *err)
{
    return exec_sql(s, "BEGIN IMMEDIATE", "begin", err);
}

int store_commit(struct store *s, struct ly_error *err)
{
    return exec_sql(s, "COMMIT", "commit", err);
}

void store_rollback(struct store *s)
{
    /* Rolling back after a failure: if it fails too, SQLite rolls back on close anyway. */
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_meta_set(struct store *s, const char *key, const char *value, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    return step_done(s, st, "writing setting", err);
}

int store_meta_get(struct store *s, const char *key, char *value, size_t valsz,
                   struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT value FROM meta WHERE key = ?1", &st, err);
    const unsigned char *v;
    size_t n;

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "setting '%s' is not set", key);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading setting");
        goto out;
    }
    v = sqlite3_column_text(st, 0);
    n = (size_t)sqlite3_column_bytes(st, 0);
    if (v == NULL || n + 1 > valsz) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "setting '%s' is too long", key);
        goto out;
    }
    memcpy(value, v, n);
    value[n] = '\0';
    rc = 0;
out:
    (void)sqlite3_finalize(st); /* read-only */
    return rc;
}

static int copy_text(char *dst, size_t dstsz, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (v == NULL || n + 1 > dstsz) {
        return -1;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int copy_blob(uint8_t **dst, size_t *len, sqlite3_stmt *st, int col)
{
    const void *v = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);

    if (v == NULL || n == 0) {
        return -1;
    }
    *dst = malloc(n);
    if (*dst == NULL) {
        return -1;
    }
    memcpy(*dst, v, n);
    *len = n;
    return 0;
}

int store_ca_add(struct store *s, const struct store_ca *ca, int64_t *id, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "INSERT INTO ca(key_type, key_file, cert_der, not_before, not_after, status)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     &st, err);

    if (rc < 0) {
        return rc;
    }
    if (ca->cert_len > (size_t)INT32_MAX ||
        sqlite3_bind_text(st, 1, ca->key_type, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, ca->key_file, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, ca->cert_der, (int)ca->cert_len, SQLITE_TRANSIENT) !=
            SQLITE_OK ||
        sqlite3_bind_int64(st, 4, ca->not_before) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, ca->not_after) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, ca->status, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    rc = step_done(s, st, "recording CA", err);
    if (rc == 0) {
        *id = sqlite3_last_insert_rowid(s->db);
    }
    return rc;
}

void store_ca_list_free(struct store_ca *list, size_t n)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(list[i].cert_der);
    }
    free(list);
}

int store_ca_list(struct store *s, struct store_ca **out, size_t *n, struct ly_error *err)
{
    sqlite3_stmt *st;
    struct store_ca *list = NULL;
    size_t cnt = 0;
    size_t cap = 0;
    int rc = prepare(s,
                     "SELECT id, key_type, key_file, cert_der, not_before, not_after, status"
                     " FROM ca ORDER BY id DESC",
                     &st, err);

    *out = NULL;
    *n = 0;
    if (rc < 0) {
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_ca *c;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct store_ca *nl = realloc(list, ncap * sizeof(*nl));
            if (nl == NULL) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                goto fail;
            }
            list = nl;
            cap = ncap;
        }
        c = &list[cnt];
        memset(c, 0, sizeof(*c));
        c->id = sqlite3_column_int64(st, 0);
        c->not_before = sqlite3_column_int64(st, 4);
        c->not_after = sqlite3_column_int64(st, 5);
        if (copy_text(c->key_type, sizeof(c->key_type), st, 1) < 0 ||
            copy_text(c->key_file, sizeof(c->key_file), st, 2) < 0 ||
            copy_text(c->status, sizeof(c->status), st, 6) < 0 ||
            copy_blob(&c->cert_der, &c->cert_len, st, 3) < 0) {
            free(c->cert_der);
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed CA record %lld",
                               (long long)c->id);
            goto fail;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "listing CAs");
        goto fail;
    }
    (void)sqlite3_finalize(st); /* read-only */
    *out = list;
    *n = cnt;
    return 0;
fail:
    (void)sqlite3_finalize(st);
    store_ca_list_free(list, cnt);
    return rc;
}

int store_jwt_key_add(struct store *s, const struct store_jwt_key *k, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "INSERT INTO jwt_key(kid, key_file, spki, status, created_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
                     &st, err);

    if (rc < 0) {
        return rc;
    }
    if (k->spki_len > (size_t)INT32_MAX ||
        sqlite3_bind_text(st, 1, k->kid, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, k->key_file, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, k->spki, (int)k->spki_len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, k->status, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, k->created_at) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    return step_done(s, st, "recording JWT key", err);
}

void store_jwt_key_list_free(struct store_jwt_key *list, size_t n)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(list[i].spki);
    }
    free(list);
}

int store_jwt_key_list(struct store *s, struct store_jwt_key **out, size_t *n,
                       struct ly_error *err)
{
    sqlite3_stmt *st;
    struct store_jwt_key *list = NULL;
    size_t cnt = 0;
    size_t cap = 0;
    int rc = prepare(s,
                     "SELECT kid, key_file, spki, status, created_at FROM jwt_key"
                     " ORDER BY created_at DESC, kid",
                     &st, err);

    *out = NULL;
    *n = 0;
    if (rc < 0) {
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_jwt_key *k;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct store_jwt_key *nl = realloc(list, ncap * sizeof(*nl));
            if (nl == NULL) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                goto fail;
            }
            list = nl;
            cap = ncap;
        }
        k = &list[cnt];
        memset(k, 0, sizeof(*k));
        k->created_at = sqlite3_column_int64(st, 4);
        if (copy_text(k->kid, sizeof(k->kid), st, 0) < 0 ||
            copy_text(k->key_file, sizeof(k->key_file), st, 1) < 0 ||
            copy_text(k->status, sizeof(k->status), st, 3) < 0 ||
            copy_blob(&k->spki, &k->spki_len, st, 2) < 0) {
            free(k->spki);
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed JWT key record");
            goto fail;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "listing JWT keys");
        goto fail;
    }
    (void)sqlite3_finalize(st);
    *out = list;
    *n = cnt;
    return 0;
fail:
    (void)sqlite3_finalize(st);
    store_jwt_key_list_free(list, cnt);
    return rc;
}

int store_svid_record(struct store *s, const struct store_svid *rec, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s,
                     "INSERT INTO svid(serial, spiffe_id, not_after, sha256, ca_id, issued_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, rec->serial_hex, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, rec->spiffe_id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, rec->not_after) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, rec->sha256_hex, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, rec->ca_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, rec->issued_at) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    return step_done(s, st, "recording issued SVID", err);
}

int store_svid_count(struct store *s, int64_t *count, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT count(*) FROM svid", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "counting SVIDs");
        (void)sqlite3_finalize(st);
        return rc;
    }
    *count = sqlite3_column_int64(st, 0);
    (void)sqlite3_finalize(st);
    return 0;
}
