/*
 * x509svid_internal: the certificate template behind x509svid_ca_create() and x509svid_mint(),
 * exposed so unit tests and fuzz seeds can build deliberately wrong certificates (a CA-flag
 * leaf, two URI SANs, an intermediate without keyCertSign...). Only svid/ sources and tests
 * include this header; nothing here may be reachable from the daemon's configuration.
 */
#ifndef X509SVID_INTERNAL_H
#define X509SVID_INTERNAL_H

#include "x509svid.h"

/* keyUsage bits as in the first content byte of the BIT STRING (RFC 5280 §4.2.1.3). */
#define X509SVID_KU_DIGITAL_SIGNATURE 0x80
#define X509SVID_KU_KEY_ENCIPHERMENT 0x20
#define X509SVID_KU_KEY_AGREEMENT 0x08
#define X509SVID_KU_KEY_CERT_SIGN 0x04
#define X509SVID_KU_CRL_SIGN 0x02

/* basicConstraints choices. */
#define X509SVID_BC_NONE 0  /* no basicConstraints extension */
#define X509SVID_BC_LEAF 1  /* cA=FALSE (the default, omitted in DER) */
#define X509SVID_BC_CA 2    /* cA=TRUE */

struct x509svid_tmpl {
    const uint8_t *spki;        /* subject public key (SubjectPublicKeyInfo DER) */
    size_t spki_len;
    const char *subject_o;      /* NULL: no O attribute */
    const char *subject_cn;     /* NULL: no CN attribute (both NULL: empty subject) */
    const char *const *uris;    /* URI SANs, written as given (no validation) */
    const size_t *uri_lens;     /* NULL: strlen of each URI; else exact lengths (NUL tests) */
    size_t n_uris;
    const char *const *dns;     /* DNS SANs */
    size_t n_dns;
    int san_critical;
    int bc;                     /* X509SVID_BC_* */
    int bc_critical;
    int path_len;               /* >= 0: pathLenConstraint (CA only); < 0: none */
    unsigned key_usage;         /* X509SVID_KU_* bits; 0: no keyUsage extension */
    int ku_critical;
    int eku_tls;                /* 1: EKU serverAuth + clientAuth */
    int64_t not_before;
    int64_t not_after;
};

/*
 * Build and sign a certificate from t. issuer NULL: self-signed by self_key (whose public key
 * must be t->spki; issuer Name = subject, AKID = own SKID). Otherwise signed by the issuer
 * handle. out is initialised here. The template is not checked against the X509-SVID rules.
 */
int x509svid_build(const struct x509svid_tmpl *t, struct x509svid_ca *issuer,
                   struct svid_key *self_key, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

#endif
