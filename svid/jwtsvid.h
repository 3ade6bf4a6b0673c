/*
 * jwtsvid: minting and validating JWT-SVIDs (JWT-SVID.md; checklist §4, JWT-1..JWT-11). Minting
 * signs ES256 tokens with a broker key; validation checks structure, algorithm, claims and the
 * signature against the JWT bundle of the subject's own trust domain. The same compact-JWS
 * machinery verifies and signs lanyard's other trust-domain-signed tokens (jwtsvid_jws_*, used by
 * broker/token). There is deliberately no way to read a token's claims without verifying it, and
 * no token text ever reaches an error.
 */
#ifndef JWTSVID_H
#define JWTSVID_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "key.h"
#include "spiffeid.h"

struct bundle_set;

/* Largest token text accepted by jwtsvid_validate() and produced by jwtsvid_mint(). */
#define JWTSVID_MAX_LEN (16u * 1024u)
/* Most audiences jwtsvid_mint() puts in one token (JWT-8: one is strongly preferred). */
#define JWTSVID_MAX_AUDIENCES 16
/* Recommended clock-skew leeway for jwtsvid_validate(), in seconds (go-spiffe allows 60). */
#define JWTSVID_LEEWAY_DEFAULT 30
/* Largest leeway jwtsvid_validate() accepts, in seconds; more is refused as LY_ERR_USAGE. */
#define JWTSVID_LEEWAY_MAX 300

/*
 * Stable rejection reasons (struct ly_error.reason), one per validation step. Values never
 * change meaning; new ones are appended.
 */
enum jwtsvid_reason {
    JWTSVID_R_USAGE = 1,          /* bad argument from the caller (LY_ERR_USAGE) */
    JWTSVID_R_TOO_LONG,           /* token longer than JWTSVID_MAX_LEN */
    JWTSVID_R_JSON_SERIALIZATION, /* JWS JSON serialization given (JWT-1) */
    JWTSVID_R_NOT_COMPACT,        /* not exactly three dot-separated parts */
    JWTSVID_R_EMPTY_PART,         /* a part is empty (incl. detached payload) */
    JWTSVID_R_BASE64,             /* a part is not strict, unpadded base64url */
    JWTSVID_R_HEADER_JSON,        /* header is not a JSON object (or has duplicate members) */
    JWTSVID_R_ALG,                /* alg missing or not in the JWT-SVID allow-list (JWT-3) */
    JWTSVID_R_TYP,                /* typ present but neither "JWT" nor "JOSE" (JWT-5) */
    JWTSVID_R_CRIT,               /* crit header present: no extension is understood */
    JWTSVID_R_KID,                /* kid missing, not a string, empty or too long (JWT-4) */
    JWTSVID_R_PAYLOAD_JSON,       /* payload is not a JSON object (or has duplicate members) */
    JWTSVID_R_SUB_MISSING,        /* no sub claim (JWT-6) */
    JWTSVID_R_SUB_INVALID,        /* sub not a string or not a valid SPIFFE ID */
    JWTSVID_R_SUB_ROOT,           /* sub names a trust domain, not a workload (no path) */
    JWTSVID_R_AUD_MISSING,        /* no aud claim (JWT-7) */
    JWTSVID_R_AUD_INVALID,        /* aud neither a string nor a non-empty array of strings */
    JWTSVID_R_AUD_MISMATCH,       /* expected audience not among the aud values */
    JWTSVID_R_EXP_MISSING,        /* no exp claim (JWT-9) */
    JWTSVID_R_EXP_INVALID,        /* exp not a number (or out of range) */
    JWTSVID_R_EXPIRED,            /* at >= exp + leeway */
    JWTSVID_R_NBF_INVALID,        /* nbf present but not a number */
    JWTSVID_R_NOT_YET_VALID,      /* at + leeway < nbf */
    JWTSVID_R_IAT_INVALID,        /* iat present but not a number */
    JWTSVID_R_NO_BUNDLE,          /* no bundle for the sub's trust domain (JWT-11) */
    JWTSVID_R_UNKNOWN_KID,        /* that bundle has no JWT authority with this kid */
    JWTSVID_R_KEY_UNSUPPORTED,    /* authority key unreadable, RSA < 2048 or > 4096 bits */
    JWTSVID_R_KEY_MISMATCH,       /* key type or curve does not fit alg (e.g. P-384 for ES256) */
    JWTSVID_R_SIG_MALFORMED,      /* signature has the wrong length for alg and key */
    JWTSVID_R_SIGNATURE,          /* signature does not verify */
    JWTSVID_R_INTERNAL,           /* a library call failed (LY_ERR_INTERNAL / LY_ERR_NOMEM) */
    /* Only from jwtsvid_jws_verify(); jwtsvid_validate() reports JWTSVID_R_SUB_* instead. */
    JWTSVID_R_KEY_CLAIM_MISSING,  /* the profile's key claim (e.g. iss) is absent */
    JWTSVID_R_KEY_CLAIM_INVALID,  /* that claim is not a SPIFFE ID of the profile's form */
};

/* The JWS algorithms a JWT-SVID may use (JWT-3). */
enum jwtsvid_alg {
    JWTSVID_ALG_ES256 = 1,
    JWTSVID_ALG_ES384,
    JWTSVID_ALG_ES512,
    JWTSVID_ALG_RS256,
    JWTSVID_ALG_RS384,
    JWTSVID_ALG_RS512,
    JWTSVID_ALG_PS256,
    JWTSVID_ALG_PS384,
    JWTSVID_ALG_PS512,
};

/* The JWS name of an algorithm ("ES256", ...); "?" for an unknown value. Never NULL. */
const char *jwtsvid_alg_name(enum jwtsvid_alg alg);

/*
 * What a successfully validated token says. Filled only by jwtsvid_validate(); every pointer
 * is owned by the struct and released by jwtsvid_result_free(). Not secret: holds no signature.
 */
struct jwtsvid_result {
    struct spiffeid sub; /* the holder's SPIFFE ID (always has a path) */
    char **audiences;    /* n_audiences NUL-terminated strings, owned */
    size_t n_audiences;  /* >= 1 */
    int64_t exp;         /* expiry, seconds since the epoch (fractions rounded down) */
    int64_t iat;         /* issued-at, meaningful only when has_iat */
    int has_iat;
    enum jwtsvid_alg alg; /* the algorithm that verified */
    char *kid;            /* the key ID that verified, owned */
    char *claims_json;    /* the payload JSON text exactly as signed, owned, NUL-terminated */
    size_t claims_json_len;
};

/*
 * Mint a JWT-SVID: header exactly {"alg":"ES256","kid":kid,"typ":"JWT"} (JWT-2), claims
 * {"sub","aud","exp","iat"} in that order, with aud a string for one audience and an array for
 * several. `key` must be a P-256 key (an Ed25519 key gets LY_ERR_USAGE: JWT-SVIDs do not allow
 * EdDSA). `kid` is non-empty printable ASCII of at most BUNDLE_KID_MAX bytes; `sub` must have a
 * path; `audiences` holds 1..JWTSVID_MAX_AUDIENCES non-empty strings; `now` >= 0 and `ttl` > 0
 * (exp = now + ttl, iat = now).
 * On success `out` (initialised here as a secret buffer: tokens are bearer credentials) holds
 * the compact token text, NUL-terminated; the caller frees it with ly_buf_free(), which wipes
 * it. On failure `out` is left empty and freed. Returns 0, LY_ERR_USAGE (bad argument, reason
 * JWTSVID_R_USAGE or JWTSVID_R_KEY_UNSUPPORTED), LY_ERR_NOMEM or LY_ERR_INTERNAL. Not
 * thread-safe for one key (see key.h).
 */
int jwtsvid_mint(struct svid_key *key, const char *kid, const struct spiffeid *sub,
                 const char *const *audiences, size_t n_audiences, int64_t now, int64_t ttl,
                 struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * Validate a JWT-SVID given as `len` bytes of compact JWS text (at most JWTSVID_MAX_LEN; no
 * surrounding whitespace). `audience` is this validator's own audience and must be a non-empty
 * string: the aud check is never skipped (checklist §9.12). The key is looked up only in the
 * bundle of the sub's trust domain (JWT-11), by kid (required: go-spiffe and SPIRE reject
 * tokens without one, checklist §9.6). `at` is the time to validate at (seconds since the
 * epoch, >= 0) and `leeway` the allowed clock skew in seconds, 0..JWTSVID_LEEWAY_MAX
 * (JWTSVID_LEEWAY_DEFAULT, 30 s, is recommended): the token is expired when
 * at >= exp + leeway and not yet valid when at + leeway < nbf.
 * Accepted algorithms: ES256/384/512 (P-256/P-384/P-521 keys), RS256/384/512 and
 * PS256/384/512 (RSA keys of 2048..4096 bits); `none`, HS*, EdDSA and all else are refused.
 * On success returns 0 and, when `out` is not NULL, fills it (free with jwtsvid_result_free()).
 * On failure `out` is zeroed (safe to free) and the return is LY_ERR_PARSE (malformed),
 * LY_ERR_VERIFY (well-formed but not acceptable), LY_ERR_USAGE (bad argument), LY_ERR_NOMEM
 * or LY_ERR_INTERNAL, with err->reason an enum jwtsvid_reason. Messages name the step, alg,
 * kid, sub or audience (escaped and capped), never the token or signature.
 * `bundles` is only read; thread-safe as long as nobody modifies it meanwhile.
 */
int jwtsvid_validate(const char *token, size_t len, const char *audience,
                     const struct bundle_set *bundles, int64_t at, int64_t leeway,
                     struct jwtsvid_result *out, struct ly_error *err) LY_MUST_USE;

/* Release what a result owns and zero it. NULL is a no-op; so is a zeroed result. */
void jwtsvid_result_free(struct jwtsvid_result *r);

/* ---- the compact JWS machinery, for other lanyard tokens signed by trust domain keys ------- */

/*
 * The rules of one kind of compact JWS signed with a trust domain's JWT key: which typ header
 * values it carries and which claim names the trust domain whose JWT authorities hold its key.
 * JWT-SVIDs are one such profile (typ JWT/JOSE or none, key found via sub); broker/token's
 * access tokens are another (typ at+jwt, key found via iss). Everything else is shared: compact
 * serialization only, strict unpadded base64url, no duplicate JSON members, the JWT-SVID
 * algorithm allow-list (JWT-3), no crit, a required kid, and the key found only by that kid in
 * the bundle of that one trust domain (never through jku/jwk/x5u/x5c).
 */
struct jwtsvid_jws_profile {
    const char *label;       /* what messages call the token ("token"); not NULL */
    const char *const *typs; /* allowed typ values, compared byte for byte; n_typs >= 1 */
    size_t n_typs;
    int typ_optional;        /* 1: a header without typ is accepted too; 0: typ is required */
    const char *key_claim;   /* claim holding the SPIFFE ID that names the key's trust domain */
    int key_claim_is_td;     /* 1: that ID must be a trust domain's own ("spiffe://TD", no
                                path); 0: it must name a workload (have a path) */
};

/*
 * What jwtsvid_jws_verify() hands out: only ever for a token whose signature verified. Every
 * pointer is owned by the struct and released by jwtsvid_jws_free().
 */
struct jwtsvid_jws {
    json_t *claims;       /* the payload object (jansson), owned; borrow it until freed */
    enum jwtsvid_alg alg; /* the algorithm that verified */
    char *kid;            /* the key ID that verified, owned, NUL-terminated */
    size_t kid_len;       /* strlen(kid) */
    struct spiffeid key_id; /* the key claim's value, e.g. "spiffe://example.org" for iss */
    char trust_domain[SPIFFEID_TD_MAX_LEN + 1]; /* key_id's trust domain, whose key verified */
};

/*
 * Verify `len` bytes of compact JWS text (at most JWTSVID_MAX_LEN) under `profile`: structure,
 * strict base64url of all three parts, the header (alg allow-list first, then typ against
 * profile->typs, crit, kid), the payload as a JSON object, the profile's key claim as a SPIFFE
 * ID of the required form, the key found by kid among the JWT authorities of that ID's trust
 * domain in `bundles`, and the signature over "header.payload" (RFC 7515 §5.2). No claim other
 * than the key claim is looked at: the caller checks them, from out->claims, afterwards.
 * On success returns 0 and fills *out (free with jwtsvid_jws_free()). On failure *out is zeroed
 * (safe to free) and the return is LY_ERR_PARSE, LY_ERR_VERIFY, LY_ERR_USAGE (NULL argument or
 * incomplete profile), LY_ERR_NOMEM or LY_ERR_INTERNAL, with err->reason an enum jwtsvid_reason
 * (JWTSVID_R_KEY_CLAIM_* for the key claim). Messages use profile->label and quote only the
 * escaped, capped alg, typ, kid or key claim, never token or signature bytes. The claims of a
 * token that fails any step are never returned. Thread-safe while `bundles` is not modified.
 */
int jwtsvid_jws_verify(const char *token, size_t len, const struct jwtsvid_jws_profile *profile,
                       const struct bundle_set *bundles, struct jwtsvid_jws *out,
                       struct ly_error *err) LY_MUST_USE;

/* Release what a verified JWS owns and zero it. NULL is a no-op; so is a zeroed struct. */
void jwtsvid_jws_free(struct jwtsvid_jws *v);

/*
 * Sign a compact JWS with a trust domain's P-256 JWT key: header exactly
 * {"alg":"ES256","kid":kid,"typ":typ}, payload the compact serialization of `claims` (a JSON
 * object, members in their insertion order), ES256 signature (raw R||S). `kid` and `typ` are
 * non-empty printable ASCII (kid at most BUNDLE_KID_MAX bytes, typ at most 64). The caller is
 * responsible for the claims; nothing in them is checked here. `out` is initialised here as a
 * secret buffer holding the NUL-terminated token (at most JWTSVID_MAX_LEN bytes); free with
 * ly_buf_free(). On failure `out` is empty and freed. Returns 0, LY_ERR_USAGE (reason
 * JWTSVID_R_USAGE, or JWTSVID_R_KEY_UNSUPPORTED for a non-P-256 key), LY_ERR_NOMEM or
 * LY_ERR_INTERNAL. Not thread-safe for one key (see key.h).
 */
int jwtsvid_jws_sign(struct svid_key *key, const char *kid, const char *typ, const json_t *claims,
                     struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * A claim value as a NumericDate (RFC 7519 §2) in seconds: an integer, or a real within
 * +-9e15 rounded down (up when round_up, as for nbf). Returns 0, or -1 for anything else
 * (string, boolean, NaN, out of range). Pure.
 */
int jwtsvid_numeric_date(const json_t *v, int round_up, int64_t *out) LY_MUST_USE;

#endif
