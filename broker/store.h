/*
 * store: lanyard's embedded SQLite database in the data directory (<data>/lanyard.db). It keeps
 * the trust domain's authorities (CA certificates and JWT signing keys, by reference to their
 * 0600 key files; never the private keys themselves), the bundle sequence number, and a record of
 * every issued SVID (serial, SPIFFE ID, not-after, fingerprint; never its key), and the
 * registration entries that attestation matches (schema v2), the consent registry (schema v3)
 * and federation with foreign trust domains: relationships and their bundles (schema v4). SQL is
 * only ever prepared and bound; multi-row changes run in one transaction. Not thread-safe per
 * handle.
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
    char status[16];    /* "active" (signing) | "retired" (published until its SVIDs expire);
                           "prepared" only for the next-CA slot (store_ca_next_get) */
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

/*
 * Set the status ("active" | "retired") of CA `id`. LY_ERR_USAGE when no such CA exists. Meant
 * to run inside the caller's transaction together with the other changes of a rotation step.
 */
int store_ca_set_status(struct store *s, int64_t id, const char *status, struct ly_error *err)
    LY_MUST_USE;

/*
 * The prepared next CA: published in the bundle but not signing yet, so it has no `ca` row
 * (that table only holds CAs that sign or have signed, and its CHECK allows exactly 'active'
 * and 'retired'). It lives in one slot of `meta` under the keys "ca_next.*" (certificate as
 * hex DER, key type, key file, validity) until it takes over, when the caller moves it into
 * `ca` with store_ca_add() and clears the slot in the same transaction. `id` is unused here.
 */
int store_ca_next_put(struct store *s, const struct store_ca *ca, struct ly_error *err)
    LY_MUST_USE;
/*
 * Read the slot: *found = 0 when it is empty, else 1 and *out filled (out->cert_der owned by
 * the caller: free with free(); status is "prepared", id 0). A half-filled slot is LY_ERR_IO.
 */
int store_ca_next_get(struct store *s, struct store_ca *out, int *found, struct ly_error *err)
    LY_MUST_USE;
/* Empty the slot (no error when it is already empty). */
int store_ca_next_clear(struct store *s, struct ly_error *err) LY_MUST_USE;

/* Remove a setting; removing one that is not set is not an error. */
int store_meta_delete(struct store *s, const char *key, struct ly_error *err) LY_MUST_USE;

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
/*
 * The latest not-after of the SVIDs recorded for CA `ca_id`: *found = 0 when it signed none,
 * else 1 and *max_not_after set. Decides how long a retired CA must stay in the bundle.
 */
int store_svid_max_not_after(struct store *s, int64_t ca_id, int64_t *max_not_after, int *found,
                             struct ly_error *err) LY_MUST_USE;
/* Number of recorded SVIDs (for tests and status). */
int store_svid_count(struct store *s, int64_t *count, struct ly_error *err) LY_MUST_USE;

/* ---- registration entries (schema v2; see broker/entry.h for the model) ------------------ */

struct entry;
struct entry_selector;

/*
 * Store a new entry. Validate it first with entry_validate() (which also sorts its selectors);
 * this function assigns e->id (128 random bits, hex) and e->created_at. The entry row and all
 * its selector, DNS and federation rows are written in ONE transaction (BEGIN IMMEDIATE, or a
 * savepoint inside the caller's open transaction), so a crash never leaves half an entry.
 * An entry with the same SPIFFE ID and the same selector set is refused with LY_ERR_USAGE
 * (reason ENTRY_R_DUPLICATE) naming the existing entry's id. LY_ERR_IO on database errors.
 */
int store_entry_add(struct store *s, struct entry *e, struct ly_error *err) LY_MUST_USE;

/*
 * Delete an entry and its rows (one statement; child rows cascade). LY_ERR_USAGE with
 * ENTRY_R_NOT_FOUND when no entry has that id, LY_ERR_PARSE (ENTRY_R_BAD_ENTRY_ID) when the id
 * is malformed.
 */
int store_entry_delete(struct store *s, const char *id, struct ly_error *err) LY_MUST_USE;

/*
 * Load one entry. On success *out is a new entry the caller frees with entry_free(). Errors as
 * store_entry_delete().
 */
int store_entry_get(struct store *s, const char *id, struct entry **out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Every entry, oldest first (a consistent snapshot: one read transaction, four queries merged
 * in memory, so 10,000 entries load in milliseconds). *out is an array of *n entries the caller
 * frees with entry_list_free() (NULL when there are none).
 */
int store_entry_list(struct store *s, struct entry ***out, size_t *n, struct ly_error *err)
    LY_MUST_USE;

/* Number of registered entries. */
int store_entry_count(struct store *s, int64_t *count, struct ly_error *err) LY_MUST_USE;

/*
 * Whether any entry uses a name selector (unix:user, unix:group, unix:supplementary_group), so
 * attestation can skip the user and group database lookups when none does. *uses is 1 or 0.
 */
int store_entry_uses_names(struct store *s, int *uses, struct ly_error *err) LY_MUST_USE;

/*
 * Attestation lookup: every entry ALL of whose selectors are among `facts` (the n_facts
 * selectors describing one workload, as attest_facts_selectors() produces), oldest first.
 * Uses the (type, value) index, so its cost follows the number of candidate selector rows, not
 * the number of entries. *out as for store_entry_list(); *n = 0 when nothing matches (the
 * caller then refuses: there is no default identity).
 */
int store_entry_match(struct store *s, const struct entry_selector *facts, size_t n_facts,
                      struct entry ***out, size_t *n, struct ly_error *err) LY_MUST_USE;


/* ---- consent registry (schema v3; see broker/consent.h for the model) -------------------- */

struct consent;

/*
 * Store a new consent record. Validate it first with consent_validate(); this function assigns
 * c->id (128 random bits, hex). The record row and all its scope and trust-domain rows are
 * written in ONE transaction (BEGIN IMMEDIATE, or a savepoint inside the caller's open
 * transaction, so a bulk load can wrap many adds in one). LY_ERR_IO on database errors.
 */
int store_consent_add(struct store *s, struct consent *c, struct ly_error *err) LY_MUST_USE;

/*
 * Revoke one record by id (its rows cascade). LY_ERR_PARSE (CONSENT_R_BAD_ID) for a malformed
 * id, LY_ERR_USAGE (CONSENT_R_NOT_FOUND) when no record has it.
 */
int store_consent_revoke(struct store *s, const char *id, struct ly_error *err) LY_MUST_USE;

/*
 * Revoke every record of (user, client_id); user NULL means the workload-only records.
 * *n_revoked receives the count; none is LY_ERR_USAGE (CONSENT_R_NOT_FOUND).
 */
int store_consent_revoke_pair(struct store *s, const char *user, const char *client_id,
                              size_t *n_revoked, struct ly_error *err) LY_MUST_USE;

/*
 * Records, oldest first, filtered by user and/or client ID (NULL = any; the user filter never
 * matches workload-only records). With no filter this is the load for consent_index_build().
 * One read transaction, three queries merged in memory. *out is an array of *n records the
 * caller frees with consent_list_free() (NULL when there are none).
 */
int store_consent_list(struct store *s, const char *user, const char *client_id,
                       struct consent ***out, size_t *n, struct ly_error *err) LY_MUST_USE;

/*
 * SQLite's data version of this connection (PRAGMA data_version): it changes whenever another
 * connection (another process, e.g. `lanyard consent revoke`, `lanyard federation add` or
 * `lanyard bundle set`) commits. Cheap enough to call before every decision, which is how a
 * revocation reaches the very next request and how the daemon notices federation changes.
 */
int store_data_version(struct store *s, int64_t *version, struct ly_error *err) LY_MUST_USE;

/* ---- federation (schema v4) -------------------------------------------------------------- */

/*
 * A federation relationship says where a foreign trust domain's bundle is fetched from (its
 * bundle endpoint, SPIFFE Trust Domain and Bundle §5) and how that endpoint is authenticated.
 * The bundle itself is a separate row (struct store_fed_bundle), because a foreign bundle may
 * also be set statically, without any relationship. The store keeps these invariants, each
 * checked inside the writing transaction so that no two writers can break them:
 *   - a trust domain has at most one relationship and at most one federated bundle;
 *   - a bundle of source "endpoint" or "bootstrap" exists only with its relationship (a fetch
 *     that completes after the relationship was deleted cannot bring the bundle back);
 *   - a bundle of source "static" exists only without a relationship.
 * Nothing here checks that a trust domain differs from this data directory's own: the callers
 * (CLI, daemon) know it. Changes by another process show up in store_data_version().
 */

#define STORE_FED_URL_MAX 2047               /* bytes of a bundle endpoint URL */
#define STORE_FED_CA_MAX (1024u * 1024u)     /* bytes of https_web trust anchors (PEM) */
#define STORE_FED_JSON_MAX (4u * 1024u * 1024u) /* bytes of a stored bundle (JSON) */
#define STORE_FED_ERROR_MAX 255              /* bytes of last_error kept (longer is cut) */

/* ly_error.reason of the federation calls' refusals (all LY_ERR_USAGE). */
enum store_fed_reason {
    STORE_FED_R_NOT_FOUND = 1, /* no relationship / no bundle for that trust domain */
    STORE_FED_R_EXISTS,        /* a relationship for that trust domain already exists */
    STORE_FED_R_CONFLICT,      /* static bundle vs relationship (see the invariants above) */
};

struct store_fed_relation {
    char trust_domain[256];
    char url[2048];              /* https://... */
    char profile[16];            /* "https_web" | "https_spiffe" (CHECK constraint) */
    char endpoint_id[2049];      /* https_spiffe: the endpoint server's SPIFFE ID; ""
                                    for https_web */
    uint8_t *ca_pem;             /* https_web: optional trust anchors (PEM), owned;
                                    NULL = the system's */
    size_t ca_len;
    int64_t created_at;
    /* fetch state, written by the daemon after each attempt */
    int64_t last_attempt_at;     /* 0 = never */
    int64_t last_success_at;     /* 0 = never */
    char last_error[256];        /* "" when the last attempt succeeded or none was made */
};

struct store_fed_bundle {
    char trust_domain[256];
    uint8_t *json;               /* the SPIFFE bundle JSON as accepted (owned) */
    size_t len;
    int64_t sequence;            /* spiffe_sequence, -1 when absent */
    int64_t refresh_hint;        /* spiffe_refresh_hint seconds, -1 when absent */
    char source[16];             /* "endpoint" (fetched) | "bootstrap" (given with the
                                    relationship) | "static" (lanyard bundle set) */
    int64_t updated_at;
};

/*
 * Record a relationship and its bootstrap bundle (NULL for none) in ONE transaction (BEGIN
 * IMMEDIATE, or a savepoint inside the caller's open transaction): a failure leaves nothing.
 * r->trust_domain must be a bare, valid trust domain name; r->url start with "https://" (the
 * caller has parsed it); r->profile "https_web" (endpoint_id "", ca_pem optional) or
 * "https_spiffe" (endpoint_id set, ca_pem NULL). r->created_at 0 means now; the fetch state
 * fields are ignored (a new relationship was never fetched). The bootstrap bundle must be for
 * the same trust domain; it is stored with source "bootstrap" whatever bootstrap->source says,
 * and updated_at 0 means now. The store does not parse the JSON: the caller has accepted it.
 * Refused with LY_ERR_USAGE: malformed fields (reason 0), a relationship for that trust domain
 * already exists (STORE_FED_R_EXISTS, the message names it), or a static bundle for it exists
 * (STORE_FED_R_CONFLICT). LY_ERR_IO on database errors.
 */
int store_fed_relation_add(struct store *s, const struct store_fed_relation *r,
                           const struct store_fed_bundle *bootstrap, struct ly_error *err)
    LY_MUST_USE;

/*
 * The relationship of trust domain td: *found = 0 when there is none (not an error), else 1 and
 * *out filled; out->ca_pem is owned by the caller: release with store_fed_relation_clear(out).
 * td NULL is LY_ERR_USAGE. *out is zeroed first in every case.
 */
int store_fed_relation_get(struct store *s, const char *td, struct store_fed_relation *out,
                           int *found, struct ly_error *err) LY_MUST_USE;

/*
 * Every relationship, ordered by trust domain. *out is an array of *n (NULL when none) the
 * caller frees with store_fed_relation_list_free().
 */
int store_fed_relation_list(struct store *s, struct store_fed_relation **out, size_t *n,
                            struct ly_error *err) LY_MUST_USE;
void store_fed_relation_list_free(struct store_fed_relation *list, size_t n); /* NULL: no-op */
/* Free r->ca_pem and reset it (NULL, 0). NULL is a no-op. */
void store_fed_relation_clear(struct store_fed_relation *r);

/*
 * Delete the relationship AND its federated bundle in one transaction. LY_ERR_USAGE
 * (STORE_FED_R_NOT_FOUND) when there is no relationship for td.
 */
int store_fed_relation_delete(struct store *s, const char *td, struct ly_error *err)
    LY_MUST_USE;

/*
 * Record a fetch attempt at time `at`: last_attempt_at = at; on success last_success_at = at
 * and last_error = ""; on failure last_error = error (cut to STORE_FED_ERROR_MAX bytes on a
 * UTF-8 boundary; NULL or "" becomes "failed (no reason given)" so that a failure is never
 * mistaken for a success) and last_success_at is kept. LY_ERR_USAGE (STORE_FED_R_NOT_FOUND)
 * when the relationship is gone. The text is stored as given: escape it when printing.
 */
int store_fed_relation_status(struct store *s, const char *td, int64_t at, int success,
                              const char *error, struct ly_error *err) LY_MUST_USE;

/*
 * Insert or replace the federated bundle of b->trust_domain (b->json: 1 .. STORE_FED_JSON_MAX
 * bytes, not parsed here; b->updated_at 0 means now). Source "endpoint" or "bootstrap" needs
 * the trust domain's relationship, "static" needs its absence: else LY_ERR_USAGE
 * (STORE_FED_R_NOT_FOUND, resp. STORE_FED_R_CONFLICT: "TD is fetched from URL; delete the
 * relationship first"). Checked and written in one transaction.
 */
int store_fed_bundle_put(struct store *s, const struct store_fed_bundle *b, struct ly_error *err)
    LY_MUST_USE;

/*
 * The federated bundle of td: *found = 0 when there is none, else 1 and *out filled (out->json
 * owned by the caller, NUL-terminated past len: release with store_fed_bundle_clear(out)).
 */
int store_fed_bundle_get(struct store *s, const char *td, struct store_fed_bundle *out,
                         int *found, struct ly_error *err) LY_MUST_USE;

/* Every federated bundle, by trust domain; free with store_fed_bundle_list_free(). */
int store_fed_bundle_list(struct store *s, struct store_fed_bundle **out, size_t *n,
                          struct ly_error *err) LY_MUST_USE;
void store_fed_bundle_list_free(struct store_fed_bundle *list, size_t n); /* NULL: no-op */
/* Free b->json and reset it (NULL, 0). NULL is a no-op. */
void store_fed_bundle_clear(struct store_fed_bundle *b);

/*
 * Delete the federated bundle of td. LY_ERR_USAGE when there is none (STORE_FED_R_NOT_FOUND)
 * and when td has a relationship (STORE_FED_R_CONFLICT: its bundle goes only with it, through
 * store_fed_relation_delete()).
 */
int store_fed_bundle_delete(struct store *s, const char *td, struct ly_error *err) LY_MUST_USE;

#endif
