/*
 * token: lanyard's user access tokens, the bearer credential the MCP gateway validates on every
 * request. A token is a JWT in the RFC 9068 profile (header typ "at+jwt", ES256, kid) signed
 * by a trust domain's JWT key: iss is that trust domain's SPIFFE ID ("spiffe://TD"), sub the
 * user, aud the MCP server's audience, azp and client_id the client's SPIFFE ID, exp/nbf/iat,
 * a random jti, and, when bound to a certificate, cnf {"x5t#S256": base64url(SHA-256(cert DER))}
 * (RFC 8705 §3.1). Validation finds the key only among the JWT authorities of the issuer's
 * trust bundle. The typ separates these tokens from JWT-SVIDs in both directions. No token
 * text ever reaches an error message.
 */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "../svid/key.h"
#include "../svid/spiffeid.h"
#include "consent.h"

struct bundle_set;

#define TOKEN_TYP "at+jwt"
#define TOKEN_TTL_DEFAULT (15 * 60)  /* seconds */
#define TOKEN_TTL_MIN 10
#define TOKEN_TTL_MAX (24 * 3600)
#define TOKEN_LEEWAY_DEFAULT 30      /* seconds of clock skew allowed on exp and nbf */
#define TOKEN_MAX_LEN (16u * 1024u)  /* longest token text accepted */
#define TOKEN_MAX_AUDIENCES 16
#define TOKEN_AUD_MAX 1024           /* bytes of one audience value */
#define TOKEN_JTI_HEX_LEN 32

/* Stable rejection reasons (ly_error.reason). */
enum token_reason {
    TOKEN_R_USAGE = 1,     /* bad argument from the caller */
    TOKEN_R_MALFORMED,     /* not a compact JWS, bad base64url, header or payload not JSON
                              (also: a crit header, a jti that is not a string of 1..64 bytes) */
    TOKEN_R_TYP,           /* typ is not "at+jwt" (a JWT-SVID or other JWT) */
    TOKEN_R_ALG,           /* alg not allowed (none, HS*, EdDSA...) */
    TOKEN_R_KID,           /* kid missing or malformed */
    TOKEN_R_ISSUER,        /* iss missing or not a trust domain's SPIFFE ID */
    TOKEN_R_NO_BUNDLE,     /* no JWT bundle for the issuer's trust domain */
    TOKEN_R_UNKNOWN_KID,   /* the issuer's bundle has no JWT authority with that kid */
    TOKEN_R_SIGNATURE,     /* the signature does not verify (or the key does not fit alg) */
    TOKEN_R_SUB,           /* sub missing or not a valid user name (consent_user_validate) */
    TOKEN_R_AUD_INVALID,   /* aud missing, or neither a string nor an array of strings */
    TOKEN_R_AUD_MISMATCH,  /* the gateway's audience is not among the aud values */
    TOKEN_R_EXP,           /* exp missing or not a number */
    TOKEN_R_EXPIRED,       /* now >= exp + leeway */
    TOKEN_R_NBF,           /* nbf/iat present but not a number */
    TOKEN_R_NOT_YET_VALID, /* now + leeway < nbf */
    TOKEN_R_CLIENT_CLAIM,  /* neither azp nor client_id, or not SPIFFE IDs, or they differ */
    TOKEN_R_WRONG_CLIENT,  /* azp/client_id is another client's SPIFFE ID */
    TOKEN_R_CNF,           /* cnf present but malformed (x5t#S256 not base64url of 32 bytes) */
    TOKEN_R_WRONG_CERT,    /* cnf.x5t#S256 is another certificate's thumbprint */
    TOKEN_R_INTERNAL,      /* a library call failed */
};

/* What a signature-verified token says. Plain data; nothing to free. */
struct token_claims {
    char issuer_td[SPIFFEID_TD_MAX_LEN + 1]; /* trust domain of iss */
    char user[CONSENT_USER_MAX + 1];         /* sub */
    struct spiffeid client;                  /* azp / client_id */
    char audiences[TOKEN_MAX_AUDIENCES][TOKEN_AUD_MAX + 1];
    size_t n_audiences;
    int64_t exp;
    int has_nbf;
    int64_t nbf;
    int has_iat;
    int64_t iat;
    char jti[TOKEN_JTI_HEX_LEN * 2 + 1];     /* as sent (may be empty when absent) */
    int has_cnf;
    uint8_t x5t_s256[32];                    /* cnf."x5t#S256", decoded */
    char kid[256];
};

/*
 * Mint a token: key is the trust domain's JWT signing key (P-256) with its kid; issuer_td the
 * bare trust domain name; user passes consent_user_validate(); client a workload SPIFFE ID (with
 * a path); audience non-empty (<= TOKEN_AUD_MAX); cert_sha256 NULL or the 32-byte SHA-256 of the
 * DER certificate the token is bound to; ttl TOKEN_TTL_MIN..TOKEN_TTL_MAX. exp = now + ttl,
 * nbf = iat = now, jti 128 random bits in hex. `out` is initialised here as a secret buffer
 * holding the compact token, NUL-terminated; free with ly_buf_free(). LY_ERR_USAGE with
 * TOKEN_R_USAGE for a bad argument.
 */
int token_mint(struct svid_key *key, const char *kid, const char *issuer_td, const char *user,
               const struct spiffeid *client, const char *audience, const uint8_t *cert_sha256,
               int64_t now, int64_t ttl, struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * The time-independent half of validation, whose result depends only on the token bytes and
 * the bundles (so a caller may cache it per token and bundle generation): compact JWS structure,
 * header (typ "at+jwt", alg in the JWT-SVID allow-list, kid), iss, the key found by kid among
 * the JWT authorities of the issuer's trust domain in `jwt_bundles`, the signature, and the
 * types of every claim (sub, aud, exp, nbf, iat, azp, client_id, cnf). On success fills *out.
 * LY_ERR_PARSE (malformed) or LY_ERR_VERIFY (well-formed, not acceptable) with an enum
 * token_reason; the message names the step and, escaped and capped, the iss, kid or sub.
 */
int token_verify_signed(const char *tok, size_t len, const struct bundle_set *jwt_bundles,
                        struct token_claims *out, struct ly_error *err) LY_MUST_USE;

/*
 * The per-request half: `audience` is among the aud values; now < exp + leeway and, with nbf,
 * now + leeway >= nbf; the token names `client` (azp / client_id, exact SPIFFE ID equality);
 * and when the token has cnf, cert_sha256 (the SHA-256 of the connection's client certificate,
 * never NULL) equals cnf.x5t#S256, compared in constant time. LY_ERR_VERIFY with an enum
 * token_reason (TOKEN_R_AUD_MISMATCH, _EXPIRED, _NOT_YET_VALID, _WRONG_CLIENT, _WRONG_CERT).
 */
int token_check(const struct token_claims *c, const char *audience, const struct spiffeid *client,
                const uint8_t cert_sha256[32], int64_t now, int64_t leeway,
                struct ly_error *err) LY_MUST_USE;

/* Both halves in one call. */
int token_validate(const char *tok, size_t len, const struct bundle_set *jwt_bundles,
                   const char *audience, const struct spiffeid *client,
                   const uint8_t cert_sha256[32], int64_t now, int64_t leeway,
                   struct token_claims *out, struct ly_error *err) LY_MUST_USE;

/* A short stable name of a reason for logs and audit records ("token expired", ...). */
const char *token_reason_name(int reason);

/*
 * The thumbprint a token is bound to (RFC 8705 §3.1 x5t#S256): SHA-256 of the certificate's DER
 * bytes, hashed as given (nothing is parsed; callers pass a certificate they have parsed). For
 * `lanyard token mint --bind-cert` and the gateway's connection certificate. Returns 0,
 * LY_ERR_USAGE (missing input) or LY_ERR_INTERNAL.
 */
int token_cert_sha256(const uint8_t *der, size_t len, uint8_t out[32], struct ly_error *err)
    LY_MUST_USE;

#endif
