/*
 * mint: X509-SVID minting throughput on one core against its anchor, raw wolfSSL ECDSA P-256
 * signing of a SHA-256 digest, measured in the same run. Minting reuses one fixed P-256 public
 * key (no key generation), so the ratio shows what encoding and bookkeeping add to the one
 * signature each certificate needs. The two are measured in alternating half-second slices
 * (3 s each in total), so load from other processes hits both alike. Prints both rates and
 * "mint ratio: R".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_time.h"
#include "../svid/key.h"
#include "../svid/x509svid.h"

#define BENCH_SECONDS 3.0
#define SLICES 6
#define CHECK_EVERY 32

static double mono_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mint for `secs` seconds; adds certificates to *count and seconds to *spent. -1 on failure. */
static int mint_slice(struct x509svid_ca *ca, const struct spiffeid *id, const struct ly_buf *spki,
                      int64_t now, double secs, long *count, double *spent)
{
    struct ly_error err;
    double t0 = mono_now();
    double el = 0.0;
    long n = 0;

    for (;;) {
        struct ly_buf cert;

        if (x509svid_mint(ca, id, spki->data, spki->len, NULL, 0, now, 3600, &cert, &err) != 0) {
            fprintf(stderr, "mint: %s\n", err.msg);
            return -1;
        }
        ly_buf_free(&cert);
        n++;
        if (n % CHECK_EVERY == 0) {
            el = mono_now() - t0;
            if (el >= secs) {
                break;
            }
        }
    }
    *count += n;
    *spent += el;
    return 0;
}

/* Raw ECDSA P-256 signing of a SHA-256 digest for `secs` seconds; same accounting. */
static int sign_slice(WC_RNG *rng, ecc_key *key, double secs, long *count, double *spent)
{
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    uint8_t sig[80];
    double t0 = mono_now();
    double el = 0.0;
    long n = 0;

    memset(digest, 0x5a, sizeof(digest));
    for (;;) {
        word32 len = sizeof(sig);

        if (wc_ecc_sign_hash(digest, sizeof(digest), sig, &len, rng, key) != 0) {
            fprintf(stderr, "mint: raw signing failed\n");
            return -1;
        }
        n++;
        if (n % CHECK_EVERY == 0) {
            el = mono_now() - t0;
            if (el >= secs) {
                break;
            }
        }
    }
    *count += n;
    *spent += el;
    return 0;
}

int main(void)
{
    static const char uri[] = "spiffe://bench.test/ns/default/sa/mcp-server";
    struct svid_key *ca_key = NULL;
    struct svid_key *leaf_key = NULL;
    struct x509svid_ca *ca = NULL;
    struct ly_buf ca_cert;
    struct ly_buf spki;
    struct ly_error err;
    struct spiffeid id;
    WC_RNG rng;
    ecc_key raw_key;
    int rng_ready = 0, key_ready = 0;
    long n_mint = 0, n_sign = 0;
    double t_mint = 0.0, t_sign = 0.0, mint_rate, sign_rate;
    int64_t now = ly_time_now();
    int i, rc = 1;

    ly_buf_init(&ca_cert, 0);
    ly_buf_init(&spki, 0);
    if (svid_key_generate(SVID_KEY_EC_P256, &ca_key, &err) != 0 ||
        svid_key_generate(SVID_KEY_EC_P256, &leaf_key, &err) != 0 ||
        svid_key_public_der(leaf_key, &spki, &err) != 0 ||
        x509svid_ca_create(ca_key, "bench.test", now, 86400, &ca_cert, &err) != 0 ||
        x509svid_ca_new(ca_cert.data, ca_cert.len, ca_key, &ca, &err) != 0 ||
        spiffeid_parse(uri, sizeof(uri) - 1, &id, &err) != 0) {
        fprintf(stderr, "mint: setup failed: %s\n", err.msg);
        goto out;
    }
    /* The anchor: a separate P-256 key and RNG, set up once, as lanyard's CA handle is. */
    if (wc_InitRng(&rng) != 0) {
        fprintf(stderr, "mint: cannot initialise the RNG\n");
        goto out;
    }
    rng_ready = 1;
    if (wc_ecc_init(&raw_key) != 0) {
        fprintf(stderr, "mint: cannot initialise an EC key\n");
        goto out;
    }
    key_ready = 1;
    if (wc_ecc_make_key_ex(&rng, 32, &raw_key, ECC_SECP256R1) != 0) {
        fprintf(stderr, "mint: key generation failed\n");
        goto out;
    }
    for (i = 0; i < SLICES; i++) {
        if (mint_slice(ca, &id, &spki, now, BENCH_SECONDS / SLICES, &n_mint, &t_mint) != 0 ||
            sign_slice(&rng, &raw_key, BENCH_SECONDS / SLICES, &n_sign, &t_sign) != 0) {
            goto out;
        }
    }
    mint_rate = (double)n_mint / t_mint;
    sign_rate = (double)n_sign / t_sign;
    printf("X509-SVID mint (P-256 CA, fixed P-256 key): %.0f /s\n", mint_rate);
    printf("raw wolfSSL ECDSA P-256 sign (SHA-256 digest): %.0f /s\n", sign_rate);
    printf("mint ratio: %.2f\n", mint_rate / sign_rate);
    rc = 0;
out:
    if (key_ready) {
        (void)wc_ecc_free(&raw_key); /* bench teardown: nothing to do on failure */
    }
    if (rng_ready) {
        (void)wc_FreeRng(&rng);
    }
    x509svid_ca_free(ca);
    ly_buf_free(&ca_cert);
    ly_buf_free(&spki);
    svid_key_free(leaf_key);
    svid_key_free(ca_key);
    return rc;
}
