/*
 * token: lanyard's user access tokens (RFC 9068 profile, typ at+jwt), minted with a trust domain's
 * JWT key and verified through svid/jwtsvid's compact-JWS core against the JWT authorities of the
 * issuer's own trust domain. No claim is read before the signature has verified, every claim's
 * type is checked before anything is handed out, and no token text reaches an error message.
 */
#define _GNU_SOURCE
#include "token.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "../common/ly_b64.h"
#include "../common/ly_guard.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/jwtsvid.h"

/* How much peer text (user, audience, IDs) a message may quote, before escaping. */
#define ESC_IN_MAX 64
#define ESC_OUT_SZ (ESC_IN_MAX * 4 + 4)

/* 9999-12-31T23:59:59Z: the latest expiry token_mint() writes (ly_time's calendar range). */
#define MINT_EXP_MAX INT64_C(253402300799)

#define X5T_CLAIM "x5t#S256"
#define X5T_B64_LEN 43 /* base64url characters of a 32-byte SHA-256, unpadded */

/*
 * RFC 9068 §4: a resource server must refuse a JWT whose typ is not "at+jwt" or its long form
 * "application/at+jwt"; the key is found through iss, which must be a trust domain's own ID.
 * A JWT-SVID (typ JWT, JOSE or none) therefore never passes as a token, nor a token as a
 * JWT-SVID (whose profile refuses at+jwt).
 */
static const char *const token_typs[] = {TOKEN_TYP, "application/" TOKEN_TYP};
static const struct jwtsvid_jws_profile token_profile = {
    "token", token_typs, sizeof(token_typs) / sizeof(token_typs[0]), 0, "iss", 1,
};

static const char *esc(const char *s, size_t len, char *out, size_t outsz)
{
    return ly_text_escape(s, len, ESC_IN_MAX, out, outsz);
}

/* Format t for a message as RFC 3339, or as plain seconds when outside ly_time's range. */
static const char *time_text(int64_t t, char *out, size_t outsz)
{
    if (ly_time_format_rfc3339(t, out, outsz, NULL) < 0) {
        if (snprintf(out, outsz, "%lld (epoch seconds)", (long long)t) < 0) {
            out[0] = '\0';
        }
    }
    return out;
}

/* The token reason for a step of the shared JWS verification. */
static int map_jws_reason(int r)
{
    switch (r) {
    case JWTSVID_R_USAGE:
        return TOKEN_R_USAGE;
    case JWTSVID_R_TOO_LONG:
    case JWTSVID_R_JSON_SERIALIZATION:
    case JWTSVID_R_NOT_COMPACT:
    case JWTSVID_R_EMPTY_PART:
    case JWTSVID_R_BASE64:
    case JWTSVID_R_HEADER_JSON:
    case JWTSVID_R_PAYLOAD_JSON:
    case JWTSVID_R_CRIT:
        return TOKEN_R_MALFORMED;
    case JWTSVID_R_ALG:
        return TOKEN_R_ALG;
    case JWTSVID_R_TYP:
        return TOKEN_R_TYP;
    case JWTSVID_R_KID:
        return TOKEN_R_KID;
    case JWTSVID_R_KEY_CLAIM_MISSING:
    case JWTSVID_R_KEY_CLAIM_INVALID:
        return TOKEN_R_ISSUER;
    case JWTSVID_R_NO_BUNDLE:
        return TOKEN_R_NO_BUNDLE;
    case JWTSVID_R_UNKNOWN_KID:
        return TOKEN_R_UNKNOWN_KID;
    case JWTSVID_R_KEY_UNSUPPORTED:
    case JWTSVID_R_KEY_MISMATCH:
    case JWTSVID_R_SIG_MALFORMED:
    case JWTSVID_R_SIGNATURE:
        return TOKEN_R_SIGNATURE;
    default:
        return TOKEN_R_INTERNAL;
    }
}

/* Carry a jwtsvid error over into err with the matching token reason. */
static int relay(struct ly_error *err, const struct ly_error *jerr)
{
    int code = jerr->code < 0 ? jerr->code : LY_ERR_INTERNAL;

    return ly_error_setx(err, code, map_jws_reason(jerr->reason), "%s", jerr->msg);
}

/* ---- minting ----------------------------------------------------------------------------- */

int token_mint(struct svid_key *key, const char *kid, const char *issuer_td, const char *user,
               const struct spiffeid *client, const char *audience, const uint8_t *cert_sha256,
               int64_t now, int64_t ttl, struct ly_buf *out, struct ly_error *err)
{
    struct spiffeid iss;
    struct spiffeid cl;
    struct ly_error tmp;
    struct ly_buf x5t;
    uint8_t rnd[TOKEN_JTI_HEX_LEN / 2];
    char jti[TOKEN_JTI_HEX_LEN + 1];
    json_t *claims = NULL;
    json_t *cnf = NULL;
    size_t alen;
    int rc = LY_ERR_INTERNAL;

    ly_error_clear(err);
    ly_error_clear(&tmp);
    ly_buf_init_secret(out, TOKEN_MAX_LEN);
    ly_buf_init(&x5t, 0);

    if (key == NULL || kid == NULL || issuer_td == NULL || user == NULL || client == NULL ||
        audience == NULL) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                           "missing key, kid, issuer, user, client or audience");
        goto err;
    }
    if (spiffeid_from_parts(issuer_td, "", &iss, &tmp) < 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "issuer trust domain: %s", tmp.msg);
        goto err;
    }
    if (user[0] == '\0') {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "a token needs a user (sub)");
        goto err;
    }
    if (consent_user_validate(user, &tmp) < 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "user: %s", tmp.msg);
        goto err;
    }
    /* Re-parse: the client is written into a signed credential, so it must be canonical. */
    if (client->len == 0 || client->len > SPIFFEID_MAX_LEN ||
        spiffeid_parse(client->str, client->len, &cl, &tmp) < 0 || spiffeid_is_root(&cl)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                           "the client must be a workload SPIFFE ID with a path");
        goto err;
    }
    alen = strlen(audience);
    if (alen == 0 || alen > TOKEN_AUD_MAX) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "audience must be 1..%d bytes",
                           TOKEN_AUD_MAX);
        goto err;
    }
    if (ttl < TOKEN_TTL_MIN || ttl > TOKEN_TTL_MAX) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                           "token lifetime must be %d..%d seconds, got %lld", TOKEN_TTL_MIN,
                           TOKEN_TTL_MAX, (long long)ttl);
        goto err;
    }
    if (now < 0 || now > MINT_EXP_MAX - ttl) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                           "issue time must be >= 0 and the token expire before year 10000");
        goto err;
    }
    /* RFC 9068 §2.2 / RFC 7519 §4.1.7: 128 random bits, so a jti is never reused. */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        rc = ly_error_set(err, LY_ERR_INTERNAL, TOKEN_R_INTERNAL, "getrandom failed");
        goto err;
    }
    ly_hex_encode(rnd, sizeof(rnd), jti);

    claims = json_object();
    if (claims == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, TOKEN_R_INTERNAL, "out of memory");
        goto err;
    }
    /* jansson keeps insertion order: iss, sub, aud, azp, client_id, exp, nbf, iat, jti, cnf. */
    if (json_object_set_new(claims, "iss", json_stringn(iss.str, iss.len)) != 0 ||
        json_object_set_new(claims, "sub", json_string(user)) != 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "user must be valid UTF-8");
        goto err;
    }
    if (json_object_set_new(claims, "aud", json_string(audience)) != 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "audience must be valid UTF-8");
        goto err;
    }
    if (json_object_set_new(claims, "azp", json_stringn(cl.str, cl.len)) != 0 ||
        json_object_set_new(claims, "client_id", json_stringn(cl.str, cl.len)) != 0 ||
        json_object_set_new(claims, "exp", json_integer((json_int_t)(now + ttl))) != 0 ||
        json_object_set_new(claims, "nbf", json_integer((json_int_t)now)) != 0 ||
        json_object_set_new(claims, "iat", json_integer((json_int_t)now)) != 0 ||
        json_object_set_new(claims, "jti", json_string(jti)) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, TOKEN_R_INTERNAL, "out of memory");
        goto err;
    }
    /* RFC 8705 §3.1: the certificate binding, base64url of SHA-256 over the DER. */
    if (cert_sha256 != NULL) {
        rc = ly_b64_encode(cert_sha256, 32, 1, &x5t, 64, err);
        if (rc < 0) {
            goto err;
        }
        cnf = json_object();
        if (cnf == NULL ||
            json_object_set_new(cnf, X5T_CLAIM,
                                json_stringn((const char *)x5t.data, x5t.len)) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, TOKEN_R_INTERNAL, "out of memory");
            goto err;
        }
        rc = json_object_set_new(claims, "cnf", cnf);
        cnf = NULL; /* set_new consumed it, even on failure */
        if (rc != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, TOKEN_R_INTERNAL, "out of memory");
            goto err;
        }
    }
    ly_error_clear(&tmp);
    rc = jwtsvid_jws_sign(key, kid, TOKEN_TYP, claims, out, &tmp);
    if (rc < 0) {
        /* A bad key or kid is the caller's; everything else is ours. */
        rc = ly_error_setx(err, tmp.code, tmp.code == LY_ERR_USAGE ? TOKEN_R_USAGE
                                                                    : TOKEN_R_INTERNAL,
                           "%s", tmp.msg);
        goto err;
    }
    rc = 0;
err:
    ly_wipe(rnd, sizeof(rnd));
    ly_wipe(jti, sizeof(jti));
    ly_buf_free(&x5t);
    json_decref(cnf);
    json_decref(claims);
    if (rc < 0) {
        ly_buf_free(out);
        if (err != NULL && err->reason == 0) {
            err->reason = TOKEN_R_INTERNAL;
        }
    }
    return rc;
}

/* ---- the time-independent half ----------------------------------------------------------- */

/* 1 when v is a JSON string with no NUL inside of 1..max bytes. */
static int plain_string(const json_t *v, size_t max)
{
    size_t n;

    if (!json_is_string(v)) {
        return 0;
    }
    n = json_string_length(v);
    return n > 0 && n <= max && strlen(json_string_value(v)) == n;
}

/* sub: the user, as consent records name users. */
static int read_sub(const json_t *pay, struct token_claims *c, struct ly_error *err)
{
    const json_t *v = json_object_get(pay, "sub");
    struct ly_error tmp;

    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_SUB, "token has no sub (user) claim");
    }
    if (!plain_string(v, CONSENT_USER_MAX)) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_SUB,
                             "token sub must be a user name of 1..%d bytes", CONSENT_USER_MAX);
    }
    ly_error_clear(&tmp);
    if (consent_user_validate(json_string_value(v), &tmp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_SUB, "token sub: %s", tmp.msg);
    }
    memcpy(c->user, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* aud: a string or an array of 1..TOKEN_MAX_AUDIENCES strings (RFC 7519 §4.1.3). */
static int read_aud(const json_t *pay, const char *e_user, struct token_claims *c,
                    struct ly_error *err)
{
    const json_t *aud = json_object_get(pay, "aud");
    size_t n;
    size_t i;

    if (aud == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_AUD_INVALID,
                             "token for '%s' has no aud claim", e_user);
    }
    n = json_is_string(aud) ? 1 : json_array_size(aud);
    if (n == 0 || n > TOKEN_MAX_AUDIENCES) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_AUD_INVALID,
                             "token aud must be a string or an array of 1..%d strings",
                             TOKEN_MAX_AUDIENCES);
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_is_string(aud) ? aud : json_array_get(aud, i);

        if (!plain_string(v, TOKEN_AUD_MAX)) {
            return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_AUD_INVALID,
                                 "token aud values must be strings of 1..%d bytes",
                                 TOKEN_AUD_MAX);
        }
        memcpy(c->audiences[i], json_string_value(v), json_string_length(v) + 1);
    }
    c->n_audiences = n;
    return 0;
}

/* exp required, nbf and iat optional, each a NumericDate (RFC 7519 §4.1.4-§4.1.6). */
static int read_times(const json_t *pay, const char *e_user, struct token_claims *c,
                      struct ly_error *err)
{
    const json_t *v = json_object_get(pay, "exp");

    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_EXP, "token for '%s' has no exp claim",
                             e_user);
    }
    if (jwtsvid_numeric_date(v, 0, &c->exp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_EXP,
                             "token exp is not a valid NumericDate");
    }
    v = json_object_get(pay, "nbf");
    if (v != NULL) {
        /* Rounded up: a fraction of a second early is still early. */
        if (jwtsvid_numeric_date(v, 1, &c->nbf) < 0) {
            return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_NBF,
                                 "token nbf is not a valid NumericDate");
        }
        c->has_nbf = 1;
    }
    v = json_object_get(pay, "iat");
    if (v != NULL) {
        if (jwtsvid_numeric_date(v, 0, &c->iat) < 0) {
            return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_NBF,
                                 "token iat is not a valid NumericDate");
        }
        c->has_iat = 1;
    }
    return 0;
}

/* One client claim: a workload SPIFFE ID (it has a path). */
static int read_client_claim(const json_t *v, const char *name, struct spiffeid *id,
                             struct ly_error *err)
{
    struct ly_error tmp;
    char e[ESC_OUT_SZ];

    if (!json_is_string(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM,
                             "token %s is not a string", name);
    }
    ly_error_clear(&tmp);
    if (spiffeid_parse(json_string_value(v), json_string_length(v), id, &tmp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM,
                             "token %s is not a SPIFFE ID: %s", name, tmp.msg);
    }
    if (spiffeid_is_root(id)) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM,
                             "token %s '%s' names a trust domain, not a client workload", name,
                             esc(id->str, id->len, e, sizeof(e)));
    }
    return 0;
}

/*
 * azp (OpenID Connect) and client_id (RFC 9068 §2.2, RFC 8693 §4.3) both name the client; a
 * token may carry either, and when it carries both they must agree, or two readers of the same
 * token could see two different clients.
 */
static int read_client(const json_t *pay, struct token_claims *c, struct ly_error *err)
{
    const json_t *azp = json_object_get(pay, "azp");
    const json_t *cid = json_object_get(pay, "client_id");
    struct spiffeid other;
    char e1[ESC_OUT_SZ];
    char e2[ESC_OUT_SZ];

    if (azp == NULL && cid == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM,
                             "token names no client (neither azp nor client_id)");
    }
    if (azp != NULL) {
        LY_GUARD(read_client_claim(azp, "azp", &c->client, err));
    }
    if (cid != NULL) {
        LY_GUARD(read_client_claim(cid, "client_id", azp != NULL ? &other : &c->client, err));
    }
    if (azp != NULL && cid != NULL && !spiffeid_equal(&c->client, &other)) {
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_CLIENT_CLAIM,
                             "token azp '%s' and client_id '%s' name different clients",
                             esc(c->client.str, c->client.len, e1, sizeof(e1)),
                             esc(other.str, other.len, e2, sizeof(e2)));
    }
    return 0;
}

/*
 * cnf (RFC 7800 §3.1) holds exactly one confirmation method, x5t#S256 (RFC 8705 §3.1): a token
 * bound some other way (jkt, jwk...) cannot be honoured here, so it is refused rather than
 * taken for an unbound bearer token.
 */
static int read_cnf(const json_t *pay, struct token_claims *c, struct ly_error *err)
{
    const json_t *cnf = json_object_get(pay, "cnf");
    const json_t *v;
    struct ly_buf raw;
    struct ly_error tmp;
    int rc;

    if (cnf == NULL) {
        return 0;
    }
    if (!json_is_object(cnf)) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CNF, "token cnf is not a JSON object");
    }
    v = json_object_get(cnf, X5T_CLAIM);
    if (v == NULL || json_object_size(cnf) != 1) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CNF,
                             "token cnf must hold exactly one member, x5t#S256");
    }
    /* 32 bytes are exactly 43 unpadded base64url characters (RFC 4648 §5). */
    if (!json_is_string(v) || json_string_length(v) != X5T_B64_LEN ||
        strlen(json_string_value(v)) != X5T_B64_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CNF,
                             "token cnf.x5t#S256 must be the base64url of a SHA-256 (%d "
                             "characters, 32 bytes)",
                             X5T_B64_LEN);
    }
    ly_error_clear(&tmp);
    rc = ly_b64_decode(json_string_value(v), json_string_length(v), 1, 0, &raw, 64, &tmp);
    if (rc == LY_ERR_NOMEM) {
        return ly_error_setx(err, LY_ERR_NOMEM, TOKEN_R_INTERNAL, "out of memory");
    }
    if (rc < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_CNF,
                             "token cnf.x5t#S256 is not base64url: %s", tmp.msg);
    }
    if (raw.len != sizeof(c->x5t_s256)) {
        ly_buf_free(&raw);
        return ly_error_setx(err, LY_ERR_INTERNAL, TOKEN_R_INTERNAL,
                             "43 base64url characters did not decode to 32 bytes");
    }
    memcpy(c->x5t_s256, raw.data, sizeof(c->x5t_s256));
    ly_buf_free(&raw);
    c->has_cnf = 1;
    return 0;
}

/* jti: optional; kept as sent when it fits (tokens from other issuers may use any form). */
static int read_jti(const json_t *pay, struct token_claims *c, struct ly_error *err)
{
    const json_t *v = json_object_get(pay, "jti");

    if (v == NULL) {
        return 0;
    }
    if (!plain_string(v, sizeof(c->jti) - 1)) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_MALFORMED,
                             "token jti must be a string of 1..%zu bytes", sizeof(c->jti) - 1);
    }
    memcpy(c->jti, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int token_verify_signed(const char *tok, size_t len, const struct bundle_set *jwt_bundles,
                        struct token_claims *out, struct ly_error *err)
{
    struct jwtsvid_jws v;
    struct ly_error jerr;
    char e_user[ESC_OUT_SZ];
    char e_kid[ESC_OUT_SZ];
    int rc;

    ly_error_clear(err);
    memset(&v, 0, sizeof(v));
    if (out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "missing claims output");
    }
    memset(out, 0, sizeof(*out));
    if (tok == NULL || jwt_bundles == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "missing token or bundle set");
    }
    if (len > TOKEN_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_MALFORMED,
                             "token is %zu bytes; at most %u are accepted", len, TOKEN_MAX_LEN);
    }

    /* Structure, header, iss, key and signature: nothing below runs on unverified claims. */
    ly_error_clear(&jerr);
    rc = jwtsvid_jws_verify(tok, len, &token_profile, jwt_bundles, &v, &jerr);
    if (rc < 0) {
        return relay(err, &jerr);
    }
    if (v.kid_len >= sizeof(out->kid)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, TOKEN_R_KID,
                           "token kid '%s' is longer than %zu bytes",
                           esc(v.kid, v.kid_len, e_kid, sizeof(e_kid)), sizeof(out->kid) - 1);
        goto err;
    }
    memcpy(out->kid, v.kid, v.kid_len + 1);
    memcpy(out->issuer_td, v.trust_domain, strlen(v.trust_domain) + 1);

    rc = read_sub(v.claims, out, err);
    if (rc < 0) {
        goto err;
    }
    esc(out->user, strlen(out->user), e_user, sizeof(e_user));
    rc = read_aud(v.claims, e_user, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = read_times(v.claims, e_user, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = read_client(v.claims, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = read_cnf(v.claims, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = read_jti(v.claims, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = 0;
err:
    jwtsvid_jws_free(&v);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- the per-request half ---------------------------------------------------------------- */

int token_check(const struct token_claims *c, const char *audience, const struct spiffeid *client,
                const uint8_t cert_sha256[32], int64_t now, int64_t leeway, struct ly_error *err)
{
    char e_user[ESC_OUT_SZ];
    char e1[ESC_OUT_SZ];
    char e2[ESC_OUT_SZ];
    char tbuf[48];
    char hex[2 * 32 + 1];
    size_t alen;
    size_t n;
    size_t i;
    int found = 0;

    ly_error_clear(err);
    /* An empty expectation must never turn a check off (as jwtsvid_validate, §9.12). */
    if (c == NULL || audience == NULL || audience[0] == '\0' || client == NULL ||
        cert_sha256 == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                             "token check needs claims, an audience, a client and a certificate "
                             "thumbprint");
    }
    if (now < 0 || now > INT64_MAX / 2 || leeway < 0 || leeway > JWTSVID_LEEWAY_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE,
                             "check time must be >= 0 and leeway 0..%d seconds",
                             JWTSVID_LEEWAY_MAX);
    }
    esc(c->user, strnlen(c->user, sizeof(c->user)), e_user, sizeof(e_user));

    alen = strlen(audience);
    n = c->n_audiences < TOKEN_MAX_AUDIENCES ? c->n_audiences : TOKEN_MAX_AUDIENCES;
    for (i = 0; i < n; i++) {
        found |= strnlen(c->audiences[i], sizeof(c->audiences[i])) == alen &&
                 memcmp(c->audiences[i], audience, alen) == 0;
    }
    if (!found) {
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_AUD_MISMATCH,
                             "token for '%s' is not meant for audience '%s'", e_user,
                             esc(audience, alen, e1, sizeof(e1)));
    }
    /* now >= exp + leeway, and now + leeway < nbf, written so that nothing overflows. */
    if (now - leeway >= c->exp) {
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_EXPIRED, "token for '%s' expired at %s",
                             e_user, time_text(c->exp, tbuf, sizeof(tbuf)));
    }
    if (c->has_nbf && now + leeway < c->nbf) {
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_NOT_YET_VALID,
                             "token for '%s' is not valid before %s", e_user,
                             time_text(c->nbf, tbuf, sizeof(tbuf)));
    }
    /* The confused deputy: a token one client holds must not work for another. */
    if (!spiffeid_equal(&c->client, client)) {
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_WRONG_CLIENT,
                             "token for '%s' was issued to client '%s', not '%s'", e_user,
                             esc(c->client.str, c->client.len, e1, sizeof(e1)),
                             esc(client->str, client->len, e2, sizeof(e2)));
    }
    /* RFC 8705 §3: a bound token is only good on a connection with that certificate. */
    if (c->has_cnf && !ly_memeq_ct(c->x5t_s256, cert_sha256, sizeof(c->x5t_s256))) {
        ly_hex_encode(c->x5t_s256, sizeof(c->x5t_s256), hex);
        return ly_error_setx(err, LY_ERR_VERIFY, TOKEN_R_WRONG_CERT,
                             "token for '%s' is bound to another certificate (sha256 %s)", e_user,
                             hex);
    }
    return 0;
}

int token_validate(const char *tok, size_t len, const struct bundle_set *jwt_bundles,
                   const char *audience, const struct spiffeid *client,
                   const uint8_t cert_sha256[32], int64_t now, int64_t leeway,
                   struct token_claims *out, struct ly_error *err)
{
    struct token_claims local;
    struct token_claims *c = &local;
    int rc;

    if (out != NULL) {
        c = out;
    } else {
        memset(&local, 0, sizeof(local));
    }
    rc = token_verify_signed(tok, len, jwt_bundles, c, err);
    if (rc == 0) {
        rc = token_check(c, audience, client, cert_sha256, now, leeway, err);
    }
    if (rc < 0 || c == &local) {
        memset(c, 0, sizeof(*c));
    }
    return rc;
}

int token_cert_sha256(const uint8_t *der, size_t len, uint8_t out[32], struct ly_error *err)
{
    if (der == NULL || len == 0 || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, TOKEN_R_USAGE, "missing certificate");
    }
    if (len > UINT32_MAX || wc_Sha256Hash(der, (word32)len, out) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, TOKEN_R_INTERNAL, "SHA-256 failed");
    }
    return 0;
}

const char *token_reason_name(int reason)
{
    switch (reason) {
    case TOKEN_R_USAGE:
        return "token check misused";
    case TOKEN_R_MALFORMED:
        return "token malformed";
    case TOKEN_R_TYP:
        return "token type not at+jwt";
    case TOKEN_R_ALG:
        return "token algorithm not allowed";
    case TOKEN_R_KID:
        return "token key id invalid";
    case TOKEN_R_ISSUER:
        return "token issuer invalid";
    case TOKEN_R_NO_BUNDLE:
        return "token issuer not trusted";
    case TOKEN_R_UNKNOWN_KID:
        return "token signing key unknown";
    case TOKEN_R_SIGNATURE:
        return "token signature invalid";
    case TOKEN_R_SUB:
        return "token user invalid";
    case TOKEN_R_AUD_INVALID:
        return "token audience invalid";
    case TOKEN_R_AUD_MISMATCH:
        return "token audience mismatch";
    case TOKEN_R_EXP:
        return "token expiry invalid";
    case TOKEN_R_EXPIRED:
        return "token expired";
    case TOKEN_R_NBF:
        return "token start time invalid";
    case TOKEN_R_NOT_YET_VALID:
        return "token not yet valid";
    case TOKEN_R_CLIENT_CLAIM:
        return "token client invalid";
    case TOKEN_R_WRONG_CLIENT:
        return "token issued to another client";
    case TOKEN_R_CNF:
        return "token certificate binding invalid";
    case TOKEN_R_WRONG_CERT:
        return "token bound to another certificate";
    case TOKEN_R_INTERNAL:
        return "token validation failed";
    default:
        return "token rejected";
    }
}
