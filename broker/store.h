/*
 * store: lanyard's embedded SQLite database in the data directory (<data>/lanyard.db). It keeps
 * the trust domain's authorities (CA certificates and JWT signing keys, by reference to their
 * 0600 key files; never the private keys themselves), the bundle sequence number, and a record of
 * every issued SVID (serial, SPIFFE ID, not-after, fingerprint; never its key). SQL is only ever
 * prepared and bound; multi-row changes run in one transaction. Not thread-safe per handle.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

struct store;

/* Open (creating if needed, with mode 0600) the database file and bring its schema up to date. */
int store_open(const char *path, struct store **out, struct ly_error *err) LY_MUST_USE;

/* Close. NULL is a no-op. */
void store_close(struct store *s);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback never fails loudly). */
int store_begin(struct store *s, struct ly_error *err) LY_MUST_USE;
int store_commit(struct store *s, struct ly_error *err) LY_MUST_USE;
void store_rollback(struct store *s);

/* Key/value settings (e.g. "trust_domain", "bundle_sequence"). get: LY_ERR_USAGE if absent. */
int store_meta_set(struct store *s, const char *key, const char *value, struct ly_error *err)
    LY_MUST_USE;
int store_meta_get(struct store *s, const char *key, char *value, size_t valsz,
                   struct ly_error *err) LY_MUST_USE;

/* A certificate authority of this trust domain. */
struct store_ca {
    int64_t id;
    char key_type[16];  /* "ec-p256" | "ed25519" */
    char key_file[256]; /* relative to the data directory */
    int64_t not_before;
    int64_t not_after;
    char status[16];    /* "active" (signing) | "retired" (published until its SVIDs expire) */
    uint8_t *cert_der;  /* owned; freed by store_ca_list_free */
    size_t cert_len;
};

/* Record a CA. Returns its id in *id. */
int store_ca_add(struct store *s, const struct store_ca *ca, int64_t *id, struct ly_error *err)
    LY_MUST_USE;

/* All CAs, newest first. *out is an array of *n entries; free with store_ca_list_free. */
int store_ca_list(struct store *s, struct store_ca **out, size_t *n, struct ly_error *err)
    LY_MUST_USE;
void store_ca_list_free(struct store_ca *list, size_t n);

/* A JWT signing key of this trust domain. */
struct store_jwt_key {
    char kid[128];
    char key_file[256];
    char status[16];
    int64_t created_at;
    uint8_t *spki; /* owned */
    size_t spki_len;
};

int store_jwt_key_add(struct store *s, const struct store_jwt_key *k, struct ly_error *err)
    LY_MUST_USE;
/* All JWT keys, newest first; free with store_jwt_key_list_free. */
int store_jwt_key_list(struct store *s, struct store_jwt_key **out, size_t *n,
                       struct ly_error *err) LY_MUST_USE;
void store_jwt_key_list_free(struct store_jwt_key *list, size_t n);

/* A record of an issued X509-SVID (no key material). */
struct store_svid {
    char serial_hex[80];
    char spiffe_id[2049];
    int64_t not_after;
    char sha256_hex[65];
    int64_t ca_id;
    int64_t issued_at;
};

int store_svid_record(struct store *s, const struct store_svid *rec, struct ly_error *err)
    LY_MUST_USE;
/* Number of recorded SVIDs (for tests and status). */
int store_svid_count(struct store *s, int64_t *count, struct ly_error *err) LY_MUST_USE;

#endif
