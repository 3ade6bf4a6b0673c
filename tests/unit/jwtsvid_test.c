/*
 * jwtsvid_test: unit tests for svid/jwtsvid: mint/validate round trips, the rejection matrix of
 * checklist §4 (each case asserts its reason code), and tokens of the other allowed algorithms
 * signed here with wolfCrypt directly. Tokens are built from literal JSON, never from the code
 * under test, so a bug in minting cannot hide a bug in validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/signature.h>

#include "../../common/ly_b64.h"
#include "../../common/ly_file.h"
#include "../../svid/jwtsvid.h"
#include "../../trust-bundles/bundle.h"

/* A fixed validation time: 2027-01-15T08:00:00Z. */
#define AT INT64_C(1800000000)
#define LEEWAY 30
#define AUD "spiffe://example.org/server"
#define SUB "spiffe://example.org/workload"

enum signer {
    S_EC256 = 1, /* the svid_key, kid "k-ec256" in example.org */
    S_OTHER,     /* a second svid_key, kid "k-other", only in other.org */
    S_P384,      /* wolfCrypt P-384, kid "k-p384" */
    S_P521,      /* wolfCrypt P-521, kid "k-p521" */
    S_RSA_PKCS1, /* RSA-2048 PKCS#1 v1.5, kid "k-rsa" */
    S_RSA_PSS,   /* RSA-2048 PSS, kid "k-rsa" */
    S_RSA1024,   /* RSA-1024 PKCS#1 v1.5, kid "k-rsa1024" */
};

static struct {
    WC_RNG rng;
    struct svid_key *ec256;
    struct svid_key *other;
    ecc_key p384;
    ecc_key p521;
    RsaKey rsa;
    RsaKey rsa1024;
    struct bundle_set *set;
} g;

static void add_jwt(struct bundle *b, const char *kid, const uint8_t *spki, size_t len)
{
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(bundle_add_jwt_authority(b, kid, spki, len, &err), 0);
}

static void add_svid_key(struct bundle *b, const char *kid, const struct svid_key *k)
{
    struct ly_buf spki;
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(svid_key_public_der(k, &spki, &err), 0);
    add_jwt(b, kid, spki.data, spki.len);
    ly_buf_free(&spki);
}

static void add_ecc(struct bundle *b, const char *kid, ecc_key *k)
{
    uint8_t der[512];
    int n = wc_EccPublicKeyToDer(k, der, sizeof(der), 1);

    assert_true(n > 0);
    add_jwt(b, kid, der, (size_t)n);
}

static void add_rsa(struct bundle *b, const char *kid, RsaKey *k)
{
    uint8_t der[1024];
    int n = wc_RsaKeyToPublicDer(k, der, sizeof(der));

    assert_true(n > 0);
    add_jwt(b, kid, der, (size_t)n);
}

static int group_setup(void **state)
{
    struct ly_error err = {0};
    struct bundle *ex = NULL;
    struct bundle *other = NULL;

    (void)state;
    ly_error_clear(&err);
    if (wc_InitRng(&g.rng) != 0 || svid_key_generate(SVID_KEY_EC_P256, &g.ec256, &err) != 0 ||
        svid_key_generate(SVID_KEY_EC_P256, &g.other, &err) != 0) {
        return -1;
    }
    if (wc_ecc_init(&g.p384) != 0 || wc_ecc_make_key_ex(&g.rng, 48, &g.p384, ECC_SECP384R1) != 0 ||
        wc_ecc_init(&g.p521) != 0 || wc_ecc_make_key_ex(&g.rng, 66, &g.p521, ECC_SECP521R1) != 0) {
        return -1;
    }
    if (wc_InitRsaKey(&g.rsa, NULL) != 0 ||
        wc_MakeRsaKey(&g.rsa, 2048, WC_RSA_EXPONENT, &g.rng) != 0 ||
        wc_RsaSetRNG(&g.rsa, &g.rng) != 0 || wc_InitRsaKey(&g.rsa1024, NULL) != 0 ||
        wc_MakeRsaKey(&g.rsa1024, 1024, WC_RSA_EXPONENT, &g.rng) != 0 ||
        wc_RsaSetRNG(&g.rsa1024, &g.rng) != 0) {
        return -1;
    }
    if (bundle_set_new(&g.set, &err) != 0 || bundle_new("example.org", &ex, &err) != 0 ||
        bundle_new("other.org", &other, &err) != 0) {
        return -1;
    }
    add_svid_key(ex, "k-ec256", g.ec256);
    add_ecc(ex, "k-p384", &g.p384);
    add_ecc(ex, "k-p521", &g.p521);
    add_rsa(ex, "k-rsa", &g.rsa);
    add_rsa(ex, "k-rsa1024", &g.rsa1024);
    /* other.org trusts both our key and its own; example.org knows nothing of k-other. */
    add_svid_key(other, "k-ec256", g.ec256);
    add_svid_key(other, "k-other", g.other);
    if (bundle_set_put(g.set, ex, &err) != 0 || bundle_set_put(g.set, other, &err) != 0) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bundle_set_free(g.set);
    svid_key_free(g.ec256);
    svid_key_free(g.other);
    wc_ecc_free(&g.p384);
    wc_ecc_free(&g.p521);
    wc_FreeRsaKey(&g.rsa);
    wc_FreeRsaKey(&g.rsa1024);
    wc_FreeRng(&g.rng);
    return 0;
}

/* ---- token construction (independent of jwtsvid_mint) ---- */

static void b64url(const void *in, size_t len, struct ly_buf *acc)
{
    struct ly_buf enc;
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(ly_b64_encode(in, len, 1, &enc, 65536, &err), 0);
    assert_int_equal(ly_buf_append(acc, enc.data, enc.len, &err), 0);
    ly_buf_free(&enc);
}

static void ecc_sign(ecc_key *k, enum wc_HashType h, word32 coord, const uint8_t *msg, size_t len,
                     uint8_t *sig, size_t *siglen)
{
    uint8_t digest[WC_MAX_DIGEST_SIZE];
    uint8_t der[ECC_MAX_SIG_SIZE];
    word32 derlen = sizeof(der);
    uint8_t r[66];
    uint8_t s[66];
    word32 rlen = sizeof(r);
    word32 slen = sizeof(s);
    int dl = wc_HashGetDigestSize(h);

    assert_int_equal(wc_Hash(h, msg, (word32)len, digest, (word32)dl), 0);
    assert_int_equal(wc_ecc_sign_hash(digest, (word32)dl, der, &derlen, &g.rng, k), 0);
    assert_int_equal(wc_ecc_sig_to_rs(der, derlen, r, &rlen, s, &slen), 0);
    assert_true(rlen <= coord && slen <= coord);
    memset(sig, 0, 2 * coord);
    memcpy(sig + coord - rlen, r, rlen);
    memcpy(sig + 2 * coord - slen, s, slen);
    *siglen = 2 * coord;
}

static void rsa_sign(RsaKey *k, int pss, enum wc_HashType h, const uint8_t *msg, size_t len,
                     uint8_t *sig, size_t *siglen)
{
    word32 n = 512;

    if (!pss) {
        assert_int_equal(wc_SignatureGenerate(h, WC_SIGNATURE_TYPE_RSA_W_ENC, msg, (word32)len, sig,
                                              &n, k, sizeof(*k), &g.rng),
                         0);
        *siglen = n;
    } else {
        uint8_t digest[WC_MAX_DIGEST_SIZE];
        int dl = wc_HashGetDigestSize(h);
        int mgf = h == WC_HASH_TYPE_SHA256
                      ? WC_MGF1SHA256
                      : (h == WC_HASH_TYPE_SHA384 ? WC_MGF1SHA384 : WC_MGF1SHA512);
        int rc;

        assert_int_equal(wc_Hash(h, msg, (word32)len, digest, (word32)dl), 0);
        rc = wc_RsaPSS_Sign_ex(digest, (word32)dl, sig, n, h, mgf, dl, k, &g.rng);
        assert_true(rc > 0);
        *siglen = (size_t)rc;
    }
}

/*
 * Build "b64(header).b64(payload).b64(sig)" signed by `who` with hash `h`. Caller frees with
 * free(). `flip` >= 0 flips that bit of the signature (tampering).
 */
static char *make_token_ex(const char *header, const char *payload, enum signer who,
                           enum wc_HashType h, int flip)
{
    struct ly_buf t;
    struct ly_buf sb;
    struct ly_error err = {0};
    uint8_t sig[600];
    size_t siglen = 0;

    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    b64url(header, strlen(header), &t);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(payload, strlen(payload), &t);
    switch (who) {
    case S_EC256:
    case S_OTHER:
        assert_int_equal(
            svid_key_sign_jws(who == S_EC256 ? g.ec256 : g.other, t.data, t.len, &sb, &err), 0);
        assert_int_equal(sb.len, 64);
        memcpy(sig, sb.data, sb.len);
        siglen = sb.len;
        ly_buf_free(&sb);
        break;
    case S_P384:
        ecc_sign(&g.p384, h, 48, t.data, t.len, sig, &siglen);
        break;
    case S_P521:
        ecc_sign(&g.p521, h, 66, t.data, t.len, sig, &siglen);
        break;
    case S_RSA_PKCS1:
    case S_RSA_PSS:
        rsa_sign(&g.rsa, who == S_RSA_PSS, h, t.data, t.len, sig, &siglen);
        break;
    case S_RSA1024:
        rsa_sign(&g.rsa1024, 0, h, t.data, t.len, sig, &siglen);
        break;
    default:
        fail();
    }
    if (flip >= 0) {
        sig[(size_t)flip / 8 % siglen] ^= (uint8_t)(1u << (flip % 8));
    }
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(sig, siglen, &t);
    return (char *)ly_buf_steal(&t, NULL);
}

static char *make_token(const char *header, const char *payload, enum signer who)
{
    return make_token_ex(header, payload, who, WC_HASH_TYPE_SHA256, -1);
}

#define HDR(alg, kid) "{\"alg\":\"" alg "\",\"kid\":\"" kid "\",\"typ\":\"JWT\"}"
#define HDR_EC HDR("ES256", "k-ec256")

/* A standard payload: sub, aud, exp = AT + 600, iat = AT - 60. */
static const char *payload_ok(void)
{
    return "{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,\"iat\":1799999940}";
}

/* Validate; expect rejection with this category and reason, and no token text in the message. */
static void expect_reject_at(const char *tok, size_t len, int64_t at, int code, int reason)
{
    struct jwtsvid_result res;
    struct ly_error err = {0};
    const char *lastdot;
    int rc;

    memset(&res, 0xa5, sizeof(res));
    ly_error_clear(&err);
    rc = jwtsvid_validate(tok, len, AUD, g.set, at, LEEWAY, &res, &err);
    if (rc != code || err.reason != reason) {
        print_error("expected code %d reason %d, got %d reason %d: %s\n", code, reason, rc,
                    err.reason, err.msg);
    }
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_int_equal(err.reason, reason);
    assert_true(err.msg[0] != '\0');
    /* The result is zeroed on failure, so freeing it is safe. */
    assert_null(res.audiences);
    assert_null(res.kid);
    assert_null(res.claims_json);
    jwtsvid_result_free(&res);
    /* §2 rule 15: the signature part (and so the token) never appears in a message. */
    lastdot = memchr(tok, '.', len) != NULL ? strrchr(tok, '.') : NULL;
    if (lastdot != NULL && strlen(lastdot + 1) >= 8) {
        char probe[9];
        memcpy(probe, lastdot + 1, 8);
        probe[8] = '\0';
        assert_null(strstr(err.msg, probe));
    }
}

static void expect_reject(const char *tok, int code, int reason)
{
    expect_reject_at(tok, strlen(tok), AT, code, reason);
}

static void reject_payload(const char *payload, int code, int reason)
{
    char *tok = make_token(HDR_EC, payload, S_EC256);

    expect_reject(tok, code, reason);
    free(tok);
}

static void reject_header(const char *header, int code, int reason)
{
    char *tok = make_token(header, payload_ok(), S_EC256);

    expect_reject(tok, code, reason);
    free(tok);
}

static void expect_ok_at(const char *tok, int64_t at, struct jwtsvid_result *res)
{
    struct ly_error err = {0};
    int rc;

    ly_error_clear(&err);
    rc = jwtsvid_validate(tok, strlen(tok), AUD, g.set, at, LEEWAY, res, &err);
    if (rc != 0) {
        print_error("unexpected rejection (reason %d): %s\n", err.reason, err.msg);
    }
    assert_int_equal(rc, 0);
}

static void accept_token(const char *tok)
{
    struct jwtsvid_result res;

    expect_ok_at(tok, AT, &res);
    assert_string_equal(res.sub.str, SUB);
    jwtsvid_result_free(&res);
}

/* Decode one part of a token (0 header, 1 payload) into a NUL-terminated string. */
static char *token_part(const char *tok, int idx)
{
    const char *p = tok;
    const char *end;
    struct ly_buf out;
    struct ly_error err = {0};
    int i;

    for (i = 0; i < idx; i++) {
        p = strchr(p, '.') + 1;
    }
    end = strchr(p, '.');
    ly_error_clear(&err);
    assert_int_equal(ly_b64_decode(p, (size_t)(end - p), 1, 0, &out, 65536, &err), 0);
    return (char *)ly_buf_steal(&out, NULL);
}

static char *read_vector(const char *rel)
{
    char path[512];
    const char *root = getenv("LANYARD_ROOT");
    struct ly_buf b;
    struct ly_error err = {0};
    char *s;
    size_t len;

    assert_true(snprintf(path, sizeof(path), "%s/tests/data/vectors/%s", root ? root : ".", rel) <
                (int)sizeof(path));
    ly_error_clear(&err);
    if (ly_file_read(path, LY_FILE_MAX_DEFAULT, 0, &b, &err) != 0) {
        print_error("missing vector %s: %s\n", path, err.msg);
        fail();
    }
    s = (char *)ly_buf_steal(&b, &len);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r')) {
        s[--len] = '\0';
    }
    return s;
}

/* ---- round trips ---- */

static void mint(const char *const *auds, size_t n, struct ly_buf *tok)
{
    struct spiffeid sub;
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(spiffeid_parse(SUB, strlen(SUB), &sub, &err), 0);
    assert_int_equal(jwtsvid_mint(g.ec256, "k-ec256", &sub, auds, n, AT - 60, 300, tok, &err), 0);
    assert_true(tok->secret);
    assert_int_equal(strlen((const char *)tok->data), tok->len);
}

static void test_roundtrip_one_audience(void **state)
{
    const char *auds[] = {AUD};
    struct ly_buf tok;
    struct jwtsvid_result res;
    char *hdr;
    char *pay;

    (void)state;
    mint(auds, 1, &tok);
    hdr = token_part((const char *)tok.data, 0);
    pay = token_part((const char *)tok.data, 1);
    /* JWT-2: exactly alg, kid, typ; claims in the documented order, aud a plain string. */
    assert_string_equal(hdr, "{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"typ\":\"JWT\"}");
    assert_string_equal(pay, "{\"sub\":\"" SUB "\",\"aud\":\"" AUD
                             "\",\"exp\":1800000240,\"iat\":1799999940}");
    expect_ok_at((const char *)tok.data, AT, &res);
    assert_string_equal(res.sub.str, SUB);
    assert_int_equal(res.n_audiences, 1);
    assert_string_equal(res.audiences[0], AUD);
    assert_int_equal(res.exp, AT + 240);
    assert_true(res.has_iat);
    assert_int_equal(res.iat, AT - 60);
    assert_int_equal(res.alg, JWTSVID_ALG_ES256);
    assert_string_equal(jwtsvid_alg_name(res.alg), "ES256");
    assert_string_equal(res.kid, "k-ec256");
    assert_string_equal(res.claims_json, pay);
    assert_int_equal(res.claims_json_len, strlen(pay));
    jwtsvid_result_free(&res);
    assert_null(res.audiences);
    jwtsvid_result_free(&res); /* a freed (zeroed) result frees again harmlessly */
    jwtsvid_result_free(NULL);
    /* Out of time: the same token expires after exp + leeway. */
    expect_reject_at((const char *)tok.data, tok.len, AT + 240 + LEEWAY, LY_ERR_VERIFY,
                     JWTSVID_R_EXPIRED);
    free(hdr);
    free(pay);
    ly_buf_free(&tok);
}

static void test_roundtrip_several_audiences(void **state)
{
    const char *auds[] = {"spiffe://example.org/a", AUD, "https://mcp.example.org"};
    struct ly_buf tok;
    struct jwtsvid_result res;
    struct ly_error err = {0};
    char *pay;
    size_t i;

    (void)state;
    mint(auds, 3, &tok);
    pay = token_part((const char *)tok.data, 1);
    assert_non_null(strstr(pay, "\"aud\":[\"spiffe://example.org/a\",\"" AUD
                                "\",\"https://mcp.example.org\"]"));
    for (i = 0; i < 3; i++) {
        ly_error_clear(&err);
        assert_int_equal(jwtsvid_validate((const char *)tok.data, tok.len, auds[i], g.set, AT,
                                          LEEWAY, &res, &err),
                         0);
        assert_int_equal(res.n_audiences, 3);
        assert_string_equal(res.audiences[0], auds[0]);
        assert_string_equal(res.audiences[1], auds[1]);
        assert_string_equal(res.audiences[2], auds[2]);
        jwtsvid_result_free(&res);
    }
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate((const char *)tok.data, tok.len, "spiffe://example.org/b",
                                      g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, JWTSVID_R_AUD_MISMATCH);
    /* A prefix of an audience is not the audience. */
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate((const char *)tok.data, tok.len, "spiffe://example.org",
                                      g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, JWTSVID_R_AUD_MISMATCH);
    free(pay);
    ly_buf_free(&tok);
}

static void test_mint_refusals(void **state)
{
    const char *auds[] = {AUD};
    const char *empty_aud[] = {""};
    struct svid_key *ed = NULL;
    struct spiffeid sub;
    struct spiffeid root;
    struct ly_buf tok;
    struct ly_error err = {0};

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(spiffeid_parse(SUB, strlen(SUB), &sub, &err), 0);
    assert_int_equal(spiffeid_parse("spiffe://example.org", 20, &root, &err), 0);
    assert_int_equal(svid_key_generate(SVID_KEY_ED25519, &ed, &err), 0);
    assert_int_equal(jwtsvid_mint(ed, "k", &sub, auds, 1, AT, 60, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, JWTSVID_R_KEY_UNSUPPORTED);
    assert_null(tok.data);
    svid_key_free(ed);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &root, auds, 1, AT, 60, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, JWTSVID_R_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &sub, auds, 0, AT, 60, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &sub, empty_aud, 1, AT, 60, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &sub, auds, 1, AT, 0, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &sub, auds, 1, -1, 60, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "k", &sub, auds, 1, INT64_MAX - 10, 60, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "", &sub, auds, 1, AT, 60, &tok, &err), LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(g.ec256, "a\nb", &sub, auds, 1, AT, 60, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(jwtsvid_mint(NULL, "k", &sub, auds, 1, AT, 60, &tok, &err), LY_ERR_USAGE);
    assert_null(tok.data);
}

static void test_validate_usage(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    struct ly_error err = {0};

    (void)state;
    /* Checklist §9.12: an empty expected audience never disables the aud check. */
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), "", g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_USAGE);
    assert_int_equal(err.reason, JWTSVID_R_USAGE);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), NULL, g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_USAGE);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), AUD, NULL, AT, LEEWAY, NULL, &err),
                     LY_ERR_USAGE);
    assert_int_equal(jwtsvid_validate(NULL, 0, AUD, g.set, AT, LEEWAY, NULL, &err), LY_ERR_USAGE);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), AUD, g.set, AT, -1, NULL, &err),
                     LY_ERR_USAGE);
    assert_int_equal(
        jwtsvid_validate(tok, strlen(tok), AUD, g.set, AT, JWTSVID_LEEWAY_MAX + 1, NULL, &err),
        LY_ERR_USAGE);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), AUD, g.set, -5, LEEWAY, NULL, &err),
                     LY_ERR_USAGE);
    /* And with good arguments the same token passes, with or without a result. */
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), AUD, g.set, AT, LEEWAY, NULL, &err), 0);
    assert_int_equal(err.code, 0);
    free(tok);
}

/* ---- algorithm (JWT-3) ---- */

static void test_alg_none(void **state)
{
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    reject_header("{\"alg\":\"none\",\"kid\":\"k-ec256\",\"typ\":\"JWT\"}", LY_ERR_VERIFY,
                  JWTSVID_R_ALG);
    /* The classic unsigned form: empty signature part, rejected before any alg lookup. */
    ly_error_clear(&err);
    ly_buf_init(&t, 4096);
    b64url("{\"alg\":\"none\"}", 14, &t);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(payload_ok(), strlen(payload_ok()), &t);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    expect_reject((const char *)t.data, LY_ERR_PARSE, JWTSVID_R_EMPTY_PART);
    ly_buf_free(&t);
}

static void test_alg_hs256(void **state)
{
    char *vec;

    (void)state;
    reject_header(HDR("HS256", "k-ec256"), LY_ERR_VERIFY, JWTSVID_R_ALG);
    reject_header(HDR("HS512", "k-ec256"), LY_ERR_VERIFY, JWTSVID_R_ALG);
    /* The upstream vector (jwtsvid/hs256-token.txt): HS256, no kid, sub not a SPIFFE ID. */
    vec = read_vector("jwtsvid/hs256-token.txt");
    expect_reject(vec, LY_ERR_VERIFY, JWTSVID_R_ALG);
    free(vec);
}

static void test_alg_eddsa_and_others(void **state)
{
    (void)state;
    reject_header(HDR("EdDSA", "k-ec256"), LY_ERR_VERIFY, JWTSVID_R_ALG);
    reject_header(HDR("es256", "k-ec256"), LY_ERR_VERIFY, JWTSVID_R_ALG);
    reject_header(HDR("ES256K", "k-ec256"), LY_ERR_VERIFY, JWTSVID_R_ALG);
    reject_header("{\"kid\":\"k-ec256\",\"typ\":\"JWT\"}", LY_ERR_PARSE, JWTSVID_R_ALG);
    reject_header("{\"alg\":256,\"kid\":\"k-ec256\"}", LY_ERR_PARSE, JWTSVID_R_ALG);
    /* alg is judged before the other header members: a bad typ does not mask it. */
    reject_header("{\"alg\":\"HS256\",\"typ\":\"foo\",\"crit\":[\"x\"]}", LY_ERR_VERIFY,
                  JWTSVID_R_ALG);
}

/* ---- signature ---- */

static void test_tampered_payload(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    const char *sig = strrchr(tok, '.');
    const char *evil = "{\"sub\":\"spiffe://example.org/admin\",\"aud\":\"" AUD
                       "\",\"exp\":1800000600,\"iat\":1799999940}";
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    /* Re-encoded payload, original header and signature. */
    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_append(&t, tok, (size_t)(strchr(tok, '.') - tok) + 1, &err), 0);
    b64url(evil, strlen(evil), &t);
    assert_int_equal(ly_buf_append_str(&t, sig, &err), 0);
    expect_reject((const char *)t.data, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
    ly_buf_free(&t);
    free(tok);
}

static void test_tampered_signature(void **state)
{
    char *tok;
    int bit;

    (void)state;
    for (bit = 0; bit < 512; bit += 97) {
        tok = make_token_ex(HDR_EC, payload_ok(), S_EC256, WC_HASH_TYPE_SHA256, bit);
        expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
        free(tok);
    }
    /* Signed by a key that is not the kid's. */
    tok = make_token(HDR_EC, payload_ok(), S_OTHER);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
    free(tok);
}

static void test_signature_wrong_length(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    char *sig = strrchr(tok, '.') + 1;
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    /* 63 bytes of signature: drop the last 4 base64url characters, re-add 3 bytes' worth. */
    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_append(&t, tok, (size_t)(sig - tok), &err), 0);
    b64url("0123456789012345678901234567890123456789012345678901234567890AB", 63, &t);
    expect_reject((const char *)t.data, LY_ERR_VERIFY, JWTSVID_R_SIG_MALFORMED);
    ly_buf_free(&t);
    free(tok);
}

/* ---- claims ---- */

static void test_missing_claims(void **state)
{
    (void)state;
    reject_payload("{\"aud\":\"" AUD "\",\"exp\":1800000600}", LY_ERR_PARSE, JWTSVID_R_SUB_MISSING);
    reject_payload("{\"sub\":\"" SUB "\",\"exp\":1800000600}", LY_ERR_PARSE, JWTSVID_R_AUD_MISSING);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\"}", LY_ERR_PARSE,
                   JWTSVID_R_EXP_MISSING);
}

static void test_bad_subject(void **state)
{
    (void)state;
    reject_payload("{\"sub\":\"invalid subject\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
                   LY_ERR_PARSE, JWTSVID_R_SUB_INVALID);
    reject_payload("{\"sub\":\"spiffe://Example.org/w\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
                   LY_ERR_PARSE, JWTSVID_R_SUB_INVALID);
    reject_payload("{\"sub\":42,\"aud\":\"" AUD "\",\"exp\":1800000600}", LY_ERR_PARSE,
                   JWTSVID_R_SUB_INVALID);
    reject_payload("{\"sub\":\"spiffe://example.org\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
                   LY_ERR_PARSE, JWTSVID_R_SUB_ROOT);
}

static void test_audience(void **state)
{
    char *tok;

    (void)state;
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"another\",\"exp\":1800000600}", LY_ERR_VERIFY,
                   JWTSVID_R_AUD_MISMATCH);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":[\"a\",\"b\"],\"exp\":1800000600}", LY_ERR_VERIFY,
                   JWTSVID_R_AUD_MISMATCH);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":[],\"exp\":1800000600}", LY_ERR_PARSE,
                   JWTSVID_R_AUD_INVALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":[\"" AUD "\",7],\"exp\":1800000600}", LY_ERR_PARSE,
                   JWTSVID_R_AUD_INVALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":null,\"exp\":1800000600}", LY_ERR_PARSE,
                   JWTSVID_R_AUD_INVALID);
    /* An audience with a different case or a suffix is another audience. */
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "/x\",\"exp\":1800000600}", LY_ERR_VERIFY,
                   JWTSVID_R_AUD_MISMATCH);
    /* Two audiences, one matches (JWT-7). */
    tok = make_token(HDR_EC, "{\"sub\":\"" SUB "\",\"aud\":[\"x\",\"" AUD "\"],\"exp\":1800000600}",
                     S_EC256);
    accept_token(tok);
    free(tok);
}

static void test_expiry(void **state)
{
    char *tok;
    struct jwtsvid_result res;

    (void)state;
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1799999900}", LY_ERR_VERIFY,
                   JWTSVID_R_EXPIRED);
    /* Boundary: expired exactly when at >= exp + leeway. */
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1799999970}", LY_ERR_VERIFY,
                   JWTSVID_R_EXPIRED);
    tok =
        make_token(HDR_EC, "{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1799999971}", S_EC256);
    expect_ok_at(tok, AT, &res);
    assert_int_equal(res.exp, AT - 29);
    assert_false(res.has_iat);
    jwtsvid_result_free(&res);
    free(tok);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":\"1800000600\"}", LY_ERR_PARSE,
                   JWTSVID_R_EXP_INVALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":true}", LY_ERR_PARSE,
                   JWTSVID_R_EXP_INVALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":-1}", LY_ERR_VERIFY,
                   JWTSVID_R_EXPIRED);
    /* A NumericDate may have a fraction (RFC 7519 §2). */
    tok = make_token(HDR_EC, "{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600.75}",
                     S_EC256);
    expect_ok_at(tok, AT, &res);
    assert_int_equal(res.exp, AT + 600);
    jwtsvid_result_free(&res);
    free(tok);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1e300}", LY_ERR_PARSE,
                   JWTSVID_R_EXP_INVALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,\"iat\":\"x\"}",
                   LY_ERR_PARSE, JWTSVID_R_IAT_INVALID);
}

static void test_not_yet_valid(void **state)
{
    char *tok;

    (void)state;
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,"
                   "\"nbf\":1800000100}",
                   LY_ERR_VERIFY, JWTSVID_R_NOT_YET_VALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,"
                   "\"nbf\":1800000031}",
                   LY_ERR_VERIFY, JWTSVID_R_NOT_YET_VALID);
    reject_payload("{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,\"nbf\":[1]}",
                   LY_ERR_PARSE, JWTSVID_R_NBF_INVALID);
    /* Within the leeway. */
    tok = make_token(HDR_EC,
                     "{\"sub\":\"" SUB "\",\"aud\":\"" AUD "\",\"exp\":1800000600,"
                     "\"nbf\":1800000030}",
                     S_EC256);
    accept_token(tok);
    free(tok);
}

/* ---- key lookup (JWT-11) ---- */

static void test_unknown_kid(void **state)
{
    (void)state;
    reject_header(HDR("ES256", "k-nope"), LY_ERR_VERIFY, JWTSVID_R_UNKNOWN_KID);
}

static void test_no_bundle_for_trust_domain(void **state)
{
    (void)state;
    /* example.org's bundle holds k-ec256, but the subject is in a domain with no bundle. */
    reject_payload("{\"sub\":\"spiffe://nobundle.test/w\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
                   LY_ERR_VERIFY, JWTSVID_R_NO_BUNDLE);
}

static void test_other_trust_domain_key(void **state)
{
    char *tok;

    (void)state;
    /* k-other is trusted by other.org only: a token for an example.org subject signed with it
     * must fail, since keys are looked up in the subject's own trust domain. */
    tok = make_token(HDR("ES256", "k-other"), payload_ok(), S_OTHER);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_UNKNOWN_KID);
    free(tok);
    /* The same key does verify a token whose subject is in other.org. */
    tok = make_token(HDR("ES256", "k-other"),
                     "{\"sub\":\"spiffe://other.org/w\",\"aud\":\"" AUD "\",\"exp\":1800000600}",
                     S_OTHER);
    {
        struct jwtsvid_result res;
        expect_ok_at(tok, AT, &res);
        assert_string_equal(res.sub.str, "spiffe://other.org/w");
        jwtsvid_result_free(&res);
    }
    free(tok);
}

/* ---- structure (JWT-1) ---- */

static void test_json_serialization(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    char *p1 = strchr(tok, '.');
    char *p2 = strchr(p1 + 1, '.');
    struct ly_buf j;
    struct ly_error err = {0};

    (void)state;
    *p1 = '\0';
    *p2 = '\0';
    ly_error_clear(&err);
    ly_buf_init(&j, 65536);
    assert_int_equal(ly_buf_appendf(&j, &err,
                                    "{\"payload\":\"%s\",\"signatures\":[{\"protected\":\"%s\","
                                    "\"signature\":\"%s\"}]}",
                                    p1 + 1, tok, p2 + 1),
                     0);
    expect_reject((const char *)j.data, LY_ERR_PARSE, JWTSVID_R_JSON_SERIALIZATION);
    /* Flattened form, with leading whitespace. */
    ly_buf_reset(&j);
    assert_int_equal(
        ly_buf_appendf(&j, &err, "\n {\"payload\":\"%s\",\"protected\":\"%s\"}", p1 + 1, tok), 0);
    expect_reject((const char *)j.data, LY_ERR_PARSE, JWTSVID_R_JSON_SERIALIZATION);
    ly_buf_free(&j);
    free(tok);
}

static void test_part_count(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    ly_error_clear(&err);
    /* Two parts: drop the signature. */
    expect_reject_at(tok, (size_t)(strrchr(tok, '.') - tok), AT, LY_ERR_PARSE,
                     JWTSVID_R_NOT_COMPACT);
    /* Four parts. */
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_appendf(&t, &err, "%s.AAAA", tok), 0);
    expect_reject((const char *)t.data, LY_ERR_PARSE, JWTSVID_R_NOT_COMPACT);
    ly_buf_free(&t);
    /* One part, and nothing at all. */
    expect_reject("eyJhbGciOiJFUzI1NiJ9", LY_ERR_PARSE, JWTSVID_R_NOT_COMPACT);
    expect_reject_at("", 0, AT, LY_ERR_PARSE, JWTSVID_R_NOT_COMPACT);
    /* Empty parts. */
    expect_reject("..", LY_ERR_PARSE, JWTSVID_R_EMPTY_PART);
    expect_reject("eyJhbGciOiJFUzI1NiJ9..AAAA", LY_ERR_PARSE, JWTSVID_R_EMPTY_PART);
    free(tok);
}

static void test_bad_base64(void **state)
{
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    char *copy;
    size_t len = strlen(tok);
    const char *bad = "+/*!~ \n";
    size_t i;
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    for (i = 0; bad[i] != '\0'; i++) {
        copy = strdup(tok);
        assert_non_null(copy);
        copy[3] = bad[i]; /* header */
        expect_reject(copy, LY_ERR_PARSE, JWTSVID_R_BASE64);
        memcpy(copy, tok, len);
        copy[len - 5] = bad[i]; /* signature */
        expect_reject(copy, LY_ERR_PARSE, JWTSVID_R_BASE64);
        free(copy);
    }
    /* An embedded NUL inside the given length. */
    copy = strdup(tok);
    assert_non_null(copy);
    copy[len - 3] = '\0';
    expect_reject_at(copy, len, AT, LY_ERR_PARSE, JWTSVID_R_BASE64);
    free(copy);
    /* Padding is not allowed in JWS base64url (RFC 7515 §2). */
    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_appendf(&t, &err, "%s==", tok), 0);
    expect_reject((const char *)t.data, LY_ERR_PARSE, JWTSVID_R_BASE64);
    ly_buf_free(&t);
    /* Trailing whitespace is not trimmed for the caller. */
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_appendf(&t, &err, "%s\n", tok), 0);
    expect_reject((const char *)t.data, LY_ERR_PARSE, JWTSVID_R_BASE64);
    ly_buf_free(&t);
    free(tok);
}

static void test_header_json(void **state)
{
    char *tok;

    (void)state;
    /* Duplicate members: two parsers could read different algs or kids. */
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"alg\":\"ES256\"}", LY_ERR_PARSE,
                  JWTSVID_R_HEADER_JSON);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"kid\":\"k-p384\"}", LY_ERR_PARSE,
                  JWTSVID_R_HEADER_JSON);
    reject_header("[\"ES256\"]", LY_ERR_PARSE, JWTSVID_R_HEADER_JSON);
    reject_header("{\"alg\":\"ES256\"", LY_ERR_PARSE, JWTSVID_R_HEADER_JSON);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\"} x", LY_ERR_PARSE, JWTSVID_R_HEADER_JSON);
    /* Duplicate claim in the payload. */
    tok = make_token(HDR_EC,
                     "{\"sub\":\"" SUB "\",\"sub\":\"spiffe://example.org/x\",\"aud\":\"" AUD
                     "\",\"exp\":1800000600}",
                     S_EC256);
    expect_reject(tok, LY_ERR_PARSE, JWTSVID_R_PAYLOAD_JSON);
    free(tok);
    reject_payload("\"just a string\"", LY_ERR_PARSE, JWTSVID_R_PAYLOAD_JSON);
}

static void test_crit(void **state)
{
    (void)state;
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"crit\":[\"exp\"],\"exp\":1}",
                  LY_ERR_VERIFY, JWTSVID_R_CRIT);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"crit\":[]}", LY_ERR_VERIFY,
                  JWTSVID_R_CRIT);
}

static void test_oversized(void **state)
{
    size_t n = JWTSVID_MAX_LEN + 1;
    char *big = malloc(n + 1);
    char *tok = make_token(HDR_EC, payload_ok(), S_EC256);
    size_t tl = strlen(tok);

    (void)state;
    assert_non_null(big);
    /* A real token padded to the limit with base64url in the payload position. */
    memset(big, 'A', n);
    memcpy(big, tok, tl);
    big[n] = '\0';
    expect_reject_at(big, n, AT, LY_ERR_PARSE, JWTSVID_R_TOO_LONG);
    free(big);
    free(tok);
}

static void test_kid(void **state)
{
    (void)state;
    reject_header("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", LY_ERR_PARSE, JWTSVID_R_KID);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"\"}", LY_ERR_PARSE, JWTSVID_R_KID);
    reject_header("{\"alg\":\"ES256\",\"kid\":7}", LY_ERR_PARSE, JWTSVID_R_KID);
}

static void test_typ(void **state)
{
    char *tok;

    (void)state;
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"typ\":\"foo\"}", LY_ERR_PARSE,
                  JWTSVID_R_TYP);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"typ\":\"jwt\"}", LY_ERR_PARSE,
                  JWTSVID_R_TYP);
    reject_header("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"typ\":1}", LY_ERR_PARSE, JWTSVID_R_TYP);
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"k-ec256\",\"typ\":\"JOSE\"}", payload_ok(),
                     S_EC256);
    accept_token(tok);
    free(tok);
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"k-ec256\"}", payload_ok(), S_EC256);
    accept_token(tok);
    free(tok);
}

/* ---- key type and curve must fit the alg ---- */

static void test_wrong_curve(void **state)
{
    char *tok;

    (void)state;
    /* ES256 header, P-384 key behind the kid (signature made with that key over SHA-256). */
    tok = make_token_ex(HDR("ES256", "k-p384"), payload_ok(), S_P384, WC_HASH_TYPE_SHA256, -1);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH);
    free(tok);
    tok = make_token_ex(HDR("ES384", "k-p521"), payload_ok(), S_P521, WC_HASH_TYPE_SHA384, -1);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH);
    free(tok);
}

static void test_wrong_key_type(void **state)
{
    char *tok;

    (void)state;
    /* RS256 over an EC kid, ES256 over an RSA kid. */
    tok = make_token(HDR("RS256", "k-ec256"), payload_ok(), S_RSA_PKCS1);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH);
    free(tok);
    tok = make_token(HDR("ES256", "k-rsa"), payload_ok(), S_EC256);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH);
    free(tok);
    /* A PSS signature labelled RS256, and a PKCS#1 one labelled PS256. */
    tok = make_token(HDR("RS256", "k-rsa"), payload_ok(), S_RSA_PSS);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
    free(tok);
    tok = make_token(HDR("PS256", "k-rsa"), payload_ok(), S_RSA_PKCS1);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
    free(tok);
    /* RS384 header over an RS256 signature. */
    tok = make_token(HDR("RS384", "k-rsa"), payload_ok(), S_RSA_PKCS1);
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
    free(tok);
}

static void test_rsa_too_small(void **state)
{
    char *tok = make_token(HDR("RS256", "k-rsa1024"), payload_ok(), S_RSA1024);

    (void)state;
    expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED);
    free(tok);
}

/* ---- the other allowed algorithms, signed here with wolfCrypt ---- */

static void accept_alg(const char *alg, const char *kid, enum signer who, enum wc_HashType h,
                       enum jwtsvid_alg want)
{
    char hdr[128];
    char *tok;
    struct jwtsvid_result res;
    int flip;

    assert_true(snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
                         kid) < (int)sizeof(hdr));
    tok = make_token_ex(hdr, payload_ok(), who, h, -1);
    expect_ok_at(tok, AT, &res);
    assert_int_equal(res.alg, want);
    assert_string_equal(jwtsvid_alg_name(res.alg), alg);
    assert_string_equal(res.kid, kid);
    assert_string_equal(res.sub.str, SUB);
    jwtsvid_result_free(&res);
    free(tok);
    /* And one flipped bit breaks it. */
    for (flip = 5; flip < 2000; flip += 733) {
        tok = make_token_ex(hdr, payload_ok(), who, h, flip);
        expect_reject(tok, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE);
        free(tok);
    }
}

static void test_es384_es512(void **state)
{
    (void)state;
    accept_alg("ES384", "k-p384", S_P384, WC_HASH_TYPE_SHA384, JWTSVID_ALG_ES384);
    accept_alg("ES512", "k-p521", S_P521, WC_HASH_TYPE_SHA512, JWTSVID_ALG_ES512);
}

static void test_rs_ps(void **state)
{
    (void)state;
    accept_alg("RS256", "k-rsa", S_RSA_PKCS1, WC_HASH_TYPE_SHA256, JWTSVID_ALG_RS256);
    accept_alg("RS384", "k-rsa", S_RSA_PKCS1, WC_HASH_TYPE_SHA384, JWTSVID_ALG_RS384);
    accept_alg("RS512", "k-rsa", S_RSA_PKCS1, WC_HASH_TYPE_SHA512, JWTSVID_ALG_RS512);
    accept_alg("PS256", "k-rsa", S_RSA_PSS, WC_HASH_TYPE_SHA256, JWTSVID_ALG_PS256);
    accept_alg("PS384", "k-rsa", S_RSA_PSS, WC_HASH_TYPE_SHA384, JWTSVID_ALG_PS384);
    accept_alg("PS512", "k-rsa", S_RSA_PSS, WC_HASH_TYPE_SHA512, JWTSVID_ALG_PS512);
}

static void test_messages_name_no_secret(void **state)
{
    char *tok =
        make_token("{\"alg\":\"ES256\",\"kid\":\"k-'\\\\\\u0001zz\"}", payload_ok(), S_EC256);
    struct ly_error err = {0};

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate(tok, strlen(tok), AUD, g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, JWTSVID_R_UNKNOWN_KID);
    /* Peer text is escaped: no raw quote, backslash or control byte from the kid. */
    assert_non_null(strstr(err.msg, "k-\\x27\\x5c\\x01zz"));
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_one_audience),
        cmocka_unit_test(test_roundtrip_several_audiences),
        cmocka_unit_test(test_mint_refusals),
        cmocka_unit_test(test_validate_usage),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_hs256),
        cmocka_unit_test(test_alg_eddsa_and_others),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_tampered_signature),
        cmocka_unit_test(test_signature_wrong_length),
        cmocka_unit_test(test_missing_claims),
        cmocka_unit_test(test_bad_subject),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_no_bundle_for_trust_domain),
        cmocka_unit_test(test_other_trust_domain_key),
        cmocka_unit_test(test_json_serialization),
        cmocka_unit_test(test_part_count),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_header_json),
        cmocka_unit_test(test_crit),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_typ),
        cmocka_unit_test(test_wrong_curve),
        cmocka_unit_test(test_wrong_key_type),
        cmocka_unit_test(test_rsa_too_small),
        cmocka_unit_test(test_es384_es512),
        cmocka_unit_test(test_rs_ps),
        cmocka_unit_test(test_messages_name_no_secret),
    };

    return cmocka_run_group_tests_name("jwtsvid", tests, group_setup, group_teardown);
}
