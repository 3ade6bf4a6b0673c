/*
 * ca: creates and loads the trust domain's authorities. Ordering keeps a crash harmless: key
 * files are written first under fresh unique names (0600, atomic, never replacing anything),
 * then one store transaction records them; if the transaction fails the new key files are
 * removed, and the store alone decides what exists. It never logs or returns key bytes.
 */
#define _GNU_SOURCE
#include "ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "../common/ly_b64.h"
#include "../common/ly_file.h"
#include "../common/ly_time.h"
#include "../svid/jwtsvid.h"
#include "../svid/x509svid.h"
#include "store.h"

#define CA_PATH_MAX 4096

struct ca_state {
    char data_dir[CA_PATH_MAX];
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct store *store;
    struct x509svid_ca *signer; /* the active CA, ready to mint; borrows ca_key */
    struct svid_key *ca_key;
    int64_t ca_id;
    struct svid_key *jwt_key;
    char kid[128];
    int64_t refresh_hint;
    uint64_t sequence;
};

static int path_join(char *out, size_t outsz, const char *dir, const char *name,
                     struct ly_error *err)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= outsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "path too long under %.64s", dir);
    }
    return 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Write a private key as PKCS#8 PEM to DATA/keys/<prefix>-<random>.key; name goes to rel. */
static int write_key_file(const char *data_dir, const char *prefix, const struct svid_key *key,
                          char *rel, size_t relsz, struct ly_error *err)
{
    char keys_dir[CA_PATH_MAX];
    char path[CA_PATH_MAX];
    uint8_t rnd[8];
    char rhex[17];
    struct ly_buf pem;
    int n;
    int rc;

    rc = path_join(keys_dir, sizeof(keys_dir), data_dir, "keys", err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_mkdir_p(keys_dir, 0700, err);
    if (rc < 0) {
        return rc;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "getrandom failed");
    }
    hex_encode(rnd, sizeof(rnd), rhex);
    n = snprintf(rel, relsz, "keys/%s-%s.key", prefix, rhex);
    if (n < 0 || (size_t)n >= relsz) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "key file name too long");
    }
    rc = path_join(path, sizeof(path), data_dir, rel, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_to_pkcs8_pem(key, &pem, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_write_atomic(path, pem.data, pem.len, 0600, LY_FILE_NO_REPLACE, err);
    ly_buf_free(&pem);
    return rc;
}

static void remove_key_file(const char *data_dir, const char *rel)
{
    char path[CA_PATH_MAX];

    if (rel[0] == '\0' || path_join(path, sizeof(path), data_dir, rel, NULL) < 0) {
        return;
    }
    (void)unlink(path); /* cleanup after a failed init: the store never referenced it */
}

static int load_key_file(const char *data_dir, const char *rel, struct svid_key **out,
                         struct ly_error *err)
{
    char path[CA_PATH_MAX];
    struct ly_buf pem;
    int rc;

    rc = path_join(path, sizeof(path), data_dir, rel, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_read(path, 64 * 1024, 1, &pem, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_parse(pem.data, pem.len, out, err);
    ly_buf_free(&pem);
    if (rc < 0) {
        (void)ly_error_wrap(err, "key file %s", path);
    }
    return rc;
}

/* kid: base64url of the first 16 bytes of SHA-256(SPKI): stable, unique per key. */
static int make_kid(const uint8_t *spki, size_t len, char *kid, size_t kidsz,
                    struct ly_error *err)
{
    uint8_t h[WC_SHA256_DIGEST_SIZE];
    struct ly_buf b;
    int rc;

    if (len > 0xffffffffu || wc_Sha256Hash(spki, (word32)len, h) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 failed");
    }
    rc = ly_b64_encode(h, 16, 1, &b, 64, err);
    if (rc < 0) {
        return rc;
    }
    if (b.len + 1 > kidsz) {
        ly_buf_free(&b);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "kid too long");
    }
    memcpy(kid, b.data, b.len + 1);
    ly_buf_free(&b);
    return 0;
}

static int open_store(const char *data_dir, struct store **out, struct ly_error *err)
{
    char path[CA_PATH_MAX];
    int rc = path_join(path, sizeof(path), data_dir, "lanyard.db", err);

    if (rc < 0) {
        return rc;
    }
    return store_open(path, out, err);
}

int ca_init(const char *data_dir, const struct ca_init_params *p, struct ly_error *err)
{
    struct store *st = NULL;
    struct svid_key *ca_key = NULL;
    struct svid_key *jwt_key = NULL;
    struct ly_buf cert;
    struct ly_buf spki;
    struct x509svid_info info;
    struct store_ca rec;
    struct store_jwt_key jrec;
    char existing[SPIFFEID_TD_MAX_LEN + 1];
    char seq[32];
    int64_t now = ly_time_now();
    int64_t id;
    int in_tx = 0;
    int rc;

    ly_buf_init(&cert, 0);
    ly_buf_init(&spki, 0);
    memset(&rec, 0, sizeof(rec));
    memset(&jrec, 0, sizeof(jrec));
    if (p->ttl < CA_MIN_TTL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "CA lifetime must be at least %d s",
                             CA_MIN_TTL);
    }
    rc = ly_file_mkdir_p(data_dir, 0700, err);
    if (rc < 0) {
        return rc;
    }
    rc = open_store(data_dir, &st, err);
    if (rc < 0) {
        return rc;
    }
    {
        struct ly_error probe;
        ly_error_clear(&probe);
        if (store_meta_get(st, "trust_domain", existing, sizeof(existing), &probe) == 0) {
            rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                               "%s already holds the CA of trust domain %s; refusing to "
                               "overwrite it",
                               data_dir, existing);
            goto out;
        }
        if (probe.code != LY_ERR_USAGE) {
            rc = ly_error_setx(err, probe.code, 0, "%s", probe.msg);
            goto out;
        }
    }
    /* 1. Keys and certificate in memory. */
    rc = svid_key_generate(p->key_type, &ca_key, err);
    if (rc < 0) {
        goto out;
    }
    rc = x509svid_ca_create(ca_key, p->trust_domain, now, p->ttl, &cert, err);
    if (rc < 0) {
        goto out;
    }
    rc = x509svid_cert_info(cert.data, cert.len, &info, err);
    if (rc < 0) {
        goto out;
    }
    rc = svid_key_generate(SVID_KEY_EC_P256, &jwt_key, err);
    if (rc < 0) {
        goto out;
    }
    rc = svid_key_public_der(jwt_key, &spki, err);
    if (rc < 0) {
        goto out;
    }
    rc = make_kid(spki.data, spki.len, jrec.kid, sizeof(jrec.kid), err);
    if (rc < 0) {
        goto out;
    }
    /* 2. Key files, under fresh names that nothing references yet. */
    rc = write_key_file(data_dir, "ca", ca_key, rec.key_file, sizeof(rec.key_file), err);
    if (rc < 0) {
        goto out;
    }
    rc = write_key_file(data_dir, "jwt", jwt_key, jrec.key_file, sizeof(jrec.key_file), err);
    if (rc < 0) {
        goto out;
    }
    /* 3. One transaction makes them real. */
    rc = store_begin(st, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 1;
    (void)snprintf(rec.key_type, sizeof(rec.key_type), "%s", svid_key_type_name(p->key_type));
    (void)snprintf(rec.status, sizeof(rec.status), "active");
    rec.cert_der = cert.data;
    rec.cert_len = cert.len;
    rec.not_before = info.not_before;
    rec.not_after = info.not_after;
    rc = store_ca_add(st, &rec, &id, err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(jrec.status, sizeof(jrec.status), "active");
    jrec.spki = spki.data;
    jrec.spki_len = spki.len;
    jrec.created_at = now;
    rc = store_jwt_key_add(st, &jrec, err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(seq, sizeof(seq), "1");
    rc = store_meta_set(st, "bundle_sequence", seq, err);
    if (rc == 0) {
        rc = store_meta_set(st, "trust_domain", p->trust_domain, err);
    }
    if (rc < 0) {
        goto out;
    }
    rc = store_commit(st, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 0;
out:
    if (in_tx) {
        store_rollback(st);
    }
    if (rc < 0) {
        remove_key_file(data_dir, rec.key_file);
        remove_key_file(data_dir, jrec.key_file);
    }
    ly_buf_free(&cert);
    ly_buf_free(&spki);
    svid_key_free(ca_key);
    svid_key_free(jwt_key);
    store_close(st);
    return rc;
}

int ca_open(const char *data_dir, struct ca_state **out, struct ly_error *err)
{
    struct ca_state *ca;
    struct store_ca *cas = NULL;
    size_t n_cas = 0;
    struct store_jwt_key *jks = NULL;
    size_t n_jks = 0;
    char buf[64];
    size_t i;
    int rc;

    *out = NULL;
    if (!ly_file_exists(data_dir)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "no data directory at %s; run 'lanyard ca init --trust-domain TD' "
                             "first (or pass --data DIR)",
                             data_dir);
    }
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = snprintf(ca->data_dir, sizeof(ca->data_dir), "%s", data_dir);
    if (rc < 0 || (size_t)rc >= sizeof(ca->data_dir)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "data directory path too long");
        goto fail;
    }
    rc = open_store(data_dir, &ca->store, err);
    if (rc < 0) {
        goto fail;
    }
    rc = store_meta_get(ca->store, "trust_domain", ca->td, sizeof(ca->td), err);
    if (rc < 0) {
        ly_error_clear(err);
        rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                           "%s has no trust domain yet; run 'lanyard ca init --trust-domain TD'",
                           data_dir);
        goto fail;
    }
    ca->refresh_hint = CA_DEFAULT_REFRESH_HINT;
    rc = store_meta_get(ca->store, "bundle_sequence", buf, sizeof(buf), err);
    if (rc < 0) {
        goto fail;
    }
    {
        char *end = NULL;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end == buf || *end != '\0') {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: bad bundle sequence");
            goto fail;
        }
        ca->sequence = (uint64_t)v;
    }
    rc = store_ca_list(ca->store, &cas, &n_cas, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_cas; i++) {
        if (strcmp(cas[i].status, "active") == 0) {
            break;
        }
    }
    if (i == n_cas) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "no active CA recorded in %s", data_dir);
        goto fail;
    }
    rc = load_key_file(data_dir, cas[i].key_file, &ca->ca_key, err);
    if (rc < 0) {
        goto fail;
    }
    /* The signer borrows the key and checks that it matches the certificate. */
    rc = x509svid_ca_new(cas[i].cert_der, cas[i].cert_len, ca->ca_key, &ca->signer, err);
    if (rc < 0) {
        (void)ly_error_wrap(err, "loading CA %lld", (long long)cas[i].id);
        goto fail;
    }
    ca->ca_id = cas[i].id;
    rc = store_jwt_key_list(ca->store, &jks, &n_jks, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_jks; i++) {
        if (strcmp(jks[i].status, "active") == 0) {
            break;
        }
    }
    if (i == n_jks) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "no active JWT key recorded in %s", data_dir);
        goto fail;
    }
    rc = load_key_file(data_dir, jks[i].key_file, &ca->jwt_key, err);
    if (rc < 0) {
        goto fail;
    }
    if (!svid_key_matches_public(ca->jwt_key, jks[i].spki, jks[i].spki_len)) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "JWT key file %s does not match its record",
                           jks[i].key_file);
        goto fail;
    }
    (void)snprintf(ca->kid, sizeof(ca->kid), "%s", jks[i].kid);
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    *out = ca;
    return 0;
fail:
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    ca_close(ca);
    return rc;
}

void ca_close(struct ca_state *ca)
{
    if (ca == NULL) {
        return;
    }
    x509svid_ca_free(ca->signer);
    svid_key_free(ca->ca_key);
    svid_key_free(ca->jwt_key);
    store_close(ca->store);
    free(ca);
}

const char *ca_trust_domain(const struct ca_state *ca)
{
    return ca->td;
}

int ca_bundle(struct ca_state *ca, int64_t now, struct bundle **out, struct ly_error *err)
{
    struct bundle *b = NULL;
    struct store_ca *cas = NULL;
    size_t n_cas = 0;
    struct store_jwt_key *jks = NULL;
    size_t n_jks = 0;
    size_t i;
    int rc;

    *out = NULL;
    rc = bundle_new(ca->td, &b, err);
    if (rc < 0) {
        return rc;
    }
    rc = store_ca_list(ca->store, &cas, &n_cas, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_cas; i++) {
        /* An expired CA can no longer vouch for anything: leave it out. */
        if (cas[i].not_after <= now) {
            continue;
        }
        rc = bundle_add_x509_authority(b, cas[i].cert_der, cas[i].cert_len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    rc = store_jwt_key_list(ca->store, &jks, &n_jks, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_jks; i++) {
        rc = bundle_add_jwt_authority(b, jks[i].kid, jks[i].spki, jks[i].spki_len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    bundle_set_sequence(b, ca->sequence);
    bundle_set_refresh_hint(b, ca->refresh_hint);
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    *out = b;
    return 0;
fail:
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    bundle_free(b);
    return rc;
}

int ca_mint_x509(struct ca_state *ca, const struct spiffeid *id, const uint8_t *spki,
                 size_t spki_len, int64_t ttl, const char *const *dns, size_t n_dns,
                 struct ly_buf *cert_der, struct ly_error *err)
{
    struct x509svid_info info;
    struct store_svid rec;
    int64_t now = ly_time_now();
    int rc;

    ly_buf_init(cert_der, 0);
    if (!spiffeid_member_of(id, ca->td)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "%s is not in trust domain %s; this CA only issues identities "
                             "of its own trust domain",
                             id->str, ca->td);
    }
    rc = x509svid_mint(ca->signer, id, spki, spki_len, dns, n_dns, now, ttl, cert_der, err);
    if (rc < 0) {
        return rc;
    }
    rc = x509svid_cert_info(cert_der->data, cert_der->len, &info, err);
    if (rc < 0) {
        goto fail;
    }
    memset(&rec, 0, sizeof(rec));
    (void)snprintf(rec.serial_hex, sizeof(rec.serial_hex), "%s", info.serial_hex);
    (void)snprintf(rec.spiffe_id, sizeof(rec.spiffe_id), "%s", id->str);
    (void)snprintf(rec.sha256_hex, sizeof(rec.sha256_hex), "%s", info.sha256_hex);
    rec.not_after = info.not_after;
    rec.ca_id = ca->ca_id;
    rec.issued_at = now;
    /* Recorded before it is handed out: nothing issued goes unrecorded. */
    rc = store_svid_record(ca->store, &rec, err);
    if (rc < 0) {
        goto fail;
    }
    return 0;
fail:
    ly_buf_free(cert_der);
    return rc;
}

int ca_mint_jwt(struct ca_state *ca, const struct spiffeid *id, const char *const *aud,
                size_t n_aud, int64_t ttl, struct ly_buf *out, struct ly_error *err)
{
    if (!spiffeid_member_of(id, ca->td)) {
        ly_buf_init_secret(out, 0);
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "%s is not in trust domain %s; this broker only issues identities "
                             "of its own trust domain",
                             id->str, ca->td);
    }
    return jwtsvid_mint(ca->jwt_key, ca->kid, id, aud, n_aud, ly_time_now(), ttl, out, err);
}
