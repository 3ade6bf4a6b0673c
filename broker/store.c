/*
 * store: the SQLite store. Every statement is prepared and bound (never built with printf),
 * every sqlite3_step result is checked, and SQLite's messages are copied into ly_error. It holds
 * no private key bytes: key files are referenced by name only.
 */
#include "store.h"
#include "store_internal.h"

#include "../common/ly_guard.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/spiffeid.h"
#include "consent.h"
#include "entry.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_SCHEMA_VERSION 4

/*
 * Statements of the attestation path, kept prepared between calls: the Workload API matches on
 * every fetch, and parsing the same SQL each time cost more than running it. Keyed by the
 * address of the static SQL text, so a slot can never hold another query's statement.
 */
#define STORE_STMT_CACHE 16

struct store_stmt {
    const char *sql; /* borrowed: a string literal */
    sqlite3_stmt *st;
};

struct store {
    sqlite3 *db;
    struct store_stmt cache[STORE_STMT_CACHE];
    int fact_table; /* temp.attest_fact exists on this connection */
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

/*
 * v2: registration entries. An entry's rows live in four tables written in one transaction; the
 * child rows go with their entry (ON DELETE CASCADE, foreign_keys is on). selector_key is the
 * SHA-256 of the sorted selector set, so (spiffe_id, selector_key) refuses exact duplicates even
 * when two writers race. entry_selector(type, value) is indexed for attestation lookups.
 */
static const char *const schema_v2 =
    "CREATE TABLE entry ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
    "  spiffe_id TEXT NOT NULL,"
    "  ttl INTEGER NOT NULL CHECK (ttl > 0),"
    "  created_at INTEGER NOT NULL,"
    "  hint TEXT,"
    "  selector_key TEXT NOT NULL CHECK (length(selector_key) = 64));"
    "CREATE UNIQUE INDEX entry_unique ON entry(spiffe_id, selector_key);"
    "CREATE TABLE entry_selector ("
    "  entry_id TEXT NOT NULL REFERENCES entry(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (entry_id, type, value)) WITHOUT ROWID;"
    "CREATE INDEX entry_selector_by_value ON entry_selector(type, value);"
    "CREATE TABLE entry_dns ("
    "  entry_id TEXT NOT NULL REFERENCES entry(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY (entry_id, pos),"
    "  UNIQUE (entry_id, name)) WITHOUT ROWID;"
    "CREATE TABLE entry_federates_with ("
    "  entry_id TEXT NOT NULL REFERENCES entry(id) ON DELETE CASCADE,"
    "  trust_domain TEXT NOT NULL,"
    "  PRIMARY KEY (entry_id, trust_domain)) WITHOUT ROWID;";

/*
 * v3: the consent registry. One row per grant (user NULL for a workload-only grant, window
 * bounds in minutes after 00:00 UTC or NULL), its scopes and allowed source trust domains in
 * child tables that go with it (ON DELETE CASCADE). Written in one transaction per grant.
 */
static const char *const schema_v3 =
    "CREATE TABLE consent ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
    "  user TEXT CHECK (user IS NULL OR length(CAST(user AS BLOB)) BETWEEN 1 AND 256),"
    "  client_id TEXT NOT NULL,"
    "  granted_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  granted_by TEXT NOT NULL,"
    "  window_start INTEGER CHECK (window_start IS NULL OR window_start BETWEEN 0 AND 1439),"
    "  window_end INTEGER CHECK (window_end IS NULL OR window_end BETWEEN 0 AND 1439));"
    "CREATE INDEX consent_by_pair ON consent(user, client_id);"
    "CREATE INDEX consent_by_client ON consent(client_id);"
    "CREATE TABLE consent_scope ("
    "  consent_id TEXT NOT NULL REFERENCES consent(id) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL,"
    "  PRIMARY KEY (consent_id, scope)) WITHOUT ROWID;"
    "CREATE TABLE consent_td ("
    "  consent_id TEXT NOT NULL REFERENCES consent(id) ON DELETE CASCADE,"
    "  trust_domain TEXT NOT NULL,"
    "  PRIMARY KEY (consent_id, trust_domain)) WITHOUT ROWID;";

/*
 * v4: federation. One row per relationship (where and how a foreign trust domain's bundle is
 * fetched, and the state of the last fetch) and one per federated bundle (fetched, bootstrap or
 * static). The bundle is not a child row with a foreign key because a static bundle has no
 * relationship; the invariants between the two tables (store.h) are kept by the writers, each
 * inside one transaction. Rowid tables: a bundle row can be megabytes.
 */
static const char *const schema_v4 =
    "CREATE TABLE fed_relation ("
    "  trust_domain TEXT PRIMARY KEY NOT NULL"
    "    CHECK (length(CAST(trust_domain AS BLOB)) BETWEEN 1 AND 255),"
    "  url TEXT NOT NULL"
    "    CHECK (substr(url, 1, 8) = 'https://' AND length(CAST(url AS BLOB)) <= 2047),"
    "  profile TEXT NOT NULL CHECK (profile IN ('https_web', 'https_spiffe')),"
    "  endpoint_id TEXT NOT NULL DEFAULT '' CHECK (length(CAST(endpoint_id AS BLOB)) <= 2048),"
    "  ca_pem BLOB CHECK (ca_pem IS NULL OR length(ca_pem) > 0),"
    "  created_at INTEGER NOT NULL,"
    "  last_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  last_success_at INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '' CHECK (length(CAST(last_error AS BLOB)) <= 255),"
    "  CHECK ((profile = 'https_web' AND endpoint_id = '') OR"
    "         (profile = 'https_spiffe' AND endpoint_id <> '' AND ca_pem IS NULL)));"
    "CREATE TABLE fed_bundle ("
    "  trust_domain TEXT PRIMARY KEY NOT NULL"
    "    CHECK (length(CAST(trust_domain AS BLOB)) BETWEEN 1 AND 255),"
    "  json BLOB NOT NULL CHECK (length(json) > 0),"
    "  sequence INTEGER NOT NULL DEFAULT -1 CHECK (sequence >= -1),"
    "  refresh_hint INTEGER NOT NULL DEFAULT -1 CHECK (refresh_hint >= -1),"
    "  source TEXT NOT NULL CHECK (source IN ('endpoint', 'bootstrap', 'static')),"
    "  updated_at INTEGER NOT NULL);";

/* Schema steps, applied in order from the database's version to STORE_SCHEMA_VERSION. */
static const char *const schema_steps[STORE_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                               schema_v4};

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

/*
 * Make room for one more element in a doubling array `arr` (*cap slots of elem bytes) holding
 * `used` elements. Returns the array, possibly moved, or NULL with err set (then `arr` is
 * untouched and still owned by the caller).
 */
static void *grow_array(void *arr, size_t *cap, size_t used, size_t elem, size_t first,
                        struct ly_error *err)
{
    size_t ncap;
    void *grown;

    if (used < *cap) {
        return arr;
    }
    ncap = *cap ? *cap * 2 : first;
    grown = ncap <= SIZE_MAX / elem ? realloc(arr, ncap * elem) : NULL;
    if (grown == NULL) {
        (void)ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    *cap = ncap;
    return grown;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct ly_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        return db_error(s, err, "prepare");
    }
    return 0;
}

/*
 * A cached prepared statement for the static text `sql`, reset with no bindings. It stays owned
 * by the store: give it back with stmt_put, never finalize it. When every slot is taken the
 * statement is prepared uncached and *cached is 0 (the caller then finalizes it as usual).
 */
static int stmt_get(struct store *s, const char *sql, sqlite3_stmt **st, int *cached,
                    struct ly_error *err)
{
    size_t i;

    *cached = 0;
    for (i = 0; i < STORE_STMT_CACHE; i++) {
        if (s->cache[i].sql == sql) {
            *st = s->cache[i].st;
            *cached = 1;
            return 0;
        }
    }
    for (i = 0; i < STORE_STMT_CACHE; i++) {
        if (s->cache[i].sql == NULL) {
            if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) !=
                SQLITE_OK) {
                return db_error(s, err, "prepare");
            }
            s->cache[i].sql = sql;
            s->cache[i].st = *st;
            *cached = 1;
            return 0;
        }
    }
    return prepare(s, sql, st, err);
}

/* Give back a statement from stmt_get: reset (its errors were seen at step) or finalize. */
static void stmt_put(sqlite3_stmt *st, int cached)
{
    if (st == NULL) {
        return;
    }
    if (cached) {
        (void)sqlite3_reset(st); /* repeats the last step's error, already reported */
        (void)sqlite3_clear_bindings(st); /* cannot fail */
    } else {
        (void)sqlite3_finalize(st); /* read path: errors were reported at step */
    }
}

/* Run a cached statement that returns no rows (no bindings). */
static int stmt_exec(struct store *s, const char *sql, const char *what, struct ly_error *err)
{
    sqlite3_stmt *st = NULL;
    int cached = 0;
    int rc = stmt_get(s, sql, &st, &cached, err);

    if (rc < 0) {
        return rc;
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(s, err, what);
    stmt_put(st, cached);
    return rc;
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

static int read_schema_version(struct store *s, int *version, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "PRAGMA user_version", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "reading schema version");
        (void)sqlite3_finalize(st);
        return rc;
    }
    *version = sqlite3_column_int(st, 0);
    (void)sqlite3_finalize(st); /* read-only statement */
    if (*version < 0) {
        return ly_error_setx(err, LY_ERR_IO, 0, "database: negative schema version %d",
                             *version);
    }
    return 0;
}

/*
 * Bring the schema up to `target` (STORE_SCHEMA_VERSION except in tests, which build older
 * databases through this same code path to test upgrades).
 */
static int migrate(struct store *s, int target, struct ly_error *err)
{
    static const char *const set_version[STORE_SCHEMA_VERSION + 1] = {
        "PRAGMA user_version = 0", "PRAGMA user_version = 1", "PRAGMA user_version = 2",
        "PRAGMA user_version = 3", "PRAGMA user_version = 4"};
    int version;
    int rc;

    rc = read_schema_version(s, &version, err);
    if (rc < 0) {
        return rc;
    }
    if (version > STORE_SCHEMA_VERSION) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "database schema version %d is newer than this lanyard (%d)",
                             version, STORE_SCHEMA_VERSION);
    }
    if (version >= target) {
        return 0;
    }
    rc = exec_sql(s, "BEGIN IMMEDIATE", "begin migration", err);
    if (rc < 0) {
        return rc;
    }
    /*
     * Re-read the version inside the write transaction: another process may have migrated the
     * file between our first look and BEGIN IMMEDIATE. All steps and the new user_version
     * commit together, so a crash leaves the old schema intact, never a half-upgraded one.
     */
    rc = read_schema_version(s, &version, err);
    if (rc == 0 && version > STORE_SCHEMA_VERSION) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                           "database schema version %d is newer than this lanyard (%d)",
                           version, STORE_SCHEMA_VERSION);
    }
    if (rc == 0 && version >= target) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* nothing was changed */
        return 0;
    }
    for (; rc == 0 && version < target; version++) {
        rc = exec_sql(s, schema_steps[version], "upgrading schema", err);
    }
    if (rc == 0) {
        /* PRAGMA takes no bound parameters; the text is a fixed literal from the table. */
        rc = exec_sql(s, set_version[target], "setting schema version", err);
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
    return store_open_version(path, STORE_SCHEMA_VERSION, out, err);
}

int store_open_version(const char *path, int version, struct store **out, struct ly_error *err)
{
    struct store *s;
    mode_t old_mask;
    int orc;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    /*
     * SQLite creates the file (and later its -wal and -shm files, which copy the database
     * file's mode) under a 077 umask, so it is 0600 from its first byte. We never open() the
     * file ourselves: closing any descriptor of it would drop the POSIX locks this process's
     * other connections hold, and another process could then checkpoint and delete the WAL
     * under them, losing committed writes.
     */
    old_mask = umask(077);
    orc = sqlite3_open_v2(path, &s->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL);
    umask(old_mask);
    if (orc != SQLITE_OK) {
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
    if (version < 1 || version > STORE_SCHEMA_VERSION) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "no schema version %d", version);
        goto fail;
    }
    rc = migrate(s, version, err);
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
    size_t i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < STORE_STMT_CACHE; i++) {
        (void)sqlite3_finalize(s->cache[i].st); /* NULL is a no-op; read statements */
        s->cache[i].sql = NULL;
        s->cache[i].st = NULL;
    }
    if (s->db != NULL) {
        (void)sqlite3_close(s->db); /* every other statement is finalized by its user */
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
        {
            void *g = grow_array(list, &cap, cnt, sizeof(*list), 4, err);
            if (g == NULL) {
                rc = LY_ERR_NOMEM;
                goto fail;
            }
            list = g;
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

int store_ca_set_status(struct store *s, int64_t id, const char *status, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "UPDATE ca SET status = ?1 WHERE id = ?2", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, id) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    rc = step_done(s, st, "changing CA status", err);
    if (rc == 0 && sqlite3_changes(s->db) != 1) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "no CA %lld recorded", (long long)id);
    }
    return rc;
}

/* The next-CA slot's settings; see store.h for why it is not a `ca` row. */
#define NEXT_KEY_TYPE "ca_next.key_type"
#define NEXT_KEY_FILE "ca_next.key_file"
#define NEXT_NOT_BEFORE "ca_next.not_before"
#define NEXT_NOT_AFTER "ca_next.not_after"
#define NEXT_CERT "ca_next.cert"
#define NEXT_CERT_MAX (64u * 1024u) /* DER bytes; the hex text is twice that */

int store_meta_delete(struct store *s, const char *key, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "DELETE FROM meta WHERE key = ?1", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    return step_done(s, st, "removing setting", err);
}

/* A setting as a malloc'ed string: 1 found (*out set), 0 absent, < 0 error. */
static int meta_get_alloc(struct store *s, const char *key, char **out, struct ly_error *err)
{
    sqlite3_stmt *st;
    const unsigned char *v;
    size_t n;
    int rc = prepare(s, "SELECT value FROM meta WHERE key = ?1", &st, err);

    *out = NULL;
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading setting");
        goto out;
    }
    v = sqlite3_column_text(st, 0);
    n = (size_t)sqlite3_column_bytes(st, 0);
    if (v == NULL || n > 2 * NEXT_CERT_MAX) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "database: setting '%s' is malformed", key);
        goto out;
    }
    *out = malloc(n + 1);
    if (*out == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    memcpy(*out, v, n);
    (*out)[n] = '\0';
    rc = 1;
out:
    (void)sqlite3_finalize(st); /* read-only */
    return rc;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end = NULL;
    long long x;

    if (v == NULL || v[0] == '\0') {
        return -1;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0') {
        return -1;
    }
    *out = (int64_t)x;
    return 0;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int store_ca_next_put(struct store *s, const struct store_ca *ca, struct ly_error *err)
{
    static const char hx[] = "0123456789abcdef";
    char num[32];
    char *hex;
    size_t i;
    int rc;

    if (ca->cert_len == 0 || ca->cert_len > NEXT_CERT_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "next CA certificate size out of range");
    }
    hex = malloc(2 * ca->cert_len + 1);
    if (hex == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; i < ca->cert_len; i++) {
        hex[2 * i] = hx[ca->cert_der[i] >> 4];
        hex[2 * i + 1] = hx[ca->cert_der[i] & 15];
    }
    hex[2 * ca->cert_len] = '\0';
    rc = store_meta_set(s, NEXT_CERT, hex, err);
    free(hex);
    if (rc == 0) {
        rc = store_meta_set(s, NEXT_KEY_TYPE, ca->key_type, err);
    }
    if (rc == 0) {
        rc = store_meta_set(s, NEXT_KEY_FILE, ca->key_file, err);
    }
    if (rc == 0) {
        (void)snprintf(num, sizeof(num), "%lld", (long long)ca->not_before); /* fits */
        rc = store_meta_set(s, NEXT_NOT_BEFORE, num, err);
    }
    if (rc == 0) {
        (void)snprintf(num, sizeof(num), "%lld", (long long)ca->not_after); /* fits */
        rc = store_meta_set(s, NEXT_NOT_AFTER, num, err);
    }
    return rc;
}

int store_ca_next_get(struct store *s, struct store_ca *out, int *found, struct ly_error *err)
{
    static const char *const keys[5] = {NEXT_CERT, NEXT_KEY_TYPE, NEXT_KEY_FILE, NEXT_NOT_BEFORE,
                                        NEXT_NOT_AFTER};
    char *v[5] = {NULL, NULL, NULL, NULL, NULL};
    int n_found = 0;
    size_t hlen;
    size_t i;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    *found = 0;
    for (i = 0; i < 5; i++) {
        rc = meta_get_alloc(s, keys[i], &v[i], err);
        if (rc < 0) {
            goto out;
        }
        n_found += rc;
    }
    rc = 0;
    if (n_found == 0) {
        goto out;
    }
    hlen = n_found == 5 ? strlen(v[0]) : 0;
    if (n_found != 5 || hlen == 0 || hlen % 2 != 0 ||
        strlen(v[1]) + 1 > sizeof(out->key_type) || strlen(v[2]) + 1 > sizeof(out->key_file) ||
        parse_i64(v[3], &out->not_before) < 0 || parse_i64(v[4], &out->not_after) < 0) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "database: the next-CA record is incomplete");
        goto out;
    }
    out->cert_der = malloc(hlen / 2);
    if (out->cert_der == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    for (i = 0; i < hlen / 2; i++) {
        int hi = hex_nibble(v[0][2 * i]);
        int lo = hex_nibble(v[0][2 * i + 1]);
        if (hi < 0 || lo < 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: the next-CA certificate is corrupt");
            goto out;
        }
        out->cert_der[i] = (uint8_t)(hi << 4 | lo);
    }
    out->cert_len = hlen / 2;
    memcpy(out->key_type, v[1], strlen(v[1]) + 1);
    memcpy(out->key_file, v[2], strlen(v[2]) + 1);
    (void)snprintf(out->status, sizeof(out->status), "prepared");
    *found = 1;
out:
    for (i = 0; i < 5; i++) {
        free(v[i]);
    }
    if (rc < 0) {
        free(out->cert_der);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int store_ca_next_clear(struct store *s, struct ly_error *err)
{
    static const char *const keys[5] = {NEXT_CERT, NEXT_KEY_TYPE, NEXT_KEY_FILE, NEXT_NOT_BEFORE,
                                        NEXT_NOT_AFTER};
    size_t i;
    int rc;

    for (i = 0; i < 5; i++) {
        rc = store_meta_delete(s, keys[i], err);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
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
        {
            void *g = grow_array(list, &cap, cnt, sizeof(*list), 4, err);
            if (g == NULL) {
                rc = LY_ERR_NOMEM;
                goto fail;
            }
            list = g;
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

int store_svid_max_not_after(struct store *s, int64_t ca_id, int64_t *max_not_after, int *found,
                             struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT max(not_after) FROM svid WHERE ca_id = ?1", &st, err);

    *found = 0;
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_int64(st, 1, ca_id) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "reading SVID expiry");
        (void)sqlite3_finalize(st);
        return rc;
    }
    /* max() over no rows is NULL: this CA signed nothing. */
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *max_not_after = sqlite3_column_int64(st, 0);
        *found = 1;
    }
    (void)sqlite3_finalize(st); /* read-only */
    return 0;
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

/* ---- registration entries ---------------------------------------------------------------- */

/*
 * Open a write scope: BEGIN IMMEDIATE when no transaction is open (so the duplicate check and
 * the inserts see one snapshot and no other writer interleaves), else a savepoint inside the
 * caller's transaction. *own says which, for tx_end.
 */
static int tx_begin(struct store *s, int *own, struct ly_error *err)
{
    *own = sqlite3_get_autocommit(s->db) != 0;
    return exec_sql(s, *own ? "BEGIN IMMEDIATE" : "SAVEPOINT lanyard_entry", "begin", err);
}

/* Commit (rc == 0) or undo (rc < 0) what tx_begin opened. Returns rc or the commit error. */
static int tx_end(struct store *s, int own, int rc, struct ly_error *err)
{
    if (rc == 0) {
        rc = exec_sql(s, own ? "COMMIT" : "RELEASE lanyard_entry", "commit", err);
        if (rc == 0) {
            return 0;
        }
    }
    /* Undo; if that fails too SQLite rolls back on close, and rc already reports the cause. */
    if (own) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        (void)sqlite3_exec(s->db, "ROLLBACK TO lanyard_entry; RELEASE lanyard_entry", NULL, NULL,
                           NULL);
    }
    return rc;
}

/* Bind text, or NULL when v is NULL. */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Run an INSERT of (entry_id, a[i]) rows, plus the position i as ?3 when with_pos is set. */
static int insert_rows(struct store *s, const char *sql, const char *id, char *const *a,
                       size_t n, int with_pos, struct ly_error *err)
{
    sqlite3_stmt *st;
    size_t i;
    int rc = prepare(s, sql, &st, err);

    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        if (sqlite3_reset(st) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            bind_text(st, 2, a[i]) != SQLITE_OK ||
            (with_pos && sqlite3_bind_int64(st, 3, (sqlite3_int64)i) != SQLITE_OK)) {
            rc = db_error(s, err, "bind");
            break;
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_error(s, err, "recording entry");
            break;
        }
    }
    (void)sqlite3_finalize(st); /* errors were reported by step above */
    return rc;
}

static int new_entry_id(char out[ENTRY_ID_HEX_LEN + 1], struct ly_error *err)
{
    uint8_t rnd[16];
    size_t got = 0;

    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return ly_error_set(err, LY_ERR_INTERNAL, 0, "getrandom");
        }
        got += (size_t)n;
    }
    ly_hex_encode(rnd, sizeof(rnd), out);
    return 0;
}

/* The existing entry with this SPIFFE ID and selector key: 1 found (id copied), 0 none. */
static int find_duplicate(struct store *s, const char *spiffe_id, const char *key,
                          char dup[ENTRY_ID_HEX_LEN + 1], struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT id FROM entry WHERE spiffe_id = ?1 AND selector_key = ?2", &st,
                     err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, spiffe_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = 0;
    } else if (rc == SQLITE_ROW) {
        rc = copy_text(dup, ENTRY_ID_HEX_LEN + 1, st, 0) < 0
                 ? ly_error_setx(err, LY_ERR_IO, 0, "database: malformed entry id")
                 : 1;
    } else {
        rc = db_error(s, err, "looking for a duplicate entry");
    }
out:
    (void)sqlite3_finalize(st); /* read-only */
    return rc;
}

int store_entry_add(struct store *s, struct entry *e, struct ly_error *err)
{
    char key[65];
    char id[ENTRY_ID_HEX_LEN + 1];
    char dup[ENTRY_ID_HEX_LEN + 1];
    char **sel_types = NULL;
    char **sel_values = NULL;
    sqlite3_stmt *st = NULL;
    int64_t now = ly_time_now();
    size_t i;
    int own = 0;
    int rc;

    if (e == NULL || e->spiffe_id == NULL || e->n_selectors == 0 ||
        e->n_selectors > ENTRY_MAX_SELECTORS) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "store_entry_add: entry not validated (entry_validate first)");
    }
    rc = entry_selector_set_key(e, key, err);
    if (rc < 0) {
        return rc;
    }
    rc = new_entry_id(id, err);
    if (rc < 0) {
        return rc;
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    rc = find_duplicate(s, e->spiffe_id, key, dup, err);
    if (rc == 1) {
        rc = ly_error_setx(err, LY_ERR_USAGE, ENTRY_R_DUPLICATE,
                           "an entry with the same SPIFFE ID and selectors already exists: %s",
                           dup);
    }
    if (rc < 0) {
        goto err;
    }
    rc = prepare(s,
                 "INSERT INTO entry(id, spiffe_id, ttl, created_at, hint, selector_key)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 &st, err);
    if (rc < 0) {
        goto err;
    }
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, e->spiffe_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, e->ttl) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, now) != SQLITE_OK || bind_text(st, 5, e->hint) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        goto err;
    }
    rc = step_done(s, st, "recording entry", err);
    st = NULL; /* step_done finalized it */
    if (rc < 0) {
        goto err;
    }
    sel_types = calloc(e->n_selectors, sizeof(*sel_types));
    sel_values = calloc(e->n_selectors, sizeof(*sel_values));
    if (sel_types == NULL || sel_values == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    for (i = 0; i < e->n_selectors; i++) {
        /* Borrowed pointers: type names are static, values belong to the entry. */
        sel_types[i] = (char *)(uintptr_t)entry_sel_type_name(e->selectors[i].type);
        sel_values[i] = e->selectors[i].value;
    }
    rc = prepare(s, "INSERT INTO entry_selector(entry_id, type, value) VALUES (?1, ?2, ?3)",
                 &st, err);
    for (i = 0; rc == 0 && i < e->n_selectors; i++) {
        if (sqlite3_reset(st) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, sel_types[i], -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, sel_values[i], -1, SQLITE_STATIC) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
        } else if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_error(s, err, "recording entry selector");
        }
    }
    (void)sqlite3_finalize(st); /* errors were reported above */
    st = NULL;
    if (rc == 0) {
        rc = insert_rows(s, "INSERT INTO entry_dns(entry_id, name, pos) VALUES (?1, ?2, ?3)", id,
                         e->dns, e->n_dns, 1, err);
    }
    if (rc == 0) {
        rc = insert_rows(s,
                         "INSERT INTO entry_federates_with(entry_id, trust_domain) VALUES (?1, ?2)",
                         id, e->federates_with, e->n_federates_with, 0, err);
    }
    if (rc < 0) {
        goto err;
    }
    rc = tx_end(s, own, 0, err);
    if (rc == 0) {
        memcpy(e->id, id, sizeof(id));
        e->created_at = now;
    }
    free(sel_types);
    free(sel_values);
    return rc;
err:
    (void)sqlite3_finalize(st); /* NULL is a harmless no-op */
    free(sel_types);
    free(sel_values);
    return tx_end(s, own, rc, err);
}

static int check_entry_id(const char *id, struct ly_error *err)
{
    char x[160];

    if (id == NULL || !entry_id_valid(id, strlen(id))) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_BAD_ENTRY_ID,
                             "'%s' is not an entry id (32 lowercase hex digits)",
                             id ? ly_text_escape(id, strlen(id), 64, x, sizeof(x)) : "(null)");
    }
    return 0;
}

int store_entry_delete(struct store *s, const char *id, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = check_entry_id(id, err);

    if (rc < 0) {
        return rc;
    }
    rc = prepare(s, "DELETE FROM entry WHERE id = ?1", &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st);
        return rc;
    }
    /* One statement is atomic on its own; the child rows go with it by ON DELETE CASCADE. */
    rc = step_done(s, st, "deleting entry", err);
    if (rc == 0 && sqlite3_changes(s->db) != 1) {
        return ly_error_setx(err, LY_ERR_USAGE, ENTRY_R_NOT_FOUND, "no entry with id %s", id);
    }
    return rc;
}

/* Append a malloc'ed copy of column col to (*v, *n). */
static int push_text(char ***v, size_t *n, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    char **grown;
    char *copy;

    if (t == NULL) {
        return -1;
    }
    copy = strdup((const char *)t);
    if (copy == NULL) {
        return -1;
    }
    grown = realloc(*v, (*n + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(copy);
        return -1;
    }
    grown[*n] = copy;
    *v = grown;
    (*n)++;
    return 0;
}

static int push_selector(struct entry *e, sqlite3_stmt *st, int tcol, int vcol)
{
    const char *t = (const char *)sqlite3_column_text(st, tcol);
    const unsigned char *v = sqlite3_column_text(st, vcol);
    struct entry_selector *grown;
    enum entry_sel_type type;
    char *copy;

    if (t == NULL || v == NULL || entry_sel_type_parse(t, &type) < 0 ||
        e->n_selectors >= ENTRY_MAX_SELECTORS) {
        return -1;
    }
    copy = strdup((const char *)v);
    if (copy == NULL) {
        return -1;
    }
    grown = realloc(e->selectors, (e->n_selectors + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(copy);
        return -1;
    }
    grown[e->n_selectors].type = type;
    grown[e->n_selectors].value = copy;
    e->selectors = grown;
    e->n_selectors++;
    return 0;
}

static int sel_sort_cmp(const void *a, const void *b)
{
    return entry_selector_cmp(a, b);
}

/* Fill an entry's main fields from a row (id, spiffe_id, ttl, created_at, hint). */
static int entry_from_row(sqlite3_stmt *st, struct entry **out)
{
    struct entry *e = entry_new();
    const unsigned char *sid = sqlite3_column_text(st, 1);

    *out = NULL;
    if (e == NULL) {
        return -1;
    }
    if (copy_text(e->id, sizeof(e->id), st, 0) < 0 || sid == NULL) {
        goto err;
    }
    e->spiffe_id = strdup((const char *)sid);
    if (e->spiffe_id == NULL) {
        goto err;
    }
    e->ttl = sqlite3_column_int64(st, 2);
    e->created_at = sqlite3_column_int64(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        const unsigned char *h = sqlite3_column_text(st, 4);
        if (h == NULL || (e->hint = strdup((const char *)h)) == NULL) {
            goto err;
        }
    }
    *out = e;
    return 0;
err:
    entry_free(e);
    return -1;
}

/*
 * Load the child rows of a sorted array of entries (sorted by id) from a query whose rows are
 * (entry_id, a[, b]) ordered by entry_id: a merge join, one pass over each table.
 */
enum child_kind { CHILD_SELECTOR, CHILD_DNS, CHILD_FED };

static int load_children(struct store *s, sqlite3_stmt *st, struct entry **v, size_t n,
                         enum child_kind kind, struct ly_error *err)
{
    size_t k = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *eid = (const char *)sqlite3_column_text(st, 0);
        int c = 1;
        int bad;
        if (eid == NULL) {
            return ly_error_setx(err, LY_ERR_IO, 0, "database: malformed entry row");
        }
        while (k < n && (c = strcmp(v[k]->id, eid)) < 0) {
            k++;
        }
        if (k == n) {
            break; /* rows of entries not in this set (a single-entry load) are done */
        }
        if (c != 0) {
            continue; /* an orphan row cannot exist with foreign keys on; skip it */
        }
        if (kind == CHILD_SELECTOR) {
            bad = push_selector(v[k], st, 1, 2);
        } else if (kind == CHILD_DNS) {
            bad = push_text(&v[k]->dns, &v[k]->n_dns, st, 1);
        } else {
            bad = push_text(&v[k]->federates_with, &v[k]->n_federates_with, st, 1);
        }
        if (bad < 0) {
            return ly_error_setx(err, LY_ERR_IO, 0,
                                 "database: malformed or oversized rows for entry %s (or out of "
                                 "memory)",
                                 v[k]->id);
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_error(s, err, "reading entries");
    }
    return 0;
}

struct age_key {
    int64_t created_at;
    int64_t rowid;
    struct entry *e;
};

static int age_cmp(const void *pa, const void *pb)
{
    const struct age_key *a = pa;
    const struct age_key *b = pb;

    if (a->created_at != b->created_at) {
        return a->created_at < b->created_at ? -1 : 1;
    }
    return a->rowid < b->rowid ? -1 : (a->rowid > b->rowid);
}

/* Sort v (n entries) by (created_at, rowid) as recorded in order[2i], order[2i+1]. */
static int sort_by_age(struct entry **v, const int64_t *order, size_t n, struct ly_error *err)
{
    struct age_key *k = calloc(n, sizeof(*k));
    size_t i;

    if (k == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; i < n; i++) {
        k[i].created_at = order[2 * i];
        k[i].rowid = order[2 * i + 1];
        k[i].e = v[i];
    }
    qsort(k, n, sizeof(*k), age_cmp);
    for (i = 0; i < n; i++) {
        v[i] = k[i].e;
    }
    free(k);
    return 0;
}

/*
 * Load every entry (id == NULL) or the one with this id. The caller holds a read transaction
 * so the four queries see one snapshot.
 */
static int load_entries(struct store *s, const char *id, struct entry ***out, size_t *n_out,
                        struct ly_error *err)
{
    static const char *const q_all[4] = {
        "SELECT id, spiffe_id, ttl, created_at, hint, rowid FROM entry ORDER BY id",
        "SELECT entry_id, type, value FROM entry_selector ORDER BY entry_id",
        "SELECT entry_id, name FROM entry_dns ORDER BY entry_id, pos",
        "SELECT entry_id, trust_domain FROM entry_federates_with ORDER BY entry_id, "
        "trust_domain",
    };
    static const char *const q_one[4] = {
        "SELECT id, spiffe_id, ttl, created_at, hint, rowid FROM entry WHERE id = ?1",
        "SELECT entry_id, type, value FROM entry_selector WHERE entry_id = ?1",
        "SELECT entry_id, name FROM entry_dns WHERE entry_id = ?1 ORDER BY pos",
        "SELECT entry_id, trust_domain FROM entry_federates_with WHERE entry_id = ?1 "
        "ORDER BY trust_domain",
    };
    const char *const *q = id != NULL ? q_one : q_all;
    struct entry **v = NULL;
    int64_t *order = NULL; /* (created_at, rowid) per entry, for the final sort */
    size_t n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = NULL;
    int cached = 0;
    size_t i;
    int rc;

    *out = NULL;
    *n_out = 0;
    rc = stmt_get(s, q[0], &st, &cached, err);
    if (rc < 0) {
        return rc;
    }
    if (id != NULL && sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        goto err;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct entry **nv = realloc(v, ncap * sizeof(*nv));
            int64_t *no;
            if (nv == NULL) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                goto err;
            }
            v = nv;
            no = realloc(order, ncap * 2 * sizeof(*no));
            if (no == NULL) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                goto err;
            }
            order = no;
            cap = ncap;
        }
        if (entry_from_row(st, &v[n]) < 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed entry (or out of memory)");
            goto err;
        }
        order[2 * n] = v[n]->created_at;
        order[2 * n + 1] = sqlite3_column_int64(st, 5);
        n++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "listing entries");
        goto err;
    }
    stmt_put(st, cached); /* read-only, fully stepped */
    st = NULL;
    for (i = 1; i < 4 && n > 0; i++) {
        rc = stmt_get(s, q[i], &st, &cached, err);
        if (rc < 0) {
            goto err;
        }
        if (id != NULL && sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
            goto err;
        }
        rc = load_children(s, st, v, n, (enum child_kind)(i - 1), err);
        stmt_put(st, cached); /* read-only */
        st = NULL;
        if (rc < 0) {
            goto err;
        }
    }
    for (i = 0; i < n; i++) {
        if (v[i]->n_selectors == 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: entry %s has no selectors", v[i]->id);
            goto err;
        }
        qsort(v[i]->selectors, v[i]->n_selectors, sizeof(v[i]->selectors[0]), sel_sort_cmp);
    }
    /* Oldest first; the queries ran in id order for the merge. */
    if (n > 1) {
        rc = sort_by_age(v, order, n, err);
        if (rc < 0) {
            goto err;
        }
    }
    free(order);
    *out = v;
    *n_out = n;
    return 0;
err:
    stmt_put(st, cached);
    free(order);
    entry_list_free(v, n);
    return rc;
}

/* A read scope: a savepoint is a deferred transaction outside one, a nested scope inside one. */
static const char sql_read_begin[] = "SAVEPOINT lanyard_read";
static const char sql_read_end[] = "RELEASE lanyard_read";

static int read_begin(struct store *s, struct ly_error *err)
{
    return stmt_exec(s, sql_read_begin, "begin read", err);
}

static void read_end(struct store *s)
{
    struct ly_error ignored;

    ly_error_clear(&ignored);
    /* Releasing a read-only savepoint cannot lose data; a failure leaves it to close. */
    (void)stmt_exec(s, sql_read_end, "end read", &ignored);
}

int store_entry_get(struct store *s, const char *id, struct entry **out, struct ly_error *err)
{
    struct entry **v = NULL;
    size_t n = 0;
    int rc = check_entry_id(id, err);

    *out = NULL;
    if (rc < 0) {
        return rc;
    }
    rc = read_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    rc = load_entries(s, id, &v, &n, err);
    read_end(s);
    if (rc < 0) {
        return rc;
    }
    if (n != 1) {
        entry_list_free(v, n);
        return ly_error_setx(err, LY_ERR_USAGE, ENTRY_R_NOT_FOUND, "no entry with id %s", id);
    }
    *out = v[0];
    free(v);
    return 0;
}

int store_entry_list(struct store *s, struct entry ***out, size_t *n, struct ly_error *err)
{
    int rc;

    *out = NULL;
    *n = 0;
    rc = read_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    rc = load_entries(s, NULL, out, n, err);
    read_end(s);
    return rc;
}

/* Cached-statement text: compared by address in the statement cache. */
static const char sql_uses_names[] =
    "SELECT EXISTS(SELECT 1 FROM entry_selector"
    " WHERE type IN ('user', 'group', 'supplementary_group'))";

int store_entry_uses_names(struct store *s, int *uses, struct ly_error *err)
{
    sqlite3_stmt *st = NULL;
    int cached = 0;
    int rc = stmt_get(s, sql_uses_names, &st, &cached, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "looking for name selectors");
    } else {
        *uses = sqlite3_column_int(st, 0) != 0;
    }
    stmt_put(st, cached);
    return rc;
}

int store_entry_count(struct store *s, int64_t *count, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT count(*) FROM entry", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "counting entries");
        (void)sqlite3_finalize(st);
        return rc;
    }
    *count = sqlite3_column_int64(st, 0);
    (void)sqlite3_finalize(st); /* read-only */
    return 0;
}

/*
 * The facts go into a per-connection TEMP table (memory-backed, invisible to other
 * connections), so any number of facts (a workload may have many supplementary groups) is bound
 * row by row: no SQL text is ever built from them. An entry matches when the number of its
 * selectors found among the facts equals the number of its selectors (selectors are unique per
 * entry by the primary key, facts by theirs).
 */
int store_entry_match(struct store *s, const struct entry_selector *facts, size_t n_facts,
                      struct entry ***out, size_t *n, struct ly_error *err)
{
    static const char *const q_match =
        "SELECT e.id FROM entry e JOIN ("
        "  SELECT sel.entry_id AS eid, count(*) AS hits"
        "  FROM temp.attest_fact f CROSS JOIN entry_selector sel"
        "  ON sel.type = f.type AND sel.value = f.value"
        "  GROUP BY sel.entry_id) m ON m.eid = e.id"
        " WHERE m.hits = (SELECT count(*) FROM entry_selector c WHERE c.entry_id = e.id)"
        " ORDER BY e.created_at, e.rowid";
    static const char q_create[] =
        "CREATE TEMP TABLE IF NOT EXISTS attest_fact(type TEXT NOT NULL, value TEXT "
        "NOT NULL, PRIMARY KEY (type, value)) WITHOUT ROWID";
    static const char q_clear[] = "DELETE FROM temp.attest_fact";
    static const char q_insert[] =
        "INSERT OR IGNORE INTO temp.attest_fact(type, value) VALUES (?1, ?2)";
    struct ly_error ignored;
    struct entry **v = NULL;
    size_t cnt = 0;
    sqlite3_stmt *st = NULL;
    int cached = 0;
    char (*ids)[ENTRY_ID_HEX_LEN + 1] = NULL;
    size_t n_ids = 0;
    size_t cap = 0;
    size_t i;
    int rc;

    *out = NULL;
    *n = 0;
    ly_error_clear(&ignored);
    if (n_facts == 0) {
        return 0;
    }
    if (!s->fact_table) {
        rc = exec_sql(s, q_create, "preparing attestation lookup", err);
        if (rc < 0) {
            return rc;
        }
        s->fact_table = 1;
    }
    rc = read_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    rc = stmt_exec(s, q_clear, "preparing attestation lookup", err);
    if (rc == 0) {
        rc = stmt_get(s, q_insert, &st, &cached, err);
    }
    for (i = 0; rc == 0 && i < n_facts; i++) {
        if (facts[i].value == NULL) {
            continue;
        }
        if (sqlite3_reset(st) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, entry_sel_type_name(facts[i].type), -1, SQLITE_STATIC) !=
                SQLITE_OK ||
            sqlite3_bind_text(st, 2, facts[i].value, -1, SQLITE_STATIC) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
        } else if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_error(s, err, "recording attestation facts");
        }
    }
    stmt_put(st, cached); /* errors were reported above */
    st = NULL;
    if (rc < 0) {
        goto out;
    }
    rc = stmt_get(s, q_match, &st, &cached, err);
    if (rc < 0) {
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        {
            void *g = grow_array(ids, &cap, n_ids, sizeof(*ids), 8, err);
            if (g == NULL) {
                rc = LY_ERR_NOMEM;
                goto out;
            }
            ids = g;
        }
        if (copy_text(ids[n_ids], sizeof(ids[n_ids]), st, 0) < 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed entry id");
            goto out;
        }
        n_ids++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "matching entries");
        goto out;
    }
    rc = 0;
    stmt_put(st, cached); /* read-only, fully stepped */
    st = NULL;
    if (n_ids > 0) {
        v = calloc(n_ids, sizeof(*v));
        if (v == NULL) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < n_ids; i++) {
        struct entry **one = NULL;
        size_t k = 0;
        rc = load_entries(s, ids[i], &one, &k, err);
        if (rc == 0 && k != 1) {
            entry_list_free(one, k);
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: entry %s vanished", ids[i]);
        }
        if (rc < 0) {
            goto out;
        }
        v[cnt++] = one[0];
        free(one);
    }
out:
    stmt_put(st, cached);
    /* Leave no facts behind; the scope is read-only for the main database either way. */
    (void)stmt_exec(s, q_clear, "clearing attestation facts", &ignored);
    read_end(s);
    free(ids);
    if (rc < 0) {
        entry_list_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- consent registry -------------------------------------------------------------------- */

/* Cached-statement texts (compared by address in the statement cache). */
static const char sql_consent_insert[] =
    "INSERT INTO consent(id, user, client_id, granted_at, expires_at, granted_by, window_start,"
    " window_end) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char sql_consent_scope_insert[] =
    "INSERT OR IGNORE INTO consent_scope(consent_id, scope) VALUES (?1, ?2)";
static const char sql_consent_td_insert[] =
    "INSERT OR IGNORE INTO consent_td(consent_id, trust_domain) VALUES (?1, ?2)";

/* Insert (id, v[i]) for each i with a cached statement. */
static int consent_insert_children(struct store *s, const char *sql, const char *id,
                                   char *const *v, size_t n, struct ly_error *err)
{
    sqlite3_stmt *st = NULL;
    int cached = 0;
    size_t i;
    int rc = stmt_get(s, sql, &st, &cached, err);

    for (i = 0; rc == 0 && i < n; i++) {
        if (sqlite3_reset(st) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, v[i], -1, SQLITE_STATIC) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
        } else if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_error(s, err, "recording consent");
        }
    }
    stmt_put(st, cached); /* errors were reported above */
    return rc;
}

int store_consent_add(struct store *s, struct consent *c, struct ly_error *err)
{
    char id[CONSENT_ID_HEX_LEN + 1];
    sqlite3_stmt *st = NULL;
    int cached = 0;
    int own = 0;
    int rc = consent_validate(c, err);

    if (rc < 0) {
        return rc;
    }
    rc = new_entry_id(id, err);
    if (rc < 0) {
        return rc;
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    rc = stmt_get(s, sql_consent_insert, &st, &cached, err);
    if (rc == 0) {
        if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            bind_text(st, 2, c->no_user ? NULL : c->user) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, c->client_id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 4, c->granted_at) != SQLITE_OK ||
            sqlite3_bind_int64(st, 5, c->expires_at) != SQLITE_OK ||
            sqlite3_bind_text(st, 6, c->granted_by, -1, SQLITE_STATIC) != SQLITE_OK ||
            (c->has_window ? sqlite3_bind_int(st, 7, c->window_start)
                           : sqlite3_bind_null(st, 7)) != SQLITE_OK ||
            (c->has_window ? sqlite3_bind_int(st, 8, c->window_end)
                           : sqlite3_bind_null(st, 8)) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
        } else if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_error(s, err, "recording consent");
        }
        stmt_put(st, cached);
    }
    if (rc == 0) {
        rc = consent_insert_children(s, sql_consent_scope_insert, id, c->scopes, c->n_scopes,
                                     err);
    }
    if (rc == 0) {
        rc = consent_insert_children(s, sql_consent_td_insert, id, c->source_tds,
                                     c->n_source_tds, err);
    }
    rc = tx_end(s, own, rc, err);
    if (rc == 0) {
        memcpy(c->id, id, sizeof(c->id));
    }
    return rc;
}

static int check_consent_id(const char *id, struct ly_error *err)
{
    size_t i;

    for (i = 0; id != NULL && i < CONSENT_ID_HEX_LEN; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
            break;
        }
    }
    if (id == NULL || i != CONSENT_ID_HEX_LEN || id[i] != '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_ID,
                             "a consent id is 32 lower-case hex digits");
    }
    return 0;
}

int store_consent_revoke(struct store *s, const char *id, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = check_consent_id(id, err);

    if (rc < 0) {
        return rc;
    }
    rc = prepare(s, "DELETE FROM consent WHERE id = ?1", &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st); /* the bind error is what we report */
        return rc;
    }
    rc = step_done(s, st, "revoking consent", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, CONSENT_R_NOT_FOUND, "no consent with id %s", id);
    }
    return rc;
}

int store_consent_revoke_pair(struct store *s, const char *user, const char *client_id,
                              size_t *n_revoked, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc;

    *n_revoked = 0;
    /* "IS" compares NULL with NULL as equal: user NULL selects workload-only grants. */
    rc = prepare(s, "DELETE FROM consent WHERE user IS ?1 AND client_id = ?2", &st, err);
    if (rc < 0) {
        return rc;
    }
    if (bind_text(st, 1, user) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, client_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st); /* the bind error is what we report */
        return rc;
    }
    rc = step_done(s, st, "revoking consent", err);
    if (rc < 0) {
        return rc;
    }
    *n_revoked = (size_t)sqlite3_changes(s->db);
    if (*n_revoked == 0) {
        char x[300];
        return ly_error_setx(err, LY_ERR_USAGE, CONSENT_R_NOT_FOUND,
                             "no consent for user %s and client %s",
                             user == NULL ? "(none: workload-only)"
                                          : ly_text_escape(user, strlen(user), 64, x, sizeof(x)),
                             client_id);
    }
    return 0;
}

/* Build a record from (id, user, client_id, granted_at, expires_at, granted_by, ws, we). */
static struct consent *consent_from_row(sqlite3_stmt *st)
{
    struct consent *c = consent_new();
    const unsigned char *cid = sqlite3_column_text(st, 2);

    if (c == NULL) {
        return NULL;
    }
    if (copy_text(c->id, sizeof(c->id), st, 0) < 0 || cid == NULL ||
        copy_text(c->granted_by, sizeof(c->granted_by), st, 5) < 0) {
        goto err;
    }
    if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
        c->no_user = 1;
    } else if (copy_text(c->user, sizeof(c->user), st, 1) < 0) {
        goto err;
    }
    c->client_id = strdup((const char *)cid);
    if (c->client_id == NULL) {
        goto err;
    }
    c->granted_at = sqlite3_column_int64(st, 3);
    c->expires_at = sqlite3_column_int64(st, 4);
    if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
        c->has_window = 1;
        c->window_start = sqlite3_column_int(st, 6);
        c->window_end = sqlite3_column_int(st, 7);
    }
    return c;
err:
    consent_free(c);
    return NULL;
}

/* Append a copy of column col to (*v, *n). */
static int consent_push(char ***v, size_t *n, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    char **grown;

    if (t == NULL) {
        return -1;
    }
    grown = realloc(*v, (*n + 1) * sizeof(**v));
    if (grown == NULL) {
        return -1;
    }
    *v = grown;
    grown[*n] = strdup((const char *)t);
    if (grown[*n] == NULL) {
        return -1;
    }
    (*n)++;
    return 0;
}

static int consent_age_cmp(const void *pa, const void *pb)
{
    const struct consent *a = *(struct consent *const *)pa;
    const struct consent *b = *(struct consent *const *)pb;

    if (a->granted_at != b->granted_at) {
        return a->granted_at < b->granted_at ? -1 : 1;
    }
    return strcmp(a->id, b->id);
}

/* The three list queries share one filter on the consent row c. */
#define CONSENT_FILTER " WHERE (?1 IS NULL OR c.user = ?1) AND (?2 IS NULL OR c.client_id = ?2)"

int store_consent_list(struct store *s, const char *user, const char *client_id,
                       struct consent ***out, size_t *n_out, struct ly_error *err)
{
    static const char *const q[3] = {
        "SELECT c.id, c.user, c.client_id, c.granted_at, c.expires_at, c.granted_by,"
        " c.window_start, c.window_end FROM consent c" CONSENT_FILTER " ORDER BY c.id",
        "SELECT x.consent_id, x.scope FROM consent_scope x JOIN consent c ON c.id ="
        " x.consent_id" CONSENT_FILTER " ORDER BY x.consent_id, x.scope",
        "SELECT x.consent_id, x.trust_domain FROM consent_td x JOIN consent c ON c.id ="
        " x.consent_id" CONSENT_FILTER " ORDER BY x.consent_id, x.trust_domain",
    };
    struct consent **v = NULL;
    size_t n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = NULL;
    int cached = 0;
    size_t i;
    int rc;

    *out = NULL;
    *n_out = 0;
    rc = read_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < 3; i++) {
        size_t k = 0;
        rc = stmt_get(s, q[i], &st, &cached, err);
        if (rc < 0) {
            goto err;
        }
        if (bind_text(st, 1, user) != SQLITE_OK || bind_text(st, 2, client_id) != SQLITE_OK) {
            rc = db_error(s, err, "bind");
            goto err;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *cid;
            int c = 1;
            int bad;
            if (i == 0) {
                {
                    void *g = grow_array(v, &cap, n, sizeof(*v), 16, err);
                    if (g == NULL) {
                        rc = LY_ERR_NOMEM;
                        goto err;
                    }
                    v = g;
                }
                v[n] = consent_from_row(st);
                if (v[n] == NULL) {
                    rc = ly_error_setx(err, LY_ERR_IO,
                                       0, "database: malformed consent row (or out of memory)");
                    goto err;
                }
                n++;
                continue;
            }
            /* Merge join: both sides are ordered by consent id. */
            cid = (const char *)sqlite3_column_text(st, 0);
            if (cid == NULL) {
                rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed consent row");
                goto err;
            }
            while (k < n && (c = strcmp(v[k]->id, cid)) < 0) {
                k++;
            }
            if (k == n || c != 0) {
                continue; /* cannot happen with the same filter in one snapshot; skip */
            }
            bad = i == 1 ? consent_push(&v[k]->scopes, &v[k]->n_scopes, st, 1)
                         : consent_push(&v[k]->source_tds, &v[k]->n_source_tds, st, 1);
            if (bad < 0) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory reading consent %s",
                                   v[k]->id);
                goto err;
            }
        }
        if (rc != SQLITE_DONE) {
            rc = db_error(s, err, "listing consent");
            goto err;
        }
        rc = 0;
        stmt_put(st, cached); /* read-only, fully stepped */
        st = NULL;
    }
    read_end(s);
    if (n > 1) {
        qsort(v, n, sizeof(*v), consent_age_cmp);
    }
    *out = v;
    *n_out = n;
    return 0;
err:
    stmt_put(st, cached);
    read_end(s);
    consent_list_free(v, n);
    return rc;
}

int store_data_version(struct store *s, int64_t *version, struct ly_error *err)
{
    static const char sql[] = "PRAGMA data_version";
    sqlite3_stmt *st = NULL;
    int cached = 0;
    int rc = stmt_get(s, sql, &st, &cached, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
    } else {
        rc = db_error(s, err, "data_version");
    }
    stmt_put(st, cached);
    return rc;
}

/* ---- federation -------------------------------------------------------------------------- */

/* A bare, canonical trust domain name (never a SPIFFE ID, never with upper case). */
static int fed_check_td(const char *td, const char *what, struct ly_error *err)
{
    char canon[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_error why;
    char x[160];

    ly_error_clear(&why);
    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "%s: no trust domain given", what);
    }
    if (spiffeid_parse_trust_domain(td, strlen(td), canon, sizeof(canon), &why) < 0 ||
        strcmp(canon, td) != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "%s: '%s' is not a bare trust domain name%s%s",
                             what, ly_text_escape(td, strlen(td), 64, x, sizeof(x)),
                             why.msg[0] != '\0' ? ": " : "", why.msg);
    }
    return 0;
}

/* 1 when the fixed-size field holds a NUL-terminated string. */
static int fed_terminated(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

static int fed_check_relation(const struct store_fed_relation *r, struct ly_error *err)
{
    int web;

    if (r == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federation relationship: none given");
    }
    if (!fed_terminated(r->trust_domain, sizeof(r->trust_domain)) ||
        !fed_terminated(r->url, sizeof(r->url)) ||
        !fed_terminated(r->profile, sizeof(r->profile)) ||
        !fed_terminated(r->endpoint_id, sizeof(r->endpoint_id))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship: a text field is not terminated");
    }
    LY_GUARD(fed_check_td(r->trust_domain, "federation relationship", err));
    if (strncmp(r->url, "https://", 8) != 0 || r->url[8] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship %s: the URL must start with https://",
                             r->trust_domain);
    }
    web = strcmp(r->profile, "https_web") == 0;
    if (!web && strcmp(r->profile, "https_spiffe") != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship %s: profile must be https_web or "
                             "https_spiffe",
                             r->trust_domain);
    }
    if (web && r->endpoint_id[0] != '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship %s: https_web takes no endpoint ID",
                             r->trust_domain);
    }
    if (!web && (r->endpoint_id[0] == '\0' || r->ca_pem != NULL)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship %s: https_spiffe needs an endpoint ID and "
                             "takes no CA certificates",
                             r->trust_domain);
    }
    if ((r->ca_pem == NULL) != (r->ca_len == 0) || r->ca_len > STORE_FED_CA_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federation relationship %s: CA certificates of %zu bytes (1 .. %u)",
                             r->trust_domain, r->ca_len, STORE_FED_CA_MAX);
    }
    return 0;
}

static int fed_check_bundle_fields(const struct store_fed_bundle *b, struct ly_error *err)
{
    if (b == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federated bundle: none given");
    }
    if (!fed_terminated(b->trust_domain, sizeof(b->trust_domain)) ||
        !fed_terminated(b->source, sizeof(b->source))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federated bundle: a text field is not "
                                                   "terminated");
    }
    LY_GUARD(fed_check_td(b->trust_domain, "federated bundle", err));
    if (b->json == NULL || b->len == 0 || b->len > STORE_FED_JSON_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federated bundle %s: %zu bytes of JSON (1 .. %u)", b->trust_domain,
                             b->json == NULL ? (size_t)0 : b->len, STORE_FED_JSON_MAX);
    }
    if (b->sequence < -1 || b->refresh_hint < -1) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federated bundle %s: sequence and refresh hint are -1 or more",
                             b->trust_domain);
    }
    return 0;
}

/*
 * The relationship's URL when td has one: 1 (url copied), 0 none, < 0 error. url may be NULL
 * when only existence matters.
 */
static int fed_relation_url(struct store *s, const char *td, char *url, size_t urlsz,
                            struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT url FROM fed_relation WHERE trust_domain = ?1", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
    } else if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
        rc = 0;
    } else if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading federation relationship");
    } else if (url != NULL && copy_text(url, urlsz, st, 0) < 0) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed federation relationship %s",
                           td);
    } else {
        rc = 1;
    }
    (void)sqlite3_finalize(st); /* read-only; errors were reported above */
    return rc;
}

/* The source of td's federated bundle: 1 (copied), 0 none, < 0 error. */
static int fed_bundle_source(struct store *s, const char *td, char *src, size_t srcsz,
                             struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT source FROM fed_bundle WHERE trust_domain = ?1", &st, err);

    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
    } else if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
        rc = 0;
    } else if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading federated bundle");
    } else if (copy_text(src, srcsz, st, 0) < 0) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "database: malformed federated bundle %s", td);
    } else {
        rc = 1;
    }
    (void)sqlite3_finalize(st); /* read-only; errors were reported above */
    return rc;
}

/* INSERT or replace one bundle row (source given separately: the bootstrap path forces it). */
static int fed_bundle_write(struct store *s, const struct store_fed_bundle *b, const char *source,
                            struct ly_error *err)
{
    sqlite3_stmt *st;
    int64_t updated = b->updated_at != 0 ? b->updated_at : ly_time_now();
    int rc = prepare(s,
                     "INSERT INTO fed_bundle(trust_domain, json, sequence, refresh_hint, source,"
                     " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                     " ON CONFLICT(trust_domain) DO UPDATE SET json = excluded.json,"
                     " sequence = excluded.sequence, refresh_hint = excluded.refresh_hint,"
                     " source = excluded.source, updated_at = excluded.updated_at",
                     &st, err);

    if (rc < 0) {
        return rc;
    }
    /* fed_check_bundle_fields capped len at STORE_FED_JSON_MAX, far below INT_MAX. */
    if (sqlite3_bind_text(st, 1, b->trust_domain, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 2, b->json, (int)b->len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, b->sequence) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, b->refresh_hint) != SQLITE_OK ||
        sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, updated) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st); /* the bind error is what we report */
        return rc;
    }
    return step_done(s, st, "recording federated bundle", err);
}

int store_fed_relation_add(struct store *s, const struct store_fed_relation *r,
                           const struct store_fed_bundle *bootstrap, struct ly_error *err)
{
    sqlite3_stmt *st = NULL;
    char url[2048];
    char src[16];
    int own = 0;
    int rc = fed_check_relation(r, err);

    if (rc < 0) {
        return rc;
    }
    if (bootstrap != NULL) {
        rc = fed_check_bundle_fields(bootstrap, err);
        if (rc < 0) {
            return rc;
        }
        if (strcmp(bootstrap->trust_domain, r->trust_domain) != 0) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "the bootstrap bundle is for %s, not for %s",
                                 bootstrap->trust_domain, r->trust_domain);
        }
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    /* Both checks inside the write transaction: no other writer can slip in between. */
    rc = fed_relation_url(s, r->trust_domain, url, sizeof(url), err);
    if (rc == 1) {
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_EXISTS,
                           "a federation relationship with trust domain %s already exists "
                           "(bundle endpoint %s)",
                           r->trust_domain, url);
    }
    if (rc == 0) {
        rc = fed_bundle_source(s, r->trust_domain, src, sizeof(src), err);
        if (rc == 1) {
            rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_CONFLICT,
                               "trust domain %s already has a %s bundle; delete it first "
                               "(lanyard bundle delete --trust-domain %s)",
                               r->trust_domain, src, r->trust_domain);
        }
    }
    if (rc == 0) {
        rc = prepare(s,
                     "INSERT INTO fed_relation(trust_domain, url, profile, endpoint_id, ca_pem,"
                     " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     &st, err);
    }
    if (rc == 0) {
        /* ca_len was capped at STORE_FED_CA_MAX by fed_check_relation. */
        if (sqlite3_bind_text(st, 1, r->trust_domain, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, r->url, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, r->profile, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 4, r->endpoint_id, -1, SQLITE_STATIC) != SQLITE_OK ||
            (r->ca_pem != NULL
                 ? sqlite3_bind_blob(st, 5, r->ca_pem, (int)r->ca_len, SQLITE_STATIC)
                 : sqlite3_bind_null(st, 5)) != SQLITE_OK ||
            sqlite3_bind_int64(st, 6, r->created_at != 0 ? r->created_at : ly_time_now()) !=
                SQLITE_OK) {
            rc = db_error(s, err, "bind");
            (void)sqlite3_finalize(st); /* the bind error is what we report */
        } else {
            rc = step_done(s, st, "recording federation relationship", err);
        }
    }
    if (rc == 0 && bootstrap != NULL) {
        rc = fed_bundle_write(s, bootstrap, "bootstrap", err);
    }
    return tx_end(s, own, rc, err);
}

/*
 * Fill r from a row (trust_domain, url, profile, endpoint_id, ca_pem, created_at,
 * last_attempt_at, last_success_at, last_error): 0, or -1 when a column is malformed or memory
 * ran out (r->ca_pem may then be set: the caller clears r).
 */
static int fed_relation_from_row(sqlite3_stmt *st, struct store_fed_relation *r)
{
    memset(r, 0, sizeof(*r));
    if (copy_text(r->trust_domain, sizeof(r->trust_domain), st, 0) < 0 ||
        copy_text(r->url, sizeof(r->url), st, 1) < 0 ||
        copy_text(r->profile, sizeof(r->profile), st, 2) < 0 ||
        copy_text(r->endpoint_id, sizeof(r->endpoint_id), st, 3) < 0 ||
        copy_text(r->last_error, sizeof(r->last_error), st, 8) < 0) {
        return -1;
    }
    if (sqlite3_column_type(st, 4) != SQLITE_NULL && copy_blob(&r->ca_pem, &r->ca_len, st, 4) < 0) {
        return -1;
    }
    r->created_at = sqlite3_column_int64(st, 5);
    r->last_attempt_at = sqlite3_column_int64(st, 6);
    r->last_success_at = sqlite3_column_int64(st, 7);
    return 0;
}

void store_fed_relation_clear(struct store_fed_relation *r)
{
    if (r == NULL) {
        return;
    }
    free(r->ca_pem);
    r->ca_pem = NULL;
    r->ca_len = 0;
}

void store_fed_relation_list_free(struct store_fed_relation *list, size_t n)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        store_fed_relation_clear(&list[i]);
    }
    free(list);
}

int store_fed_relation_get(struct store *s, const char *td, struct store_fed_relation *out,
                           int *found, struct ly_error *err)
{
    static const char sql[] = "SELECT trust_domain, url, profile, endpoint_id, ca_pem,"
                              " created_at, last_attempt_at, last_success_at, last_error"
                              " FROM fed_relation WHERE trust_domain = ?1";
    sqlite3_stmt *st;
    int rc;

    memset(out, 0, sizeof(*out));
    *found = 0;
    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federation relationship: no trust domain");
    }
    rc = prepare(s, sql, &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
    } else if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
        rc = 0;
    } else if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading federation relationship");
    } else if (fed_relation_from_row(st, out) < 0) {
        store_fed_relation_clear(out);
        memset(out, 0, sizeof(*out));
        rc = ly_error_setx(err, LY_ERR_IO, 0,
                           "database: malformed federation relationship (or out of memory)");
    } else {
        *found = 1;
        rc = 0;
    }
    (void)sqlite3_finalize(st); /* read-only; errors were reported above */
    return rc;
}

int store_fed_relation_list(struct store *s, struct store_fed_relation **out, size_t *n,
                            struct ly_error *err)
{
    static const char sql[] = "SELECT trust_domain, url, profile, endpoint_id, ca_pem,"
                              " created_at, last_attempt_at, last_success_at, last_error"
                              " FROM fed_relation ORDER BY trust_domain";
    struct store_fed_relation *list = NULL;
    sqlite3_stmt *st;
    size_t cnt = 0;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    rc = prepare(s, sql, &st, err);
    if (rc < 0) {
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void *g = grow_array(list, &cap, cnt, sizeof(*list), 4, err);
        if (g == NULL) {
            rc = LY_ERR_NOMEM;
            goto fail;
        }
        list = g;
        if (fed_relation_from_row(st, &list[cnt]) < 0) {
            store_fed_relation_clear(&list[cnt]);
            rc = ly_error_setx(err, LY_ERR_IO, 0,
                               "database: malformed federation relationship (or out of memory)");
            goto fail;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "listing federation relationships");
        goto fail;
    }
    (void)sqlite3_finalize(st); /* read-only, fully stepped */
    *out = list;
    *n = cnt;
    return 0;
fail:
    (void)sqlite3_finalize(st); /* the error above is what we report */
    store_fed_relation_list_free(list, cnt);
    return rc;
}

/* Run "DELETE ... WHERE trust_domain = ?1"; *changes receives the number of rows removed. */
static int fed_delete_rows(struct store *s, const char *sql, const char *td, int *changes,
                           const char *what, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, sql, &st, err);

    *changes = 0;
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st); /* the bind error is what we report */
        return rc;
    }
    rc = step_done(s, st, what, err);
    if (rc == 0) {
        *changes = sqlite3_changes(s->db);
    }
    return rc;
}

int store_fed_relation_delete(struct store *s, const char *td, struct ly_error *err)
{
    int changes = 0;
    int own = 0;
    int rc;

    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federation relationship: no trust domain");
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    rc = fed_delete_rows(s, "DELETE FROM fed_relation WHERE trust_domain = ?1", td, &changes,
                         "deleting federation relationship", err);
    if (rc == 0 && changes == 0) {
        char x[160];
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_NOT_FOUND,
                           "no federation relationship with trust domain %s",
                           ly_text_escape(td, strlen(td), 64, x, sizeof(x)));
    }
    if (rc == 0) {
        rc = fed_delete_rows(s, "DELETE FROM fed_bundle WHERE trust_domain = ?1", td, &changes,
                             "deleting federated bundle", err);
    }
    return tx_end(s, own, rc, err);
}

int store_fed_relation_status(struct store *s, const char *td, int64_t at, int success,
                              const char *error, struct ly_error *err)
{
    char msg[STORE_FED_ERROR_MAX + 1];
    sqlite3_stmt *st;
    size_t n = 0;
    int rc;

    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federation relationship: no trust domain");
    }
    msg[0] = '\0';
    if (!success) {
        if (error == NULL || error[0] == '\0') {
            error = "failed (no reason given)";
        }
        n = strlen(error);
        if (n > STORE_FED_ERROR_MAX) {
            /* Cut before a UTF-8 continuation byte, never inside a character. */
            n = STORE_FED_ERROR_MAX;
            while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80) {
                n--;
            }
        }
        memcpy(msg, error, n);
        msg[n] = '\0';
    }
    rc = prepare(s,
                 "UPDATE fed_relation SET last_attempt_at = ?2,"
                 " last_success_at = CASE WHEN ?3 THEN ?2 ELSE last_success_at END,"
                 " last_error = ?4 WHERE trust_domain = ?1",
                 &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, at) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, success ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, msg, (int)n, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
        (void)sqlite3_finalize(st); /* the bind error is what we report */
        return rc;
    }
    rc = step_done(s, st, "recording federation fetch state", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        char x[160];
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_NOT_FOUND,
                           "no federation relationship with trust domain %s",
                           ly_text_escape(td, strlen(td), 64, x, sizeof(x)));
    }
    return rc;
}

int store_fed_bundle_put(struct store *s, const struct store_fed_bundle *b, struct ly_error *err)
{
    char url[2048];
    int is_static;
    int own = 0;
    int rc = fed_check_bundle_fields(b, err);

    if (rc < 0) {
        return rc;
    }
    is_static = strcmp(b->source, "static") == 0;
    if (!is_static && strcmp(b->source, "endpoint") != 0 &&
        strcmp(b->source, "bootstrap") != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "federated bundle %s: source must be endpoint, bootstrap or static",
                             b->trust_domain);
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    rc = fed_relation_url(s, b->trust_domain, url, sizeof(url), err);
    if (rc == 1 && is_static) {
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_CONFLICT,
                           "%s is fetched from %s; delete the relationship first "
                           "(lanyard federation delete %s)",
                           b->trust_domain, url, b->trust_domain);
    } else if (rc == 0 && !is_static) {
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_NOT_FOUND,
                           "no federation relationship with trust domain %s: a %s bundle is "
                           "kept only with its relationship",
                           b->trust_domain, b->source);
    } else if (rc > 0) {
        rc = 0;
    }
    if (rc == 0) {
        rc = fed_bundle_write(s, b, b->source, err);
    }
    return tx_end(s, own, rc, err);
}

/* Fill b from a row (trust_domain, json, sequence, refresh_hint, source, updated_at). */
static int fed_bundle_from_row(sqlite3_stmt *st, struct store_fed_bundle *b)
{
    const void *v;
    size_t n;

    memset(b, 0, sizeof(*b));
    if (copy_text(b->trust_domain, sizeof(b->trust_domain), st, 0) < 0 ||
        copy_text(b->source, sizeof(b->source), st, 4) < 0) {
        return -1;
    }
    v = sqlite3_column_blob(st, 1);
    n = (size_t)sqlite3_column_bytes(st, 1);
    if (v == NULL || n == 0 || n > STORE_FED_JSON_MAX) {
        return -1;
    }
    /* NUL-terminated past len, so text parsers can take it as it is. */
    b->json = malloc(n + 1);
    if (b->json == NULL) {
        return -1;
    }
    memcpy(b->json, v, n);
    b->json[n] = '\0';
    b->len = n;
    b->sequence = sqlite3_column_int64(st, 2);
    b->refresh_hint = sqlite3_column_int64(st, 3);
    b->updated_at = sqlite3_column_int64(st, 5);
    return 0;
}

void store_fed_bundle_clear(struct store_fed_bundle *b)
{
    if (b == NULL) {
        return;
    }
    free(b->json);
    b->json = NULL;
    b->len = 0;
}

void store_fed_bundle_list_free(struct store_fed_bundle *list, size_t n)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        store_fed_bundle_clear(&list[i]);
    }
    free(list);
}

int store_fed_bundle_get(struct store *s, const char *td, struct store_fed_bundle *out,
                         int *found, struct ly_error *err)
{
    sqlite3_stmt *st;
    int rc;

    memset(out, 0, sizeof(*out));
    *found = 0;
    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federated bundle: no trust domain");
    }
    rc = prepare(s,
                 "SELECT trust_domain, json, sequence, refresh_hint, source, updated_at"
                 " FROM fed_bundle WHERE trust_domain = ?1",
                 &st, err);
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_bind_text(st, 1, td, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = db_error(s, err, "bind");
    } else if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
        rc = 0;
    } else if (rc != SQLITE_ROW) {
        rc = db_error(s, err, "reading federated bundle");
    } else if (fed_bundle_from_row(st, out) < 0) {
        store_fed_bundle_clear(out);
        memset(out, 0, sizeof(*out));
        rc = ly_error_setx(err, LY_ERR_IO, 0,
                           "database: malformed federated bundle (or out of memory)");
    } else {
        *found = 1;
        rc = 0;
    }
    (void)sqlite3_finalize(st); /* read-only; errors were reported above */
    return rc;
}

int store_fed_bundle_list(struct store *s, struct store_fed_bundle **out, size_t *n,
                          struct ly_error *err)
{
    struct store_fed_bundle *list = NULL;
    sqlite3_stmt *st;
    size_t cnt = 0;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    rc = prepare(s,
                 "SELECT trust_domain, json, sequence, refresh_hint, source, updated_at"
                 " FROM fed_bundle ORDER BY trust_domain",
                 &st, err);
    if (rc < 0) {
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void *g = grow_array(list, &cap, cnt, sizeof(*list), 4, err);
        if (g == NULL) {
            rc = LY_ERR_NOMEM;
            goto fail;
        }
        list = g;
        if (fed_bundle_from_row(st, &list[cnt]) < 0) {
            store_fed_bundle_clear(&list[cnt]);
            rc = ly_error_setx(err, LY_ERR_IO, 0,
                               "database: malformed federated bundle (or out of memory)");
            goto fail;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, "listing federated bundles");
        goto fail;
    }
    (void)sqlite3_finalize(st); /* read-only, fully stepped */
    *out = list;
    *n = cnt;
    return 0;
fail:
    (void)sqlite3_finalize(st); /* the error above is what we report */
    store_fed_bundle_list_free(list, cnt);
    return rc;
}

int store_fed_bundle_delete(struct store *s, const char *td, struct ly_error *err)
{
    char url[2048];
    char x[160];
    int changes = 0;
    int own = 0;
    int rc;

    if (td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "federated bundle: no trust domain");
    }
    rc = tx_begin(s, &own, err);
    if (rc < 0) {
        return rc;
    }
    rc = fed_relation_url(s, td, url, sizeof(url), err);
    if (rc == 1) {
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_CONFLICT,
                           "the bundle of %s belongs to its federation relationship (fetched "
                           "from %s); delete the relationship instead (lanyard federation "
                           "delete %s)",
                           td, url, td);
    }
    if (rc == 0) {
        rc = fed_delete_rows(s, "DELETE FROM fed_bundle WHERE trust_domain = ?1", td, &changes,
                             "deleting federated bundle", err);
    }
    if (rc == 0 && changes == 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, STORE_FED_R_NOT_FOUND,
                           "no federated bundle for trust domain %s",
                           ly_text_escape(td, strlen(td), 64, x, sizeof(x)));
    }
    return tx_end(s, own, rc, err);
}
