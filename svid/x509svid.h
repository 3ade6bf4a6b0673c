/*
 * x509svid: X509-SVIDs (X509-SVID.md): creating a trust domain's self-signed CA, minting leaf
 * SVIDs from a public key or a PKCS#10 CSR, parsing PEM/DER chains, verifying a chain against a
 * bundle set at an explicit time with every X509-SVID rule, the structural check go-spiffe's
 * Parse performs, and certificate facts for the CA store and the CLI. Certificates, CSRs and
 * keys are parsed only by wolfSSL; lanyard encodes the certificates it issues (svid/der.h).
 * What it does not do: revocation, name constraints, policy OIDs, RSA.
 */
#ifndef X509SVID_H
#define X509SVID_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "../trust-bundles/bundle.h"
#include "key.h"
#include "spiffeid.h"

/* Caps on peer-supplied chains: at most this many certificates, each at most this big. */
#define X509SVID_MAX_CERTS 16
#define X509SVID_MAX_CERT_DER (64u * 1024u)
/* Largest chain input accepted (PEM text or concatenated DER). */
#define X509SVID_MAX_INPUT (2u * 1024u * 1024u)
/* Most DNS SANs a minted leaf may carry, and the longest DNS name. */
#define X509SVID_MAX_DNS 16
#define X509SVID_DNS_MAX_LEN 253
/*
 * A minted leaf's notBefore is this many seconds before `now`, so a verifier whose clock is a
 * little behind the broker's accepts a fresh SVID at once; CAs are not back-dated.
 */
#define X509SVID_LEAF_BACKDATE 5

/* Stable reasons (struct ly_error.reason) for every failure of this module. */
enum x509svid_reason {
    /* Reading chains, CSRs, certificates. */
    X509SVID_R_NO_CERTS = 1,       /* input holds no certificate */
    X509SVID_R_NOT_PEM,            /* input is neither PEM nor DER certificates */
    X509SVID_R_CORRUPT,            /* a certificate (or CSR) does not parse */
    X509SVID_R_TOO_MANY,           /* more than X509SVID_MAX_CERTS certificates */
    X509SVID_R_TOO_BIG,            /* a certificate or the whole input is over its cap */
    /* The leaf's identity (X509-SVID §2, checklist X509-1/2/4). */
    X509SVID_R_NO_URI_SAN,         /* leaf has no URI SAN */
    X509SVID_R_MULTIPLE_URI_SANS,  /* leaf has more than one URI SAN */
    X509SVID_R_NOT_SPIFFE,         /* the URI SAN's scheme is not spiffe */
    X509SVID_R_BAD_SPIFFE_ID,      /* the URI SAN is not a valid SPIFFE ID */
    X509SVID_R_ROOT_PATH,          /* the leaf's SPIFFE ID has no path */
    X509SVID_R_EMBEDDED_NUL,       /* a SAN holds a NUL byte (hostile certificate) */
    /* The leaf's constraints (X509-9, X509-12). */
    X509SVID_R_LEAF_IS_CA,         /* leaf has cA=TRUE */
    X509SVID_R_LEAF_NO_DIGITAL_SIG, /* leaf lacks keyUsage digitalSignature (or keyUsage) */
    X509SVID_R_LEAF_KEY_CERT_SIGN, /* leaf has keyUsage keyCertSign */
    X509SVID_R_LEAF_CRL_SIGN,      /* leaf has keyUsage cRLSign */
    /* Signing certificates (X509-7). */
    X509SVID_R_SIGNER_NOT_CA,      /* a later certificate is not a CA */
    X509SVID_R_SIGNER_NO_KEY_CERT_SIGN, /* a later certificate lacks keyCertSign */
    /* Trust (X509-15). */
    X509SVID_R_NO_BUNDLE,          /* the set has no bundle for the leaf's trust domain */
    X509SVID_R_EMPTY_BUNDLE,       /* that bundle has no X.509 authority */
    X509SVID_R_UNKNOWN_AUTHORITY,  /* no path from the leaf to an authority of the bundle */
    X509SVID_R_WRONG_TRUST_DOMAIN, /* chain leads to another trust domain's authority */
    X509SVID_R_BAD_SIGNATURE,      /* a signature on the path does not verify */
    X509SVID_R_EXPIRED,            /* a certificate on the path expired before `at` */
    X509SVID_R_NOT_YET_VALID,      /* a certificate on the path is not valid yet at `at` */
    X509SVID_R_PATH_INVALID,       /* other RFC 5280 path failure (pathLen, critical ext) */
    /* Issuing. */
    X509SVID_R_BAD_TTL,            /* ttl <= 0, or validity not representable */
    X509SVID_R_BAD_PUBLIC_KEY,     /* public key is not EC P-256 or Ed25519 */
    X509SVID_R_BAD_CSR,            /* CSR does not parse */
    X509SVID_R_CSR_SIGNATURE,      /* CSR self-signature does not verify */
    X509SVID_R_BAD_CA,             /* CA certificate/key unusable (not a CA, key mismatch) */
    X509SVID_R_BAD_REQUEST,        /* bad mint request (ID outside CA trust domain, DNS) */
};

/* ---- CA certificate ------------------------------------------------------------------------ */

/*
 * Create the self-signed CA certificate of `trust_domain` (bare name) for `key`: subject
 * O=lanyard, CN=<trust domain>; URI SAN spiffe://<trust domain>; basicConstraints cA=TRUE and
 * keyUsage keyCertSign+cRLSign, both critical; SKID and AKID; no EKU; a random positive
 * 128-bit serial; validity exactly [now, now + ttl]. Signed ECDSA-SHA256 or Ed25519 by key.
 * cert_der is initialised here; caller frees with ly_buf_free(). key is borrowed (its RNG is
 * used, so not concurrently with other users of the key).
 */
int x509svid_ca_create(struct svid_key *key, const char *trust_domain, int64_t now, int64_t ttl,
                       struct ly_buf *cert_der, struct ly_error *err) LY_MUST_USE;

/* A CA prepared for minting: issuer Name, AKID and notAfter are extracted once here. */
struct x509svid_ca;

/*
 * Prepare a CA from its DER certificate and private key. The certificate must be a CA
 * (cA=TRUE, keyCertSign) whose public key is `key`; its trust domain is taken from its URI SAN
 * when it has one. `key` is borrowed and must outlive the handle. Caller frees with
 * x509svid_ca_free(). A handle is not thread-safe (it reuses a scratch buffer and the key's RNG).
 */
int x509svid_ca_new(const uint8_t *cert_der, size_t len, struct svid_key *key,
                    struct x509svid_ca **out, struct ly_error *err) LY_MUST_USE;

/* The CA certificate's notAfter (epoch seconds). */
int64_t x509svid_ca_not_after(const struct x509svid_ca *ca);

/* The CA's DER certificate (borrowed for the handle's lifetime). */
const uint8_t *x509svid_ca_cert(const struct x509svid_ca *ca, size_t *len);

/* Free the handle (not the key it borrows). NULL is a no-op. */
void x509svid_ca_free(struct x509svid_ca *ca);

/* ---- minting ------------------------------------------------------------------------------- */

/*
 * Mint an X509-SVID for `id` (non-root path; in the CA's trust domain when the CA has a SPIFFE
 * ID) over `spki` (SubjectPublicKeyInfo DER, EC P-256 or Ed25519; no key is generated):
 * subject O=lanyard; exactly one URI SAN (the ID) plus the optional DNS SANs (n_dns <=
 * X509SVID_MAX_DNS); basicConstraints cA=FALSE and keyUsage digitalSignature, both critical;
 * EKU serverAuth + clientAuth; SKID/AKID; random 128-bit serial; notBefore = now -
 * X509SVID_LEAF_BACKDATE, notAfter = min(now + ttl, CA notAfter); ttl must be > 0. `now` is
 * normally ly_time_now(). All pointers are borrowed for the call. cert_der is initialised here;
 * caller frees with ly_buf_free(). Returns 0, LY_ERR_USAGE (X509SVID_R_BAD_TTL, _BAD_REQUEST,
 * _BAD_CA when the CA has expired), LY_ERR_PARSE (X509SVID_R_BAD_PUBLIC_KEY) or LY_ERR_INTERNAL.
 */
int x509svid_mint(struct x509svid_ca *ca, const struct spiffeid *id, const uint8_t *spki,
                  size_t spki_len, const char *const *dns, size_t n_dns, int64_t now, int64_t ttl,
                  struct ly_buf *cert_der, struct ly_error *err) LY_MUST_USE;

/*
 * Read a PKCS#10 CSR (PEM "CERTIFICATE REQUEST" or DER) with wolfSSL, verify its
 * self-signature, accept only EC P-256 or Ed25519 keys, and return its SubjectPublicKeyInfo
 * DER in spki (initialised here; caller frees with ly_buf_free()). Everything else in the CSR
 * (subject, requested SANs and extensions) is ignored: the SPIFFE ID comes from the caller.
 */
int x509svid_csr_public_key(const uint8_t *csr, size_t len, struct ly_buf *spki,
                            struct ly_error *err) LY_MUST_USE;

/* ---- chains -------------------------------------------------------------------------------- */

/* A parsed certificate chain: leaf first, then the certificates that sign it. */
struct x509svid_chain;

/*
 * Parse PEM (one or more CERTIFICATE blocks; other blocks such as keys are skipped) or
 * concatenated DER certificates (as the Workload API sends them). Each certificate must parse.
 * Caller frees *out with x509svid_chain_free(). LY_ERR_PARSE with X509SVID_R_NO_CERTS,
 * _NOT_PEM, _CORRUPT, _TOO_MANY or _TOO_BIG.
 */
int x509svid_chain_parse(const uint8_t *data, size_t len, struct x509svid_chain **out,
                         struct ly_error *err) LY_MUST_USE;

/* An empty chain to fill with x509svid_chain_add(). Caller frees with x509svid_chain_free(). */
int x509svid_chain_new(struct x509svid_chain **out, struct ly_error *err) LY_MUST_USE;

/* Append one DER certificate (copied; it must parse). Same caps and errors as chain_parse. */
int x509svid_chain_add(struct x509svid_chain *chain, const uint8_t *der, size_t len,
                       struct ly_error *err) LY_MUST_USE;

size_t x509svid_chain_count(const struct x509svid_chain *chain);

/* The i-th DER certificate (borrowed for the chain's lifetime), or NULL when out of range. */
const uint8_t *x509svid_chain_cert(const struct x509svid_chain *chain, size_t i, size_t *len);

/* Free. NULL is a no-op. */
void x509svid_chain_free(struct x509svid_chain *chain);

/* ---- verification -------------------------------------------------------------------------- */

/*
 * Verify `chain` as an X509-SVID at time `at` (epoch seconds) against `set`: the bundle is
 * the one of the leaf's trust domain; its X.509 authorities are the only trust anchors and the
 * chain's later certificates only untrusted intermediates, in any order (RFC 5280 §6, a fresh
 * wolfSSL certificate manager per call; an intermediate is used only once its own signature
 * verifies); every certificate on the path must be valid at `at` (the wall clock is never
 * used); and all X509-SVID rules hold (one spiffe URI SAN with a path, no NUL in any SAN, leaf
 * not a CA, leaf digitalSignature without keyCertSign/cRLSign, and every later certificate a
 * CA with keyCertSign, as go-spiffe requires). On success *id is the leaf's
 * SPIFFE ID. Otherwise LY_ERR_PARSE or LY_ERR_VERIFY with an enum x509svid_reason and a
 * message naming the problem. Thread-safe for distinct outputs (set and chain are read-only).
 */
int x509svid_verify(const struct x509svid_chain *chain, const struct bundle_set *set, int64_t at,
                    struct spiffeid *id, struct ly_error *err) LY_MUST_USE;

/*
 * Prepared trust anchors, for a verifier that checks many chains against one bundle set (the
 * gateway verifies a client chain on every handshake). Built once per bundle set: each trust
 * domain's usable authorities (CAs, self-signatures checked once here) are loaded into one
 * wolfSSL certificate manager, so a handshake does not rebuild and re-verify them. The set is
 * borrowed and must outlive the anchors and stay unchanged. Caller frees with
 * x509svid_anchors_free(). Thread-safe once built.
 */
struct x509svid_anchors;

int x509svid_anchors_new(const struct bundle_set *set, struct x509svid_anchors **out,
                         struct ly_error *err) LY_MUST_USE;

/*
 * Exactly x509svid_verify(chain, set, at, id, err) for the anchors' set: same rules, same
 * verdicts, same reasons and messages. Faster when the chain is one leaf (possibly followed by
 * copies of its domain's own authorities) and every authority of its trust domain is valid at
 * `at`: the prepared certificate manager checks the leaf's
 * signature, and a leaf whose exact DER (by SHA-256) already verified against these anchors
 * skips the signature check (every rule that depends on `at` or on the leaf's content is still
 * checked). Anything else (intermediates, an authority outside its validity, any refusal)
 * goes through x509svid_verify itself.
 */
int x509svid_verify_anchored(const struct x509svid_chain *chain, struct x509svid_anchors *a,
                             int64_t at, struct spiffeid *id, struct ly_error *err) LY_MUST_USE;

/* Leaves whose signature check was skipped because they had verified before (for tests). */
uint64_t x509svid_anchors_cache_hits(struct x509svid_anchors *a);

/* Free. NULL is a no-op. */
void x509svid_anchors_free(struct x509svid_anchors *a);

/*
 * The structural check only (what go-spiffe's x509svid.Parse does): the leaf's identity and
 * constraint rules and the signing-certificate rules on the later certificates, with no
 * signature, path or time check. Never enough to trust a peer; for tooling and diagnostics.
 */
int x509svid_check_structure(const struct x509svid_chain *chain, struct spiffeid *id,
                             struct ly_error *err) LY_MUST_USE;

/* ---- facts about a certificate -------------------------------------------------------------- */

#define X509SVID_SUBJECT_MAX 256

struct x509svid_info {
    int has_id;                          /* 1 when the cert has one valid spiffe URI SAN */
    struct spiffeid id;                  /* valid only when has_id */
    char serial_hex[2 * 20 + 1];         /* serial, lower-case hex, no separators */
    int64_t not_before;                  /* epoch seconds */
    int64_t not_after;
    char subject[X509SVID_SUBJECT_MAX];  /* one line, e.g. "/O=lanyard/CN=example.org" */
    char sha256_hex[2 * 32 + 1];         /* SHA-256 of the DER, lower-case hex */
    int is_ca;                           /* basicConstraints cA=TRUE */
};

/* Fill *info from a DER certificate (parsed by wolfSSL, nothing verified). LY_ERR_PARSE. */
int x509svid_cert_info(const uint8_t *der, size_t len, struct x509svid_info *info,
                       struct ly_error *err) LY_MUST_USE;

/*
 * The SubjectPublicKeyInfo DER of a certificate (parsed by wolfSSL, nothing verified) into spki
 * (initialised here; caller frees with ly_buf_free()), e.g. to check a key file matches it with
 * svid_key_matches_public(). LY_ERR_PARSE when the certificate does not parse.
 */
int x509svid_cert_public_key(const uint8_t *der, size_t len, struct ly_buf *spki,
                             struct ly_error *err) LY_MUST_USE;

#endif
