/*
 * cli: the `lanyard` command line. Each command parses its own flags (getopt_long), calls the
 * library, and maps the library's error category to the documented exit code. It prints tokens
 * and certificates only where the user asked for them (stdout or named files), never in errors.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <pwd.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ly_b64.h"
#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "../common/ly_file.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/jwtsvid.h"
#include "../svid/key.h"
#include "../svid/spiffeid.h"
#include "../svid/x509svid.h"
#include "../trust-bundles/bundle.h"
#include "../trust-bundles/bundle_codec.h"
#include "admin.h"
#include "audit.h"
#include "ca.h"
#include "config.h"
#include "consent.h"
#include "server.h"
#include "entry.h"
#include "../federation/fetch.h"
#include "../federation/relation.h"
#include "fedsync.h"
#include "gateway.h"
#include "token.h"
#include "helper.h"
#include "log.h"
#include "store.h"

#define CLI_VERSION "0.1.0"
#define CLI_MAX_REPEAT 32 /* --dns / --audience / --bundle repeat limit */
#define CLI_JWT_LEEWAY 30 /* seconds of clock skew tolerated on exp/nbf */

struct cli {
    const char *data_dir;
    int data_explicit; /* --data or LANYARD_DATA given (overrides a config file's data_dir) */
    struct ly_error err;
};

typedef int (*cli_fn)(struct cli *c, int argc, char **argv);

struct cli_cmd {
    const char *group;
    const char *verb;
    const char *usage;
    const char *summary;
    cli_fn fn;
};

/* ---- output helpers ---------------------------------------------------------------------- */

static int fail(struct cli *c, const char *what)
{
    if (what != NULL) {
        fprintf(stderr, "lanyard: %s: %s\n", what, c->err.msg);
    } else {
        fprintf(stderr, "lanyard: %s\n", c->err.msg);
    }
    return ly_error_exit_code(c->err.code);
}

static int usage_error(const struct cli_cmd *cmd)
{
    fprintf(stderr,
            "lanyard: missing or unexpected arguments\nusage: lanyard %s\n"
            "(see 'lanyard %s %s --help')\n",
            cmd->usage, cmd->group, cmd->verb);
    return 2;
}

static int write_stdout(const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len) {
        fprintf(stderr, "lanyard: cannot write to standard output\n");
        return 3;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "lanyard: cannot write to standard output\n");
        return 3;
    }
    return 0;
}

/* ---- shared pieces ----------------------------------------------------------------------- */

static int parse_duration_opt(struct cli *c, const char *flag, const char *v, int64_t *out)
{
    if (ly_duration_parse(v, out, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        (void)ly_error_wrap(&c->err, "%s", flag);
        return -1;
    }
    return 0;
}

static int parse_at_opt(struct cli *c, const char *v, int64_t *out)
{
    if (ly_time_parse_rfc3339(v, out, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        (void)ly_error_wrap(&c->err, "--at");
        return -1;
    }
    return 0;
}

/* Parse a SPIFFE ID argument; on failure the error names the flag. */
static int parse_id_opt(struct cli *c, const char *flag, const char *v, struct spiffeid *id)
{
    if (spiffeid_parse(v, strlen(v), id, &c->err) < 0) {
        (void)ly_error_wrap(&c->err, "%s", flag);
        return -1;
    }
    return 0;
}

/* A bundle file with nothing but white space is an operator mistake, never a valid bundle. */
static int reject_blank_bundle(struct cli *c, const struct ly_buf *file, const char *path)
{
    size_t i;

    for (i = 0; i < file->len; i++) {
        uint8_t ch = file->data[i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            return 0;
        }
    }
    return ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                         "bundle file %s is empty: a trust bundle needs at least one authority",
                         path);
}

/* A workload's ID: valid and with a path (X509-4; a bare trust domain names the CA itself). */
static int parse_workload_id(struct cli *c, const char *v, struct spiffeid *id)
{
    if (parse_id_opt(c, "--id", v, id) < 0) {
        return -1;
    }
    if (spiffeid_is_root(id)) {
        ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                      "--id %s names the trust domain itself; a workload's SPIFFE ID needs a "
                      "path such as %s/mcp/server",
                      id->str, id->str);
        return -1;
    }
    return 0;
}

/*
 * Build a bundle set from repeated --bundle TD=FILE (PEM or SPIFFE JSON) or, when none is
 * given, from the local data directory's CA.
 */
static int load_bundle_set(struct cli *c, char **specs, size_t n, int64_t now,
                           struct bundle_set **out)
{
    struct bundle_set *set = NULL;
    size_t i;
    int rc;

    *out = NULL;
    rc = bundle_set_new(&set, &c->err);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        struct ca_state *ca = NULL;
        struct bundle *b = NULL;
        rc = ca_open(c->data_dir, &ca, &c->err);
        if (rc == 0) {
            rc = ca_bundle(ca, now, &b, &c->err);
        }
        ca_close(ca);
        if (rc == 0) {
            rc = bundle_set_put(set, b, &c->err);
        }
        if (rc < 0) {
            (void)ly_error_wrap(&c->err, "loading the local trust bundle (or pass --bundle)");
            goto fail;
        }
        *out = set;
        return 0;
    }
    for (i = 0; i < n; i++) {
        char *eq = strchr(specs[i], '=');
        char td[SPIFFEID_TD_MAX_LEN + 1];
        struct ly_buf file;
        struct bundle *b = NULL;

        if (eq == NULL || eq == specs[i] || eq[1] == '\0') {
            rc = ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                               "--bundle '%.64s' is not of the form TRUST_DOMAIN=FILE", specs[i]);
            goto fail;
        }
        *eq = '\0';
        rc = spiffeid_parse_trust_domain(specs[i], strlen(specs[i]), td, sizeof(td), &c->err);
        if (rc < 0) {
            c->err.code = LY_ERR_USAGE;
            (void)ly_error_wrap(&c->err, "--bundle");
            goto fail;
        }
        if (bundle_set_get(set, td) != NULL) {
            rc = ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                               "--bundle given twice for trust domain '%s'", td);
            goto fail;
        }
        rc = ly_file_read(eq + 1, LY_FILE_MAX_DEFAULT, 0, &file, &c->err);
        if (rc < 0) {
            goto fail;
        }
        rc = reject_blank_bundle(c, &file, eq + 1);
        if (rc == 0) {
            rc = bundle_codec_parse_auto(td, file.data, file.len, &b, &c->err);
            if (rc < 0) {
                (void)ly_error_wrap(&c->err, "bundle file %s", eq + 1);
            }
        }
        ly_buf_free(&file);
        if (rc < 0) {
            goto fail;
        }
        rc = bundle_set_put(set, b, &c->err);
        if (rc < 0) {
            goto fail;
        }
    }
    *out = set;
    return 0;
fail:
    bundle_set_free(set);
    return rc;
}

/*
 * When a lanyard server runs on this data directory, changes go through its admin socket so they
 * take effect at once (open Workload API streams are updated). Returns 1 and the result when the
 * server answered, 0 when no server runs (the caller works on the store directly), or a negative
 * error (the server refused: its message is in c->err).
 */
static int try_admin(struct cli *c, const char *op, const json_t *args, json_t **result)
{
    char path[4096];
    const char *env = getenv("LANYARD_ADMIN_SOCKET");
    struct ly_error probe;
    int n;

    *result = NULL;
    n = (env != NULL && env[0] != '\0') ? snprintf(path, sizeof(path), "%s", env)
                                        : snprintf(path, sizeof(path), "%s/admin.sock",
                                                   c->data_dir);
    if (n < 0 || (size_t)n >= sizeof(path) || !ly_file_exists(path)) {
        return 0;
    }
    ly_error_clear(&probe);
    if (admin_call(path, op, args, 15000, result, &probe) == 0) {
        return 1;
    }
    if (probe.code == LY_ERR_IO && probe.sys_errno == ECONNREFUSED) {
        return 0; /* a stale socket from a server that is gone */
    }
    return ly_error_setx(&c->err, probe.code, probe.reason, "%s", probe.msg);
}

/* ---- id ---------------------------------------------------------------------------------- */

static int cmd_id_parse(struct cli *c, int argc, char **argv)
{
    struct spiffeid id;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    (void)c;

    if (argc != 2) {
        return -2;
    }
    if (spiffeid_parse(argv[1], strlen(argv[1]), &id, &c->err) < 0) {
        return fail(c, "invalid SPIFFE ID");
    }
    if (spiffeid_td_copy(&id, td, sizeof(td)) < 0) {
        return 3;
    }
    printf("trust_domain: %s\npath: %s\n", td, spiffeid_path(&id));
    return write_stdout(NULL, 0);
}

/* ---- ca ---------------------------------------------------------------------------------- */

static int cmd_ca_init(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {"key-type", required_argument, NULL, 'k'},
        {"ca-ttl", required_argument, NULL, 'T'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct ca_init_params p = {NULL, SVID_KEY_EC_P256, CA_DEFAULT_TTL};
    char td[SPIFFEID_TD_MAX_LEN + 1];
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            p.trust_domain = optarg;
            break;
        case 'k':
            if (svid_key_type_parse(optarg, &p.key_type, &c->err) < 0) {
                return fail(c, "--key-type");
            }
            break;
        case 'T':
            if (parse_duration_opt(c, "--ca-ttl", optarg, &p.ttl) < 0) {
                return fail(c, NULL);
            }
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc || p.trust_domain == NULL) {
        return -2;
    }
    /* A bare name only: a SPIFFE ID here is almost certainly a mistake worth naming. */
    if (strncmp(p.trust_domain, "spiffe://", 9) == 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--trust-domain takes a bare name such as example.org, not a SPIFFE ID");
        return fail(c, NULL);
    }
    if (spiffeid_parse_trust_domain(p.trust_domain, strlen(p.trust_domain), td, sizeof(td),
                                    &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, "--trust-domain");
    }
    p.trust_domain = td;
    if (ca_init(c->data_dir, &p, &c->err) < 0) {
        return fail(c, "ca init");
    }
    printf("initialised trust domain %s in %s (CA key %s, CA lifetime %lld s)\n", td,
           c->data_dir, svid_key_type_name(p.key_type), (long long)p.ttl);
    return write_stdout(NULL, 0);
}

/*
 * `ca rotate`: the next CA takes over signing now; the old one stays in the bundle until the
 * SVIDs it signed have expired. Prints the new CA's fingerprint and the bundle sequence. A
 * running server does it in two phases (publish, then sign after SERVER_CA_PUBLISH_DELAY in
 * server.c) and answers after the second; without one, the store is rotated in one step: no
 * Workload API client is connected to receive the bundle early, and every client that connects
 * later gets the bundle and its SVID together.
 */
static int cmd_ca_rotate(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct ca_state *ca = NULL;
    struct bundle *b = NULL;
    struct x509svid_info info;
    const uint8_t *der;
    size_t len = 0;
    uint64_t seq = 0;
    char until[32];
    int64_t now = ly_time_now();
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    {
        json_t *res = NULL;
        const json_t *at;

        rc = try_admin(c, "ca.rotate", NULL, &res);
        at = rc == 1 ? json_object_get(res, "takes_over_at") : NULL;
        if (json_is_integer(at)) {
            /* A server with a bundle endpoint lets the next CA sign only a refresh hint after
             * publishing it (federated domains fetch it first): the rotation is under way. */
            rc = ly_time_format_rfc3339((int64_t)json_integer_value(at), until, sizeof(until),
                                        &c->err);
            json_decref(res);
            if (rc < 0) {
                return fail(c, "ca rotate");
            }
            printf("rotating: the next CA is in the published bundle now and takes over at %s\n"
                   "(one bundle refresh hint later, so federated trust domains hold it first)\n",
                   until);
            return write_stdout(NULL, 0);
        }
        json_decref(res);
    }
    if (rc < 0) {
        return fail(c, "ca rotate");
    }
    if (rc == 1) {
        rc = ca_open(c->data_dir, &ca, &c->err); /* the server rotated; report what it did */
    } else {
        rc = ca_open(c->data_dir, &ca, &c->err);
        if (rc == 0) {
            rc = ca_rotate_now(ca, now, &c->err);
        }
    }
    if (rc == 0) {
        rc = ca_bundle(ca, now, &b, &c->err);
    }
    /* The bundle lists the newest CA first: the one that signs now. */
    der = rc == 0 ? bundle_x509_authority(b, 0, &len) : NULL;
    if (rc == 0 && der == NULL) {
        rc = ly_error_setx(&c->err, LY_ERR_INTERNAL, 0, "the bundle lists no X.509 authority");
    }
    if (rc == 0) {
        rc = x509svid_cert_info(der, len, &info, &c->err);
    }
    if (rc == 0) {
        rc = ly_time_format_rfc3339(info.not_after, until, sizeof(until), &c->err);
    }
    if (rc == 0) {
        (void)bundle_get_sequence(b, &seq); /* ca_bundle always sets it */
        printf("rotated: CA sha256:%s signs now (valid until %s)\n"
               "bundle: sequence %llu, %zu X.509 authorities (retired CAs stay until the SVIDs "
               "they signed expire)\n",
               info.sha256_hex, until, (unsigned long long)seq, bundle_x509_count(b));
    }
    bundle_free(b);
    ca_close(ca);
    if (rc < 0) {
        return fail(c, "ca rotate");
    }
    return write_stdout(NULL, 0);
}

/* ---- svid -------------------------------------------------------------------------------- */


static int cmd_svid_mint(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"ttl", required_argument, NULL, 'T'},
        {"csr", required_argument, NULL, 'c'},
        {"dns", required_argument, NULL, 'n'},
        {"out-cert", required_argument, NULL, 'o'},
        {"out-key", required_argument, NULL, 'k'},
        {"key-type", required_argument, NULL, 'K'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *id_arg = NULL;
    const char *csr_path = NULL;
    const char *out_cert = NULL;
    const char *out_key = NULL;
    const char *dns[CLI_MAX_REPEAT];
    size_t n_dns = 0;
    int64_t ttl = CA_DEFAULT_SVID_TTL;
    enum svid_key_type kt = SVID_KEY_EC_P256;
    struct spiffeid id;
    struct ca_state *ca = NULL;
    struct svid_key *key = NULL;
    struct ly_buf spki;
    struct ly_buf cert;
    struct ly_buf pem;
    struct ly_buf keypem;
    struct x509svid_info info;
    char na[32];
    int rc = 3;
    int o;

    ly_buf_init(&spki, 0);
    ly_buf_init(&cert, 0);
    ly_buf_init(&pem, 1024 * 1024);
    ly_buf_init_secret(&keypem, 0);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            id_arg = optarg;
            break;
        case 'T':
            if (parse_duration_opt(c, "--ttl", optarg, &ttl) < 0) {
                return fail(c, NULL);
            }
            break;
        case 'c':
            csr_path = optarg;
            break;
        case 'n':
            if (n_dns == CLI_MAX_REPEAT) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "at most %d --dns names",
                              CLI_MAX_REPEAT);
                return fail(c, NULL);
            }
            dns[n_dns++] = optarg;
            break;
        case 'o':
            out_cert = optarg;
            break;
        case 'k':
            out_key = optarg;
            break;
        case 'K':
            if (svid_key_type_parse(optarg, &kt, &c->err) < 0) {
                return fail(c, "--key-type");
            }
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc || id_arg == NULL || out_cert == NULL) {
        return -2;
    }
    if (csr_path == NULL && out_key == NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--out-key is required unless --csr supplies the public key");
        return fail(c, NULL);
    }
    if (csr_path != NULL && out_key != NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--out-key cannot be used with --csr: the key stays with the CSR's owner");
        return fail(c, NULL);
    }
    if (parse_workload_id(c, id_arg, &id) < 0) {
        return fail(c, NULL);
    }
    if (ttl < CA_MIN_SVID_TTL || ttl > CA_MAX_SVID_TTL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--ttl must be between %d s and %d s",
                      CA_MIN_SVID_TTL, CA_MAX_SVID_TTL);
        return fail(c, NULL);
    }
    if (ca_open(c->data_dir, &ca, &c->err) < 0) {
        return fail(c, NULL);
    }
    if (csr_path != NULL) {
        struct ly_buf csr;
        if (ly_file_read(csr_path, LY_FILE_MAX_DEFAULT, 0, &csr, &c->err) < 0) {
            goto out_fail;
        }
        rc = x509svid_csr_public_key(csr.data, csr.len, &spki, &c->err);
        ly_buf_free(&csr);
        if (rc < 0) {
            (void)ly_error_wrap(&c->err, "CSR %s", csr_path);
            goto out_fail;
        }
    } else {
        if (svid_key_generate(kt, &key, &c->err) < 0 ||
            svid_key_public_der(key, &spki, &c->err) < 0 ||
            svid_key_to_pkcs8_pem(key, &keypem, &c->err) < 0) {
            goto out_fail;
        }
    }
    if (ca_mint_x509(ca, &id, spki.data, spki.len, ttl, dns, n_dns, &cert, &c->err) < 0 ||
        x509svid_cert_info(cert.data, cert.len, &info, &c->err) < 0 ||
        ly_pem_append(&pem, "CERTIFICATE", cert.data, cert.len, &c->err) < 0) {
        goto out_fail;
    }
    /* Key first: a certificate on disk without its key would be useless to a reader. */
    if (out_key != NULL &&
        ly_file_write_atomic(out_key, keypem.data, keypem.len, 0600, 0, &c->err) < 0) {
        goto out_fail;
    }
    if (ly_file_write_atomic(out_cert, pem.data, pem.len, 0644, 0, &c->err) < 0) {
        goto out_fail;
    }
    if (ly_time_format_rfc3339(info.not_after, na, sizeof(na), &c->err) < 0) {
        goto out_fail;
    }
    printf("%s\nserial: %s\nnot_after: %s\nsha256: %s\ncert: %s\n", id.str, info.serial_hex, na,
           info.sha256_hex, out_cert);
    if (out_key != NULL) {
        printf("key: %s\n", out_key);
    }
    rc = write_stdout(NULL, 0);
    goto out;
out_fail:
    rc = fail(c, "svid mint");
out:
    ly_buf_free(&spki);
    ly_buf_free(&cert);
    ly_buf_free(&pem);
    ly_buf_free(&keypem);
    svid_key_free(key);
    ca_close(ca);
    return rc;
}

/* The options shared by `svid verify` and `jwt verify`. */
struct verify_opts {
    char *specs[CLI_MAX_REPEAT]; /* --bundle TD=FILE, borrowed from argv */
    size_t n_specs;
    int64_t at;                  /* --at, default now */
    const char *audience;        /* --audience (jwt verify only) */
};

/*
 * Parse [--bundle TD=FILE]... [--at RFC3339] [--data DIR] (and --audience AUD when
 * with_audience) followed by exactly one positional argument, left at argv[optind].
 * Returns 0, -2 for a usage error, or an exit code after printing a specific error.
 */
static int parse_verify_opts(struct cli *c, int argc, char **argv, int with_audience,
                             struct verify_opts *v)
{
    static const struct option opts[] = {
        {"bundle", required_argument, NULL, 'b'},
        {"audience", required_argument, NULL, 'A'},
        {"at", required_argument, NULL, 'a'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int o;

    v->n_specs = 0;
    v->at = ly_time_now();
    v->audience = NULL;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'b':
            if (v->n_specs == CLI_MAX_REPEAT) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "at most %d --bundle options",
                              CLI_MAX_REPEAT);
                return fail(c, NULL);
            }
            v->specs[v->n_specs++] = optarg;
            break;
        case 'A':
            if (!with_audience) {
                return -2;
            }
            if (v->audience != NULL) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                              "give exactly one --audience: the one this verifier expects");
                return fail(c, NULL);
            }
            v->audience = optarg;
            break;
        case 'a':
            if (parse_at_opt(c, optarg, &v->at) < 0) {
                return fail(c, NULL);
            }
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc - 1 || (with_audience && v->audience == NULL)) {
        return -2;
    }
    return 0;
}

static int cmd_svid_verify(struct cli *c, int argc, char **argv)
{
    struct verify_opts v;
    struct bundle_set *set = NULL;
    struct x509svid_chain *chain = NULL;
    struct ly_buf file;
    struct spiffeid id;
    int rc = parse_verify_opts(c, argc, argv, 0, &v);

    if (rc != 0) {
        return rc;
    }
    if (load_bundle_set(c, v.specs, v.n_specs, v.at, &set) < 0) {
        return fail(c, NULL);
    }
    rc = ly_file_read(argv[optind], LY_FILE_MAX_DEFAULT, 0, &file, &c->err);
    if (rc == 0) {
        rc = x509svid_chain_parse(file.data, file.len, &chain, &c->err);
        ly_buf_free(&file);
        if (rc < 0) {
            (void)ly_error_wrap(&c->err, "%s", argv[optind]);
        }
    }
    if (rc == 0) {
        rc = x509svid_verify(chain, set, v.at, &id, &c->err);
    }
    x509svid_chain_free(chain);
    bundle_set_free(set);
    if (rc < 0) {
        return fail(c, c->err.code == LY_ERR_VERIFY ? "rejected" : NULL);
    }
    printf("%s\n", id.str);
    return write_stdout(NULL, 0);
}

/* ---- bundle ------------------------------------------------------------------------------ */

/* Defined with the entry and federation commands below. */
static int open_entry_store(struct cli *c, struct store **st, char *td, size_t tdsz);
static int parse_td_opt(struct cli *c, const char *flag, const char *v, char *td, size_t tdsz);
static int show_federated_bundle(struct cli *c, struct store *st, const char *td,
                                 const char *format);

static int cmd_bundle_show(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"trust-domain", required_argument, NULL, 't'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "spiffe";
    const char *td_arg = NULL;
    struct ca_state *ca = NULL;
    struct bundle *b = NULL;
    struct ly_buf out;
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
            format = optarg;
            break;
        case 't':
            td_arg = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (strcmp(format, "spiffe") != 0 && strcmp(format, "pem") != 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--format must be spiffe or pem, not '%.32s'",
                      format);
        return fail(c, NULL);
    }
    if (td_arg != NULL) {
        /* A foreign trust domain: its federated bundle; the own one: as without the option. */
        char td[SPIFFEID_TD_MAX_LEN + 1];
        char own[SPIFFEID_TD_MAX_LEN + 1];
        struct store *st = NULL;
        if (parse_td_opt(c, "--trust-domain", td_arg, td, sizeof(td)) < 0 ||
            open_entry_store(c, &st, own, sizeof(own)) < 0) {
            return fail(c, "bundle show");
        }
        if (strcmp(td, own) != 0) {
            rc = show_federated_bundle(c, st, td, format);
            store_close(st);
            return rc;
        }
        store_close(st);
    }
    ly_buf_init(&out, 0);
    rc = ca_open(c->data_dir, &ca, &c->err);
    if (rc == 0) {
        rc = ca_bundle(ca, ly_time_now(), &b, &c->err);
    }
    if (rc == 0) {
        rc = strcmp(format, "pem") == 0 ? bundle_codec_write_pem(b, &out, &c->err)
                                        : bundle_codec_write_json(b, &out, &c->err);
    }
    bundle_free(b);
    ca_close(ca);
    if (rc < 0) {
        ly_buf_free(&out);
        return fail(c, "bundle show");
    }
    rc = write_stdout(out.data, out.len);
    if (rc == 0 && out.len > 0 && out.data[out.len - 1] != '\n') {
        rc = write_stdout("\n", 1);
    }
    ly_buf_free(&out);
    return rc;
}

static int cmd_bundle_parse(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *td_arg = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct bundle *b = NULL;
    struct ly_buf file;
    struct ly_buf out;
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            td_arg = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc - 1 || td_arg == NULL) {
        return -2;
    }
    if (spiffeid_parse_trust_domain(td_arg, strlen(td_arg), td, sizeof(td), &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, "--trust-domain");
    }
    if (ly_file_read(argv[optind], LY_FILE_MAX_DEFAULT, 0, &file, &c->err) < 0) {
        return fail(c, NULL);
    }
    rc = reject_blank_bundle(c, &file, argv[optind]);
    if (rc == 0) {
        rc = bundle_codec_parse_auto(td, file.data, file.len, &b, &c->err);
    }
    ly_buf_free(&file);
    if (rc < 0) {
        return fail(c, argv[optind]);
    }
    rc = bundle_codec_summary_json(b, &out, &c->err);
    bundle_free(b);
    if (rc < 0) {
        return fail(c, NULL);
    }
    rc = write_stdout(out.data, out.len);
    if (rc == 0 && (out.len == 0 || out.data[out.len - 1] != '\n')) {
        rc = write_stdout("\n", 1);
    }
    ly_buf_free(&out);
    return rc;
}

/* ---- jwt --------------------------------------------------------------------------------- */

static int cmd_jwt_mint(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"audience", required_argument, NULL, 'a'},
        {"ttl", required_argument, NULL, 'T'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *id_arg = NULL;
    const char *aud[CLI_MAX_REPEAT];
    size_t n_aud = 0;
    int64_t ttl = CA_DEFAULT_JWT_TTL;
    struct spiffeid id;
    struct ca_state *ca = NULL;
    struct ly_buf tok;
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            id_arg = optarg;
            break;
        case 'a':
            if (n_aud == CLI_MAX_REPEAT) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "at most %d --audience values",
                              CLI_MAX_REPEAT);
                return fail(c, NULL);
            }
            if (optarg[0] == '\0') {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--audience must not be empty");
                return fail(c, NULL);
            }
            aud[n_aud++] = optarg;
            break;
        case 'T':
            if (parse_duration_opt(c, "--ttl", optarg, &ttl) < 0) {
                return fail(c, NULL);
            }
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc || id_arg == NULL || n_aud == 0) {
        return -2;
    }
    if (parse_workload_id(c, id_arg, &id) < 0) {
        return fail(c, NULL);
    }
    if (ttl < CA_MIN_SVID_TTL || ttl > CA_MAX_SVID_TTL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--ttl must be between %d s and %d s",
                      CA_MIN_SVID_TTL, CA_MAX_SVID_TTL);
        return fail(c, NULL);
    }
    if (ca_open(c->data_dir, &ca, &c->err) < 0) {
        return fail(c, NULL);
    }
    rc = ca_mint_jwt(ca, &id, aud, n_aud, ttl, &tok, &c->err);
    ca_close(ca);
    if (rc < 0) {
        return fail(c, "jwt mint");
    }
    rc = write_stdout(tok.data, tok.len);
    if (rc == 0) {
        rc = write_stdout("\n", 1);
    }
    ly_buf_free(&tok);
    return rc;
}

/* Read a token argument: "-" is stdin, an existing regular file is read, else the text itself. */
static int read_token_arg(struct cli *c, const char *arg, struct ly_buf *tok)
{
    size_t end;

    if (strcmp(arg, "-") == 0 || ly_file_exists(arg)) {
        int rc;
        if (strcmp(arg, "-") == 0) {
            rc = ly_file_read("/dev/stdin", 64 * 1024, 1, tok, &c->err);
            if (rc < 0) {
                /* stdin may be a pipe: read it in bounded chunks instead. */
                char chunk[4096];
                size_t n;
                ly_error_clear(&c->err);
                ly_buf_init_secret(tok, 64 * 1024);
                rc = ly_buf_append(tok, "", 0, &c->err);
                while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
                    rc = ly_buf_append(tok, chunk, n, &c->err);
                }
                ly_wipe(chunk, sizeof(chunk));
            }
        } else {
            rc = ly_file_read(arg, 64 * 1024, 1, tok, &c->err);
        }
        if (rc < 0) {
            return rc;
        }
    } else {
        ly_buf_init_secret(tok, 64 * 1024);
        if (ly_buf_append_str(tok, arg, &c->err) < 0) {
            return c->err.code;
        }
    }
    /* Trailing newlines and spaces from files are not part of the token. */
    end = tok->len;
    while (end > 0 && (tok->data[end - 1] == '\n' || tok->data[end - 1] == '\r' ||
                       tok->data[end - 1] == ' ' || tok->data[end - 1] == '\t')) {
        end--;
    }
    tok->len = end;
    tok->data[end] = '\0';
    return 0;
}

static int cmd_jwt_verify(struct cli *c, int argc, char **argv)
{
    struct verify_opts v;
    struct bundle_set *set = NULL;
    struct jwtsvid_result res;
    struct ly_buf tok;
    const char *aud;
    int rc = parse_verify_opts(c, argc, argv, 1, &v);

    if (rc != 0) {
        return rc;
    }
    aud = v.audience;
    if (aud[0] == '\0') {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--audience must not be empty");
        return fail(c, NULL);
    }
    if (read_token_arg(c, argv[optind], &tok) < 0) {
        return fail(c, NULL);
    }
    if (load_bundle_set(c, v.specs, v.n_specs, v.at, &set) < 0) {
        ly_buf_free(&tok);
        return fail(c, NULL);
    }
    rc = jwtsvid_validate((const char *)tok.data, tok.len, aud, set, v.at, CLI_JWT_LEEWAY, &res,
                          &c->err);
    ly_buf_free(&tok);
    bundle_set_free(set);
    if (rc < 0) {
        return fail(c, c->err.code == LY_ERR_VERIFY || c->err.code == LY_ERR_PARSE ? "rejected"
                                                                                 : NULL);
    }
    printf("%s\n", res.sub.str);
    jwtsvid_result_free(&res);
    return write_stdout(NULL, 0);
}

/* Options of commands that take only [--json] [--data DIR]: 0, or -2 for a usage error. */
static int json_data_opts(struct cli *c, int argc, char **argv, int *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int o;

    *json = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'j':
            *json = 1;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    return optind == argc ? 0 : -2;
}

/* ---- entry ------------------------------------------------------------------------------- */

/*
 * Open the data directory's store for entry commands without creating anything: a missing
 * directory or database is a usage error pointing at `ca init`. td receives the trust domain.
 */
static int open_entry_store(struct cli *c, struct store **st, char *td, size_t tdsz)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/lanyard.db", c->data_dir);

    *st = NULL;
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return ly_error_setx(&c->err, LY_ERR_USAGE, 0, "data directory path too long");
    }
    if (!ly_file_exists(c->data_dir) || !ly_file_exists(path)) {
        return ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                             "no initialised data directory at %s; run 'lanyard ca init "
                             "--trust-domain TD' first (or pass --data DIR)",
                             c->data_dir);
    }
    if (store_open(path, st, &c->err) < 0) {
        return c->err.code;
    }
    if (store_meta_get(*st, "trust_domain", td, tdsz, &c->err) < 0) {
        store_close(*st);
        *st = NULL;
        ly_error_clear(&c->err);
        return ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                             "%s has no trust domain yet; run 'lanyard ca init --trust-domain TD'",
                             c->data_dir);
    }
    return 0;
}

/* Print a buffer (and free it); a missing final newline is added. */
static int print_buf(struct ly_buf *out)
{
    int rc = write_stdout(out->data, out->len);

    if (rc == 0 && out->len > 0 && out->data[out->len - 1] != '\n') {
        rc = write_stdout("\n", 1);
    }
    ly_buf_free(out);
    return rc;
}

/* The admin request for entry.create, from an entry parsed on the command line. */
static json_t *entry_admin_args(const struct entry *e)
{
    json_t *sels = json_array();
    json_t *dns = json_array();
    json_t *fed = json_array();
    json_t *args;
    size_t i;

    for (i = 0; sels != NULL && i < e->n_selectors; i++) {
        struct ly_buf b;
        struct ly_error err;
        ly_error_clear(&err);
        if (entry_selector_format(&e->selectors[i], &b, &err) < 0 ||
            json_array_append_new(sels, json_string((const char *)b.data)) != 0) {
            ly_buf_free(&b);
            json_decref(sels);
            sels = NULL;
            break;
        }
        ly_buf_free(&b);
    }
    for (i = 0; dns != NULL && i < e->n_dns; i++) {
        if (json_array_append_new(dns, json_string(e->dns[i])) != 0) {
            json_decref(dns);
            dns = NULL;
        }
    }
    if (sels == NULL || dns == NULL) {
        json_decref(sels);
        json_decref(dns);
        json_decref(fed);
        return NULL;
    }
    for (i = 0; fed != NULL && i < e->n_federates_with; i++) {
        if (json_array_append_new(fed, json_string(e->federates_with[i])) != 0) {
            json_decref(fed);
            fed = NULL;
        }
    }
    if (fed == NULL) {
        json_decref(sels);
        json_decref(dns);
        return NULL;
    }
    args = json_pack("{s:s, s:o, s:o, s:I, s:o}", "spiffe_id", e->spiffe_id, "selectors", sels,
                     "dns", dns, "ttl", (json_int_t)e->ttl, "federates_with", fed);
    if (args != NULL && e->hint != NULL &&
        json_object_set_new(args, "hint", json_string(e->hint)) != 0) {
        json_decref(args);
        return NULL;
    }
    return args;
}

static int cmd_entry_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"selector", required_argument, NULL, 's'},
        {"ttl", required_argument, NULL, 'T'},
        {"dns", required_argument, NULL, 'n'},
        {"hint", required_argument, NULL, 'H'},
        {"federates-with", required_argument, NULL, 'F'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct entry *e = entry_new();
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    const char *id_arg = NULL;
    int64_t ttl;
    int rc = -2;
    int o;

    if (e == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        return fail(c, NULL);
    }
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            id_arg = optarg;
            break;
        case 's':
            if (entry_add_selector(e, optarg, strlen(optarg), &c->err) < 0) {
                (void)ly_error_wrap(&c->err, "--selector");
                goto out_fail;
            }
            break;
        case 'T':
            if (parse_duration_opt(c, "--ttl", optarg, &ttl) < 0) {
                goto out_fail;
            }
            if (entry_set_ttl(e, ttl, &c->err) < 0) {
                (void)ly_error_wrap(&c->err, "--ttl");
                goto out_fail;
            }
            break;
        case 'n':
            if (entry_add_dns(e, optarg, strlen(optarg), &c->err) < 0) {
                (void)ly_error_wrap(&c->err, "--dns");
                goto out_fail;
            }
            break;
        case 'H':
            if (entry_set_hint(e, optarg, strlen(optarg), &c->err) < 0) {
                (void)ly_error_wrap(&c->err, "--hint");
                goto out_fail;
            }
            break;
        case 'F':
            if (entry_add_federates_with(e, optarg, strlen(optarg), &c->err) < 0) {
                (void)ly_error_wrap(&c->err, "--federates-with");
                goto out_fail;
            }
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            goto out;
        }
    }
    if (optind != argc || id_arg == NULL) {
        goto out;
    }
    if (e->n_selectors == 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, ENTRY_R_NO_SELECTORS,
                      "at least one --selector is required (e.g. --selector unix:uid:1000)");
        goto out_fail;
    }
    if (entry_set_spiffe_id(e, id_arg, strlen(id_arg), &c->err) < 0) {
        (void)ly_error_wrap(&c->err, "--id");
        goto out_fail;
    }
    if (e->n_federates_with > 0) {
        /*
         * Checked here too, not only by entry_validate, so that the refusal is the same whether
         * or not a server runs. A trust domain without a relationship yet is fine: one may be
         * added later, and until then the workload simply receives no bundle for it.
         */
        size_t i;
        if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
            goto out_fail;
        }
        store_close(st);
        st = NULL;
        for (i = 0; i < e->n_federates_with; i++) {
            if (strcmp(e->federates_with[i], td) == 0) {
                ly_error_setx(&c->err, LY_ERR_USAGE, ENTRY_R_FEDERATES,
                              "--federates-with %s is this data directory's own trust domain; "
                              "its bundle is always sent",
                              td);
                goto out_fail;
            }
        }
    }
    {
        json_t *args = entry_admin_args(e);
        json_t *res = NULL;
        int via = args != NULL ? try_admin(c, "entry.create", args, &res)
                               : ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        json_decref(args);
        if (via < 0) {
            json_decref(res);
            goto out_fail;
        }
        if (via == 1) {
            const json_t *idv = json_object_get(res, "id");
            const json_t *fedv = json_object_get(res, "federates_with");
            if (e->n_federates_with > 0 &&
                (!json_is_array(fedv) || json_array_size(fedv) != e->n_federates_with)) {
                /* A server that predates --federates-with would drop it without a word. */
                ly_error_setx(&c->err, LY_ERR_INTERNAL, 0,
                              "the running server created entry %s but did not record "
                              "--federates-with; delete it (lanyard entry delete %s) and "
                              "restart the server with this version",
                              json_is_string(idv) ? json_string_value(idv) : "?",
                              json_is_string(idv) ? json_string_value(idv) : "ID");
                json_decref(res);
                goto out_fail;
            }
            printf("%s\n", json_is_string(idv) ? json_string_value(idv) : "");
            json_decref(res);
            rc = write_stdout(NULL, 0);
            goto out;
        }
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0 || entry_validate(e, td, &c->err) < 0 ||
        store_entry_add(st, e, &c->err) < 0) {
        goto out_fail;
    }
    printf("%s\n", e->id);
    rc = write_stdout(NULL, 0);
    goto out;
out_fail:
    rc = fail(c, "entry create");
out:
    store_close(st);
    entry_free(e);
    return rc;
}

static int cmd_entry_list(struct cli *c, int argc, char **argv)
{
    struct store *st = NULL;
    struct entry **list = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_buf out;
    size_t n = 0;
    size_t i;
    size_t k;
    int json = 0;
    int rc;

    if (json_data_opts(c, argc, argv, &json) < 0) {
        return -2;
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        return fail(c, "entry list");
    }
    rc = store_entry_list(st, &list, &n, &c->err);
    store_close(st);
    if (rc < 0) {
        return fail(c, "entry list");
    }
    ly_buf_init(&out, (size_t)1 << 30);
    rc = json ? ly_buf_append_str(&out, "[", &c->err) : 0;
    for (i = 0; rc == 0 && i < n; i++) {
        const struct entry *e = list[i];
        if (json) {
            rc = ly_buf_append_str(&out, i == 0 ? "\n" : ",\n", &c->err);
            if (rc == 0) {
                rc = entry_to_json(e, &out, &c->err);
            }
            continue;
        }
        /* One line per entry: id, SPIFFE ID, TTL, selectors, federated trust domains; odd bytes
         * escaped. */
        rc = ly_buf_appendf(&out, &c->err, "%s %s ttl=%lld", e->id, e->spiffe_id,
                            (long long)e->ttl);
        for (k = 0; rc == 0 && k < e->n_selectors; k++) {
            char x[1024];
            const char *v = e->selectors[k].value;
            rc = ly_buf_appendf(&out, &c->err, " unix:%s:%s",
                                entry_sel_type_name(e->selectors[k].type),
                                ly_text_escape(v, strlen(v), 240, x, sizeof(x)));
        }
        for (k = 0; rc == 0 && k < e->n_federates_with; k++) {
            rc = ly_buf_appendf(&out, &c->err, " federates_with=%s", e->federates_with[k]);
        }
        if (rc == 0) {
            rc = ly_buf_append_str(&out, "\n", &c->err);
        }
    }
    if (rc == 0 && json) {
        rc = ly_buf_append_str(&out, n > 0 ? "\n]\n" : "]\n", &c->err);
    }
    entry_list_free(list, n);
    if (rc < 0) {
        ly_buf_free(&out);
        return fail(c, "entry list");
    }
    return print_buf(&out);
}

/* Parse `entry show|delete ID [--json] [--data DIR]`. */
static int entry_id_args(struct cli *c, int argc, char **argv, int allow_json, int *json,
                         const char **id)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int o;

    *json = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'j':
            if (!allow_json) {
                return -2;
            }
            *json = 1;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc - 1) {
        return -2;
    }
    *id = argv[optind];
    return 0;
}

static int cmd_entry_show(struct cli *c, int argc, char **argv)
{
    struct store *st = NULL;
    struct entry *e = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_buf out;
    const char *id;
    int json;
    int rc = entry_id_args(c, argc, argv, 1, &json, &id);

    if (rc < 0) {
        return rc;
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        return fail(c, "entry show");
    }
    rc = store_entry_get(st, id, &e, &c->err);
    store_close(st);
    if (rc < 0) {
        return fail(c, "entry show");
    }
    ly_buf_init(&out, 1024 * 1024);
    rc = json ? entry_to_json(e, &out, &c->err) : entry_to_text(e, &out, &c->err);
    entry_free(e);
    if (rc < 0) {
        ly_buf_free(&out);
        return fail(c, "entry show");
    }
    return print_buf(&out);
}

static int cmd_entry_delete(struct cli *c, int argc, char **argv)
{
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    const char *id;
    int json;
    int rc = entry_id_args(c, argc, argv, 0, &json, &id);

    if (rc < 0) {
        return rc;
    }
    {
        json_t *args = json_pack("{s:s}", "id", id);
        json_t *res = NULL;
        int via = args != NULL ? try_admin(c, "entry.delete", args, &res)
                               : ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        json_decref(args);
        json_decref(res);
        if (via < 0) {
            return fail(c, "entry delete");
        }
        if (via == 1) {
            printf("deleted entry %s\n", id);
            return write_stdout(NULL, 0);
        }
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        return fail(c, "entry delete");
    }
    rc = store_entry_delete(st, id, &c->err);
    store_close(st);
    if (rc < 0) {
        return fail(c, "entry delete");
    }
    printf("deleted entry %s\n", id);
    return write_stdout(NULL, 0);
}

/* ---- consent (direct to the store; not yet routed through a running server's admin socket) */

/* The invoking user's name for --granted-by: the password database, else "uid:N". */
static int invoking_user(char *out, size_t outsz)
{
    struct passwd *pw = getpwuid(geteuid());
    int n;

    if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0' &&
        strlen(pw->pw_name) < outsz) {
        memcpy(out, pw->pw_name, strlen(pw->pw_name) + 1);
        return 0;
    }
    n = snprintf(out, outsz, "uid:%lu", (unsigned long)geteuid());
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int cmd_consent_grant(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"no-user", no_argument, NULL, 'N'},
        {"client", required_argument, NULL, 'c'},
        {"scope", required_argument, NULL, 's'},
        {"expires", required_argument, NULL, 'e'},
        {"window", required_argument, NULL, 'w'},
        {"source-td", required_argument, NULL, 't'},
        {"granted-by", required_argument, NULL, 'g'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct consent *rec = consent_new();
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    const char *user = NULL;
    const char *client = NULL;
    const char *granted_by = NULL;
    int no_user = 0;
    int64_t ttl = 0;
    int o;
    int rc = 0;

    if (rec == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        return fail(c, "consent grant");
    }
    while (rc == 0 && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            user = optarg;
            break;
        case 'N':
            no_user = 1;
            break;
        case 'c':
            client = optarg;
            break;
        case 's':
            rc = consent_add_scope(rec, optarg, &c->err) < 0 ? -1 : 0;
            break;
        case 'e':
            rc = parse_duration_opt(c, "--expires", optarg, &ttl);
            if (rc == 0 && ttl <= 0) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--expires must be positive");
                rc = -1;
            }
            break;
        case 'w':
            rc = consent_set_window(rec, optarg, &c->err) < 0 ? -1 : 0;
            break;
        case 't':
            rc = consent_add_source_td(rec, optarg, &c->err) < 0 ? -1 : 0;
            break;
        case 'g':
            granted_by = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            consent_free(rec);
            return -2;
        }
    }
    if (rc < 0) {
        consent_free(rec);
        return fail(c, "consent grant");
    }
    if (optind != argc || client == NULL || rec->n_scopes == 0 || (user == NULL) == !no_user) {
        /* Decide the message before freeing the record it looks at. */
        int only_user_wrong = optind == argc && client != NULL && rec->n_scopes > 0;
        consent_free(rec);
        if (only_user_wrong) {
            fprintf(stderr, "lanyard: consent grant: give exactly one of --user U and "
                            "--no-user\n");
        }
        return -2;
    }
    if (consent_set_user(rec, no_user ? NULL : user, &c->err) < 0 ||
        consent_set_client(rec, client, &c->err) < 0) {
        consent_free(rec);
        return fail(c, "consent grant");
    }
    if (granted_by != NULL) {
        if (consent_user_validate(granted_by, &c->err) < 0) {
            consent_free(rec);
            (void)ly_error_wrap(&c->err, "--granted-by");
            return fail(c, "consent grant");
        }
        memcpy(rec->granted_by, granted_by, strlen(granted_by) + 1);
    } else if (invoking_user(rec->granted_by, sizeof(rec->granted_by)) < 0) {
        consent_free(rec);
        ly_error_setx(&c->err, LY_ERR_INTERNAL, 0, "cannot name the invoking user");
        return fail(c, "consent grant");
    }
    rec->granted_at = ly_time_now();
    rec->expires_at = ttl > 0 ? rec->granted_at + ttl : 0;
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        consent_free(rec);
        return fail(c, "consent grant");
    }
    rc = store_consent_add(st, rec, &c->err);
    store_close(st);
    if (rc < 0) {
        consent_free(rec);
        return fail(c, "consent grant");
    }
    printf("%s\n", rec->id);
    consent_free(rec);
    return write_stdout(NULL, 0);
}

static int cmd_consent_revoke(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"no-user", no_argument, NULL, 'N'},
        {"client", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct store *st = NULL;
    struct spiffeid cid;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    const char *user = NULL;
    const char *client = NULL;
    const char *id = NULL;
    int no_user = 0;
    size_t n = 0;
    int o;
    int rc;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            user = optarg;
            break;
        case 'N':
            no_user = 1;
            break;
        case 'c':
            client = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind == argc - 1 && user == NULL && !no_user && client == NULL) {
        id = argv[optind];
    } else if (optind != argc || client == NULL || (user == NULL) == !no_user) {
        return -2;
    }
    if (id == NULL) {
        if (user != NULL && consent_user_validate(user, &c->err) < 0) {
            return fail(c, "consent revoke");
        }
        if (parse_id_opt(c, "--client", client, &cid) < 0) {
            return fail(c, "consent revoke");
        }
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        return fail(c, "consent revoke");
    }
    rc = id != NULL ? store_consent_revoke(st, id, &c->err)
                    : store_consent_revoke_pair(st, user, cid.str, &n, &c->err);
    store_close(st);
    if (rc < 0) {
        return fail(c, "consent revoke");
    }
    if (id != NULL) {
        printf("revoked consent %s\n", id);
    } else {
        printf("revoked %zu consent record%s\n", n, n == 1 ? "" : "s");
    }
    return write_stdout(NULL, 0);
}

static int cmd_consent_list(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"client", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct store *st = NULL;
    struct consent **list = NULL;
    struct spiffeid cid;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_buf out;
    const char *user = NULL;
    const char *client = NULL;
    size_t n = 0;
    size_t i;
    size_t k;
    int json = 0;
    int o;
    int rc;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            user = optarg;
            break;
        case 'c':
            client = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (user != NULL && consent_user_validate(user, &c->err) < 0) {
        return fail(c, "consent list");
    }
    if (client != NULL && parse_id_opt(c, "--client", client, &cid) < 0) {
        return fail(c, "consent list");
    }
    if (open_entry_store(c, &st, td, sizeof(td)) < 0) {
        return fail(c, "consent list");
    }
    rc = store_consent_list(st, user, client != NULL ? cid.str : NULL, &list, &n, &c->err);
    store_close(st);
    if (rc < 0) {
        return fail(c, "consent list");
    }
    ly_buf_init(&out, (size_t)1 << 30);
    rc = json ? ly_buf_append_str(&out, "[", &c->err) : 0;
    for (i = 0; rc == 0 && i < n; i++) {
        const struct consent *r = list[i];
        char x[1100];
        if (json) {
            rc = ly_buf_append_str(&out, i == 0 ? "\n" : ",\n", &c->err);
            if (rc == 0) {
                rc = consent_to_json(r, &out, &c->err);
            }
            continue;
        }
        /* One line per record: id, user, client, expiry, conditions, scopes; odd bytes escaped. */
        rc = ly_buf_appendf(&out, &c->err, "%s user=%s client=%s expires=%lld", r->id,
                            r->no_user ? "(none)"
                                       : ly_text_escape(r->user, strlen(r->user), 256, x,
                                                        sizeof(x)),
                            r->client_id, (long long)r->expires_at);
        if (rc == 0 && r->has_window) {
            rc = ly_buf_appendf(&out, &c->err, " window=%02d:%02d-%02d:%02d",
                                r->window_start / 60, r->window_start % 60, r->window_end / 60,
                                r->window_end % 60);
        }
        for (k = 0; rc == 0 && k < r->n_source_tds; k++) {
            rc = ly_buf_appendf(&out, &c->err, " source-td=%s", r->source_tds[k]);
        }
        for (k = 0; rc == 0 && k < r->n_scopes; k++) {
            rc = ly_buf_appendf(&out, &c->err, " %s", r->scopes[k]);
        }
        if (rc == 0) {
            rc = ly_buf_append_str(&out, "\n", &c->err);
        }
    }
    if (rc == 0 && json) {
        rc = ly_buf_append_str(&out, n > 0 ? "\n]\n" : "]\n", &c->err);
    }
    consent_list_free(list, n);
    if (rc < 0) {
        ly_buf_free(&out);
        return fail(c, "consent list");
    }
    return print_buf(&out);
}

/* ---- federation and federated bundles (direct to the store; a running server sees the change
 * through store_data_version) ---------------------------------------------------------------- */

/*
 * A trust domain option: a bare name (never a SPIFFE ID: that is almost always a mistake worth
 * naming). Writes the name into td (SPIFFEID_TD_MAX_LEN + 1 bytes). LY_ERR_PARSE naming flag.
 */
static int parse_td_opt(struct cli *c, const char *flag, const char *v, char *td, size_t tdsz)
{
    char x[160];

    if (strncmp(v, "spiffe://", 9) == 0) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                             "%s takes a bare trust domain name such as example.org, not a "
                             "SPIFFE ID ('%s')",
                             flag, ly_text_escape(v, strlen(v), 64, x, sizeof(x)));
    }
    if (spiffeid_parse_trust_domain(v, strlen(v), td, tdsz, &c->err) < 0) {
        c->err.code = LY_ERR_PARSE;
        return ly_error_wrap(&c->err, "%s", flag);
    }
    return 0;
}

/*
 * A bundle endpoint URL: https:// with a host, parsed by libhttp-parser; no user info (it would
 * be a credential in the database and in every log line) and no fragment (never sent anyway).
 */
static int check_endpoint_url(struct cli *c, const char *url)
{
    struct http_parser_url u;
    size_t len = strlen(url);
    char x[200];

    (void)ly_text_escape(url, len, 96, x, sizeof(x)); /* returns x */
    if (len > STORE_FED_URL_MAX) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--url is longer than %d bytes",
                             STORE_FED_URL_MAX);
    }
    http_parser_url_init(&u);
    if (strncmp(url, "https://", 8) != 0) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                             "--url '%s' is not an https:// URL: a bundle endpoint is always "
                             "fetched over TLS",
                             x);
    }
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA))) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--url '%s' is not a valid URL", x);
    }
    if (!(u.field_set & (1 << UF_HOST)) || u.field_data[UF_HOST].len == 0) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--url '%s' has no host", x);
    }
    /* libhttp-parser reports no user info for an empty one ("https://@host"): look for '@'. */
    if ((u.field_set & (1 << UF_USERINFO)) ||
        memchr(url + 8, '@', strcspn(url + 8, "/?#")) != NULL) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                             "--url must not carry user information (user:password@)");
    }
    if (u.field_set & (1 << UF_FRAGMENT)) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                             "--url '%s' must not have a fragment (#...)", x);
    }
    if ((u.field_set & (1 << UF_PORT)) && u.port == 0) {
        return ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--url '%s': port 0", x);
    }
    return 0;
}

/* Read a file, or standard input for "-" (a pipe is fine), of at most max bytes into out. */
static int read_file_or_stdin(struct cli *c, const char *path, size_t max, struct ly_buf *out)
{
    char chunk[4096];
    size_t n;
    int rc;

    if (strcmp(path, "-") != 0) {
        return ly_file_read(path, max, 0, out, &c->err);
    }
    ly_buf_init(out, max);
    rc = ly_buf_append(out, "", 0, &c->err);
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        rc = ly_buf_append(out, chunk, n, &c->err);
    }
    if (rc == 0 && ferror(stdin)) {
        ly_buf_free(out);
        rc = ly_error_setx(&c->err, LY_ERR_IO, 0, "cannot read standard input");
    }
    if (rc < 0) {
        return ly_error_wrap(&c->err, "standard input");
    }
    return 0;
}

/*
 * Every X.509 authority of b that carries a SPIFFE ID must name trust domain td: a bundle of
 * another trust domain given for td (e.g. this domain's own) is an operator mistake that would
 * otherwise go unnoticed until a handshake fails.
 */
static int check_authorities_td(struct cli *c, const struct bundle *b, const char *td,
                                const char *what)
{
    struct x509svid_info *info = malloc(sizeof(*info));
    size_t i;
    int rc = 0;

    if (info == NULL) {
        return ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; rc == 0 && i < bundle_x509_count(b); i++) {
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);
        char other[SPIFFEID_TD_MAX_LEN + 1];
        rc = x509svid_cert_info(der, len, info, &c->err);
        if (rc < 0) {
            rc = ly_error_wrap(&c->err, "%s: X.509 authority %zu", what, i);
        } else if (info->has_id && !spiffeid_member_of(&info->id, td)) {
            rc = spiffeid_td_copy(&info->id, other, sizeof(other)) == 0
                     ? ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                                     "%s: X.509 authority %zu (sha256 %.16s...) belongs to trust "
                                     "domain %s, not %s",
                                     what, i, info->sha256_hex, other, td)
                     : ly_error_setx(&c->err, LY_ERR_INTERNAL, 0, "trust domain too long");
        }
    }
    free(info);
    return rc;
}

/*
 * Read and parse a foreign trust domain's bundle (SPIFFE JSON or PEM; "-" is stdin) for td.
 * It must hold an authority (an X.509 one when need_x509), and its X.509 authorities must not
 * name another trust domain. *out: caller frees with bundle_free. Errors name `what`.
 */
static int load_foreign_bundle(struct cli *c, const char *td, const char *path, int need_x509,
                               const char *what, struct bundle **out)
{
    struct bundle *b = NULL;
    struct ly_buf file;
    int rc;

    *out = NULL;
    rc = read_file_or_stdin(c, path, BUNDLE_CODEC_MAX_INPUT, &file);
    if (strcmp(path, "-") == 0) {
        path = "(standard input)"; /* for the messages below */
    }
    if (rc < 0) {
        return ly_error_wrap(&c->err, "%s", what);
    }
    rc = reject_blank_bundle(c, &file, path);
    if (rc == 0) {
        rc = bundle_codec_parse_auto(td, file.data, file.len, &b, &c->err);
    }
    ly_buf_free(&file);
    if (rc < 0) {
        /* Whatever the codec's category (e.g. too many authorities), this is invalid input. */
        c->err.code = c->err.code == LY_ERR_NOMEM ? LY_ERR_NOMEM : LY_ERR_PARSE;
        return ly_error_wrap(&c->err, "%s %s is not a bundle for %s", what, path, td);
    }
    if (need_x509 && bundle_x509_count(b) == 0) {
        rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                           "%s %s has no X.509 authority: nothing could authenticate the "
                           "bundle endpoint of %s",
                           what, path, td);
    } else if (bundle_x509_count(b) == 0 && bundle_jwt_count(b) == 0) {
        rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                           "%s %s has no authority at all: a trust bundle needs at least one",
                           what, path);
    }
    if (rc == 0) {
        rc = check_authorities_td(c, b, td, what);
    }
    if (rc < 0) {
        bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/*
 * Fill a store row from a parsed bundle: its normalised SPIFFE JSON (owned by json, which the
 * caller frees with ly_buf_free), sequence and refresh hint.
 */
static int fed_row_from_bundle(struct cli *c, const struct bundle *b, const char *source,
                               struct store_fed_bundle *row, struct ly_buf *json)
{
    uint64_t seq = 0;
    int64_t hint = 0;
    int n;

    memset(row, 0, sizeof(*row));
    if (bundle_codec_write_json(b, json, &c->err) < 0) {
        return c->err.code;
    }
    n = snprintf(row->trust_domain, sizeof(row->trust_domain), "%s", bundle_trust_domain(b));
    if (n < 0 || (size_t)n >= sizeof(row->trust_domain) ||
        snprintf(row->source, sizeof(row->source), "%s", source) >= (int)sizeof(row->source)) {
        ly_buf_free(json);
        return ly_error_setx(&c->err, LY_ERR_INTERNAL, 0, "trust domain or source too long");
    }
    row->json = json->data;
    row->len = json->len;
    /* bundle_codec_write_json refused a sequence above INT64_MAX already. */
    row->sequence = bundle_get_sequence(b, &seq) == 0 ? (int64_t)seq : -1;
    row->refresh_hint = bundle_get_refresh_hint(b, &hint) == 0 ? hint : -1;
    row->updated_at = ly_time_now();
    return 0;
}

/* Parse a stored federated bundle back into the model. Caller frees *out with bundle_free. */
static int fed_row_parse(struct cli *c, const struct store_fed_bundle *row, struct bundle **out)
{
    if (bundle_codec_parse_json(row->trust_domain, row->json, row->len, out, &c->err) < 0) {
        c->err.code = LY_ERR_IO;
        return ly_error_wrap(&c->err, "the stored bundle of %s does not parse",
                             row->trust_domain);
    }
    return 0;
}

/* "never" for 0, else RFC 3339 (UTC). */
static const char *fmt_when(int64_t t, char *buf, size_t bufsz)
{
    struct ly_error ignored;

    ly_error_clear(&ignored);
    if (t == 0 || ly_time_format_rfc3339(t, buf, bufsz, &ignored) < 0) {
        return t == 0 ? "never" : "?";
    }
    return buf;
}

/* JSON null for 0 ("never"), else an RFC 3339 string. */
static json_t *json_when(int64_t t)
{
    char buf[40];

    return t == 0 ? json_null() : json_string(fmt_when(t, buf, sizeof(buf)));
}

/* A JSON integer, or null for -1 ("absent"). */
static json_t *json_opt_int(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

/* Print a JSON value (indented, final newline) and release it. */
static int print_json(struct cli *c, json_t *v)
{
    char *text;
    int rc;

    if (v == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        return fail(c, NULL);
    }
    text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (text == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        return fail(c, NULL);
    }
    rc = write_stdout(text, strlen(text));
    free(text);
    return rc == 0 ? write_stdout("\n", 1) : rc;
}

/* Exit code of a store refusal: a missing trust domain is invalid input (1), the rest as coded. */
static int fed_fail(struct cli *c, const char *what)
{
    if (c->err.code == LY_ERR_USAGE && c->err.reason == STORE_FED_R_NOT_FOUND) {
        c->err.code = LY_ERR_PARSE;
    }
    return fail(c, what);
}

static int cmd_federation_add(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {"url", required_argument, NULL, 'u'},
        {"profile", required_argument, NULL, 'p'},
        {"ca", required_argument, NULL, 'C'},
        {"endpoint-id", required_argument, NULL, 'e'},
        {"bootstrap-bundle", required_argument, NULL, 'b'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *td_arg = NULL;
    const char *url = NULL;
    const char *profile = NULL;
    const char *ca_path = NULL;
    const char *eid_arg = NULL;
    const char *boot_path = NULL;
    char own[SPIFFEID_TD_MAX_LEN + 1];
    char x[160];
    struct store_fed_relation *rel = NULL;
    struct store_fed_bundle row;
    struct spiffeid *eid = NULL;
    struct bundle *boot = NULL;
    struct store *st = NULL;
    struct ly_buf json;
    struct ly_buf ca_pem;
    size_t n_ca = 0;
    int web;
    int rc = 0;
    int o;

    ly_buf_init(&json, 0);
    ly_buf_init(&ca_pem, 0);
    memset(&row, 0, sizeof(row));
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            td_arg = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        case 'p':
            profile = optarg;
            break;
        case 'C':
            ca_path = optarg;
            break;
        case 'e':
            eid_arg = optarg;
            break;
        case 'b':
            boot_path = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc || td_arg == NULL || url == NULL || profile == NULL) {
        return -2;
    }
    {
        enum fed_profile fp;
        struct ly_error perr;

        ly_error_clear(&perr);
        web = fed_profile_parse(profile, &fp, &perr) == 0 ? fp == FED_PROFILE_HTTPS_WEB : -1;
    }
    if (web < 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--profile must be https_web or https_spiffe, not '%s'",
                      ly_text_escape(profile, strlen(profile), 32, x, sizeof(x)));
        return fail(c, "federation add");
    }
    if (web && (eid_arg != NULL || boot_path != NULL)) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "%s is only for --profile https_spiffe (an https_web endpoint is "
                      "authenticated by its web PKI certificate; --ca FILE names its CAs)",
                      eid_arg != NULL ? "--endpoint-id" : "--bootstrap-bundle");
        return fail(c, "federation add");
    }
    if (!web && ca_path != NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--ca is only for --profile https_web (an https_spiffe endpoint is "
                      "authenticated by the trust domain's own bundle: --bootstrap-bundle)");
        return fail(c, "federation add");
    }
    if (!web && (eid_arg == NULL || boot_path == NULL)) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--profile https_spiffe needs both --endpoint-id SPIFFE_ID (who the "
                      "endpoint server must be) and --bootstrap-bundle FILE (what it is "
                      "verified against first)");
        return fail(c, "federation add");
    }
    rel = calloc(1, sizeof(*rel));
    eid = calloc(1, sizeof(*eid));
    if (rel == NULL || eid == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        goto out_fail;
    }
    if (parse_td_opt(c, "--trust-domain", td_arg, rel->trust_domain,
                     sizeof(rel->trust_domain)) < 0 ||
        check_endpoint_url(c, url) < 0) {
        goto out_fail;
    }
    if (open_entry_store(c, &st, own, sizeof(own)) < 0) {
        goto out_fail;
    }
    if (strcmp(rel->trust_domain, own) == 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--trust-domain %s is this data directory's own trust domain; federation "
                      "is with other trust domains",
                      own);
        goto out_fail;
    }
    memcpy(rel->url, url, strlen(url) + 1); /* length checked by check_endpoint_url */
    memcpy(rel->profile, profile, strlen(profile) + 1);
    if (eid_arg != NULL) {
        if (parse_id_opt(c, "--endpoint-id", eid_arg, eid) < 0) {
            c->err.code = LY_ERR_PARSE;
            goto out_fail;
        }
        if (spiffeid_is_root(eid) || !spiffeid_member_of(eid, rel->trust_domain)) {
            ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                          "--endpoint-id %s must be a SPIFFE ID with a path in trust domain %s "
                          "(the bundle endpoint server's own ID, e.g. spiffe://%s/bundle-server)",
                          eid->str, rel->trust_domain, rel->trust_domain);
            goto out_fail;
        }
        memcpy(rel->endpoint_id, eid->str, eid->len + 1);
    }
    if (ca_path != NULL) {
        struct bundle *cas = NULL;
        struct ly_buf file;
        if (ly_file_read(ca_path, STORE_FED_CA_MAX, 0, &file, &c->err) < 0) {
            (void)ly_error_wrap(&c->err, "--ca");
            goto out_fail;
        }
        rc = ly_text_is_blank(file.data, file.len)
                 ? ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--ca %s is empty", ca_path)
                 : bundle_codec_parse_pem(rel->trust_domain, file.data, file.len, &cas,
                                          &c->err);
        ly_buf_free(&file);
        if (rc == 0 && bundle_x509_count(cas) == 0) {
            rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0, "--ca %s holds no certificate",
                               ca_path);
        }
        /* Stored normalised: the certificates only, nothing else the file may have held. */
        if (rc == 0) {
            n_ca = bundle_x509_count(cas);
            rc = bundle_codec_write_pem(cas, &ca_pem, &c->err);
        }
        bundle_free(cas);
        if (rc < 0) {
            (void)ly_error_wrap(&c->err, "--ca %s must hold PEM certificates", ca_path);
            c->err.code = c->err.code == LY_ERR_IO ? LY_ERR_IO : LY_ERR_PARSE;
            goto out_fail;
        }
        rel->ca_pem = ca_pem.data;
        rel->ca_len = ca_pem.len;
    }
    if (boot_path != NULL) {
        if (load_foreign_bundle(c, rel->trust_domain, boot_path, 1, "--bootstrap-bundle",
                                &boot) < 0 ||
            fed_row_from_bundle(c, boot, "bootstrap", &row, &json) < 0) {
            goto out_fail;
        }
    }
    rel->created_at = ly_time_now();
    if (store_fed_relation_add(st, rel, boot != NULL ? &row : NULL, &c->err) < 0) {
        goto out_fail;
    }
    printf("added federation with %s: profile %s, bundle endpoint %s", rel->trust_domain,
           rel->profile, rel->url);
    if (web) {
        if (n_ca > 0) {
            printf(", trust anchors: %zu CA certificate%s from %s\n", n_ca, n_ca == 1 ? "" : "s",
                   ca_path);
        } else {
            printf(", trust anchors: the system's CA certificates\n");
        }
    } else {
        printf(", endpoint ID %s, bootstrap bundle with %zu X.509 authorit%s\n", rel->endpoint_id,
               bundle_x509_count(boot), bundle_x509_count(boot) == 1 ? "y" : "ies");
    }
    rc = write_stdout(NULL, 0);
    goto out;
out_fail:
    rc = fed_fail(c, "federation add");
out:
    store_close(st);
    bundle_free(boot);
    ly_buf_free(&json);
    ly_buf_free(&ca_pem);
    free(rel); /* rel->ca_pem was borrowed from ca_pem */
    free(eid);
    return rc;
}

/* Counts of a stored bundle's authorities (-1, -1 when there is no bundle). */
struct fed_counts {
    int found;
    struct store_fed_bundle row;
    long x509;
    long jwt;
};

/* Load td's federated bundle row and count its authorities. */
static int fed_counts_load(struct cli *c, struct store *st, const char *td, struct fed_counts *k)
{
    struct bundle *b = NULL;

    k->x509 = -1;
    k->jwt = -1;
    if (store_fed_bundle_get(st, td, &k->row, &k->found, &c->err) < 0) {
        return c->err.code;
    }
    if (!k->found) {
        return 0;
    }
    if (fed_row_parse(c, &k->row, &b) < 0) {
        store_fed_bundle_clear(&k->row);
        return c->err.code;
    }
    k->x509 = (long)bundle_x509_count(b);
    k->jwt = (long)bundle_jwt_count(b);
    bundle_free(b);
    return 0;
}

/*
 * The JSON object of a relationship and its bundle: counts only when b is NULL (list), the
 * bundle_codec_summary_json authorities of b (its parsed bundle) otherwise (show).
 */
static json_t *fed_relation_json(struct cli *c, const struct store_fed_relation *r,
                                 const struct fed_counts *k, const struct bundle *b)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "trust_domain",
                          r->trust_domain, "profile", r->profile, "url", r->url, "endpoint_id",
                          r->endpoint_id[0] ? json_string(r->endpoint_id) : json_null(),
                          "created_at", json_when(r->created_at), "last_attempt_at",
                          json_when(r->last_attempt_at), "last_success_at",
                          json_when(r->last_success_at), "last_error",
                          r->last_error[0] ? json_string(r->last_error) : json_null());
    json_t *bj = NULL;

    if (o == NULL) {
        return NULL;
    }
    if (k->found && b == NULL) {
        bj = json_pack("{s:s, s:o, s:o, s:I, s:I, s:o}", "source", k->row.source, "sequence",
                       json_opt_int(k->row.sequence), "refresh_hint",
                       json_opt_int(k->row.refresh_hint), "x509_count", (json_int_t)k->x509,
                       "jwt_count", (json_int_t)k->jwt, "updated_at",
                       json_when(k->row.updated_at));
    } else if (k->found) {
        struct ly_buf sum;
        if (bundle_codec_summary_json(b, &sum, &c->err) < 0) {
            json_decref(o);
            return NULL;
        }
        bj = json_loadb((const char *)sum.data, sum.len, 0, NULL);
        ly_buf_free(&sum);
        if (bj == NULL || json_object_del(bj, "trust_domain") != 0 ||
            json_object_set_new(bj, "source", json_string(k->row.source)) != 0 ||
            json_object_set_new(bj, "updated_at", json_when(k->row.updated_at)) != 0) {
            json_decref(bj);
            json_decref(o);
            return NULL;
        }
    } else {
        bj = json_null();
    }
    if (bj == NULL || json_object_set_new(o, "bundle", bj) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int cmd_federation_list(struct cli *c, int argc, char **argv)
{
    struct store_fed_relation *list = NULL;
    struct store *st = NULL;
    char own[SPIFFEID_TD_MAX_LEN + 1];
    json_t *arr = NULL;
    size_t n = 0;
    size_t i;
    int json = 0;
    int rc;

    if (json_data_opts(c, argc, argv, &json) < 0) {
        return -2;
    }
    if (open_entry_store(c, &st, own, sizeof(own)) < 0 ||
        store_fed_relation_list(st, &list, &n, &c->err) < 0) {
        store_close(st);
        return fail(c, "federation list");
    }
    arr = json ? json_array() : NULL;
    rc = json && arr == NULL ? ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory") : 0;
    for (i = 0; rc == 0 && i < n; i++) {
        const struct store_fed_relation *r = &list[i];
        struct fed_counts k;
        char when[40];
        char x[1100];
        memset(&k, 0, sizeof(k));
        rc = fed_counts_load(c, st, r->trust_domain, &k);
        if (rc < 0) {
            break;
        }
        if (json) {
            json_t *o = fed_relation_json(c, r, &k, NULL);
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                rc = ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            }
        } else {
            /* One line per relationship; a peer's error text is escaped. */
            printf("%s %s %s endpoint_id=%s", r->trust_domain, r->profile, r->url,
                   r->endpoint_id[0] ? r->endpoint_id : "-");
            if (k.found && k.row.sequence >= 0) {
                printf(" bundle=%s sequence=%lld x509=%ld jwt=%ld", k.row.source,
                       (long long)k.row.sequence, k.x509, k.jwt);
            } else if (k.found) {
                printf(" bundle=%s sequence=- x509=%ld jwt=%ld", k.row.source, k.x509, k.jwt);
            } else {
                printf(" bundle=none");
            }
            printf(" last_success=%s last_error=%s\n",
                   fmt_when(r->last_success_at, when, sizeof(when)),
                   r->last_error[0] ? ly_text_escape(r->last_error, strlen(r->last_error), 255,
                                                     x, sizeof(x))
                                    : "-");
        }
        store_fed_bundle_clear(&k.row);
    }
    store_close(st);
    store_fed_relation_list_free(list, n);
    if (rc < 0) {
        json_decref(arr);
        return fail(c, "federation list");
    }
    return json ? print_json(c, arr) : write_stdout(NULL, 0);
}

/* Parse `federation show|delete TD [--json] [--data DIR]`: the trust domain into td. */
static int fed_td_args(struct cli *c, const char *what, int argc, char **argv, int allow_json,
                       int *json, char *td, size_t tdsz)
{
    const char *arg = NULL;
    int rc = entry_id_args(c, argc, argv, allow_json, json, &arg);

    if (rc < 0) {
        return rc;
    }
    if (parse_td_opt(c, "trust domain", arg, td, tdsz) < 0) {
        return fail(c, what);
    }
    return 0;
}

/* The "x509_authorities" array of bundle_codec_summary_json (sha256, subject), or NULL. */
static json_t *authorities_json(struct cli *c, const struct bundle *b)
{
    struct ly_buf sum;
    json_t *s;
    json_t *a;

    if (bundle_codec_summary_json(b, &sum, &c->err) < 0) {
        return NULL;
    }
    s = json_loadb((const char *)sum.data, sum.len, 0, NULL);
    ly_buf_free(&sum);
    a = json_incref(json_object_get(s, "x509_authorities"));
    json_decref(s);
    return a;
}

static int cmd_federation_show(struct cli *c, int argc, char **argv)
{
    struct store_fed_relation rel;
    struct fed_counts k;
    struct bundle *b = NULL;
    struct bundle *cas = NULL;
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char own[SPIFFEID_TD_MAX_LEN + 1];
    char when[40];
    char x[1100];
    int found = 0;
    int json = 0;
    int rc = fed_td_args(c, "federation show", argc, argv, 1, &json, td, sizeof(td));
    size_t i;

    if (rc != 0) {
        return rc;
    }
    memset(&rel, 0, sizeof(rel));
    memset(&k, 0, sizeof(k));
    if (open_entry_store(c, &st, own, sizeof(own)) < 0 ||
        store_fed_relation_get(st, td, &rel, &found, &c->err) < 0) {
        goto out_fail;
    }
    if (!found) {
        ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                      "no federation relationship with trust domain %s (see lanyard federation "
                      "list)",
                      td);
        goto out_fail;
    }
    if (fed_counts_load(c, st, td, &k) < 0 || (k.found && fed_row_parse(c, &k.row, &b) < 0)) {
        goto out_fail;
    }
    if (rel.ca_pem != NULL &&
        bundle_codec_parse_pem(td, rel.ca_pem, rel.ca_len, &cas, &c->err) < 0) {
        c->err.code = LY_ERR_IO;
        (void)ly_error_wrap(&c->err, "the stored CA certificates of %s", td);
        goto out_fail;
    }
    if (json) {
        json_t *o = fed_relation_json(c, &rel, &k, b);
        json_t *ca = cas != NULL ? authorities_json(c, cas) : json_null();
        if (o == NULL || ca == NULL) {
            json_decref(o);
            json_decref(ca);
            o = NULL;
        } else if (json_object_set_new(o, "ca_certificates", ca) != 0) {
            json_decref(o);
            o = NULL;
        }
        rc = print_json(c, o);
        goto out;
    }
    printf("trust_domain: %s\nprofile: %s\nurl: %s\n", rel.trust_domain, rel.profile, rel.url);
    if (rel.endpoint_id[0] != '\0') {
        printf("endpoint_id: %s\n", rel.endpoint_id);
    }
    if (strcmp(rel.profile, "https_web") == 0 && cas == NULL) {
        printf("ca: the system's CA certificates\n");
    }
    for (i = 0; cas != NULL && i < bundle_x509_count(cas); i++) {
        struct x509svid_info info;
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(cas, i, &len);
        if (x509svid_cert_info(der, len, &info, &c->err) < 0) {
            goto out_fail;
        }
        printf("ca: sha256:%s %s\n", info.sha256_hex, info.subject);
    }
    printf("created: %s\n", fmt_when(rel.created_at, when, sizeof(when)));
    printf("last_attempt: %s\n", fmt_when(rel.last_attempt_at, when, sizeof(when)));
    printf("last_success: %s\n", fmt_when(rel.last_success_at, when, sizeof(when)));
    printf("last_error: %s\n",
           rel.last_error[0] ? ly_text_escape(rel.last_error, strlen(rel.last_error), 255, x,
                                              sizeof(x))
                             : "(none)");
    if (!k.found) {
        printf("bundle: none yet\n");
    } else {
        printf("bundle: source %s, updated %s\n", k.row.source,
               fmt_when(k.row.updated_at, when, sizeof(when)));
        if (k.row.sequence >= 0) {
            printf("sequence: %lld\n", (long long)k.row.sequence);
        }
        if (k.row.refresh_hint >= 0) {
            printf("refresh_hint: %lld s\n", (long long)k.row.refresh_hint);
        }
        for (i = 0; i < bundle_x509_count(b); i++) {
            struct x509svid_info info;
            size_t len = 0;
            const uint8_t *der = bundle_x509_authority(b, i, &len);
            if (x509svid_cert_info(der, len, &info, &c->err) < 0) {
                goto out_fail;
            }
            printf("x509_authority: sha256:%s %s\n", info.sha256_hex, info.subject);
        }
        for (i = 0; i < bundle_jwt_count(b); i++) {
            const uint8_t *spki = NULL;
            size_t len = 0;
            const char *kid = bundle_jwt_authority(b, i, &spki, &len);
            printf("jwt_authority: kid %s\n",
                   ly_text_escape(kid, strlen(kid), 128, x, sizeof(x)));
        }
    }
    rc = write_stdout(NULL, 0);
    goto out;
out_fail:
    rc = fail(c, "federation show");
out:
    store_close(st);
    store_fed_relation_clear(&rel);
    store_fed_bundle_clear(&k.row);
    bundle_free(b);
    bundle_free(cas);
    return rc;
}

static int cmd_federation_delete(struct cli *c, int argc, char **argv)
{
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char own[SPIFFEID_TD_MAX_LEN + 1];
    int json = 0;
    int rc = fed_td_args(c, "federation delete", argc, argv, 0, &json, td, sizeof(td));

    if (rc != 0) {
        return rc;
    }
    if (open_entry_store(c, &st, own, sizeof(own)) < 0) {
        return fail(c, "federation delete");
    }
    rc = store_fed_relation_delete(st, td, &c->err);
    store_close(st);
    if (rc < 0) {
        return fed_fail(c, "federation delete");
    }
    printf("deleted federation with %s and its bundle\n", td);
    return write_stdout(NULL, 0);
}

/*
 * Fetch now: through the running server when there is one (its fetcher, its streams), else
 * once from here with the same rules, recorded in the store the same way.
 */
static int cmd_federation_refresh(struct cli *c, int argc, char **argv)
{
    struct store *st = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char own[SPIFFEID_TD_MAX_LEN + 1];
    char msg[LY_ERROR_MSG_MAX + 64];
    json_t *args = NULL;
    json_t *res = NULL;
    int json = 0;
    int rc = fed_td_args(c, "federation refresh", argc, argv, 0, &json, td, sizeof(td));

    if (rc != 0) {
        return rc;
    }
    args = json_pack("{s:s}", "trust_domain", td);
    rc = args != NULL ? try_admin(c, "federation.refresh", args, &res)
                      : ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
    json_decref(args);
    if (rc == 1) {
        const json_t *m = json_object_get(res, "message");
        printf("%s\n", json_is_string(m) ? json_string_value(m) : "refreshed");
        json_decref(res);
        return write_stdout(NULL, 0);
    }
    json_decref(res);
    if (rc < 0) {
        return fed_fail(c, "federation refresh");
    }
    if (open_entry_store(c, &st, own, sizeof(own)) < 0) {
        return fail(c, "federation refresh");
    }
    /* The daemon's log lines would only repeat, as JSON, the one error printed below. */
    log_set_level(LOG_ERROR);
    rc = fedsync_refresh_offline(st, td, FED_FETCH_TIMEOUT_MS + 2000, msg, sizeof(msg), &c->err);
    store_close(st);
    if (rc < 0) {
        return fed_fail(c, "federation refresh");
    }
    printf("%s\n", msg);
    return write_stdout(NULL, 0);
}

static int cmd_bundle_set(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *td_arg = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char own[SPIFFEID_TD_MAX_LEN + 1];
    struct store_fed_bundle row;
    struct store_fed_bundle old;
    struct bundle *b = NULL;
    struct store *st = NULL;
    struct ly_buf json;
    int replaced = 0;
    int rc;
    int o;

    ly_buf_init(&json, 0);
    memset(&row, 0, sizeof(row));
    memset(&old, 0, sizeof(old));
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            td_arg = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc - 1 || td_arg == NULL) {
        return -2;
    }
    if (parse_td_opt(c, "--trust-domain", td_arg, td, sizeof(td)) < 0 ||
        open_entry_store(c, &st, own, sizeof(own)) < 0) {
        goto out_fail;
    }
    if (strcmp(td, own) == 0) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--trust-domain %s is this data directory's own trust domain; its bundle "
                      "comes from its CA (lanyard bundle show)",
                      own);
        goto out_fail;
    }
    if (load_foreign_bundle(c, td, argv[optind], 0, "bundle file", &b) < 0 ||
        fed_row_from_bundle(c, b, "static", &row, &json) < 0 ||
        store_fed_bundle_get(st, td, &old, &replaced, &c->err) < 0 ||
        store_fed_bundle_put(st, &row, &c->err) < 0) {
        goto out_fail;
    }
    printf("%s the static bundle of %s: %zu X.509 and %zu JWT authorit%s", replaced ? "replaced"
                                                                                    : "set",
           td, bundle_x509_count(b), bundle_jwt_count(b),
           bundle_jwt_count(b) == 1 ? "y" : "ies");
    if (row.sequence >= 0) {
        printf(", sequence %lld", (long long)row.sequence);
    }
    printf("\n");
    rc = write_stdout(NULL, 0);
    goto out;
out_fail:
    rc = fed_fail(c, "bundle set");
out:
    store_close(st);
    store_fed_bundle_clear(&old);
    bundle_free(b);
    ly_buf_free(&json);
    return rc;
}

static int cmd_bundle_list(struct cli *c, int argc, char **argv)
{
    struct store_fed_bundle *list = NULL;
    struct ca_state *ca = NULL;
    struct bundle *local = NULL;
    struct store *st = NULL;
    char own[SPIFFEID_TD_MAX_LEN + 1];
    json_t *arr = NULL;
    uint64_t seq = 0;
    int64_t hint = 0;
    size_t n = 0;
    size_t i;
    int json = 0;
    int rc;

    if (json_data_opts(c, argc, argv, &json) < 0) {
        return -2;
    }
    if (open_entry_store(c, &st, own, sizeof(own)) < 0 ||
        store_fed_bundle_list(st, &list, &n, &c->err) < 0) {
        store_close(st);
        return fail(c, "bundle list");
    }
    store_close(st);
    rc = ca_open(c->data_dir, &ca, &c->err);
    if (rc == 0) {
        rc = ca_bundle(ca, ly_time_now(), &local, &c->err);
    }
    ca_close(ca);
    if (rc == 0 && json) {
        arr = json_array();
        if (arr == NULL ||
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:n}", "trust_domain", own,
                               "source", "local",
                               "sequence", bundle_get_sequence(local, &seq) == 0 &&
                                                   seq <= (uint64_t)INT64_MAX
                                               ? json_integer((json_int_t)seq)
                                               : json_null(),
                               "refresh_hint", bundle_get_refresh_hint(local, &hint) == 0
                                                   ? json_integer((json_int_t)hint)
                                                   : json_null(),
                               "x509_count", (json_int_t)bundle_x509_count(local), "jwt_count",
                               (json_int_t)bundle_jwt_count(local), "updated_at")) != 0) {
            rc = ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        }
    } else if (rc == 0) {
        printf("%s source=local sequence=%llu x509=%zu jwt=%zu updated=-\n", own,
               bundle_get_sequence(local, &seq) == 0 ? (unsigned long long)seq : 0ull,
               bundle_x509_count(local), bundle_jwt_count(local));
    }
    bundle_free(local);
    for (i = 0; rc == 0 && i < n; i++) {
        struct bundle *b = NULL;
        char when[40];
        rc = fed_row_parse(c, &list[i], &b);
        if (rc < 0) {
            break;
        }
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:o}", "trust_domain",
                                  list[i].trust_domain, "source", list[i].source, "sequence",
                                  json_opt_int(list[i].sequence), "refresh_hint",
                                  json_opt_int(list[i].refresh_hint), "x509_count",
                                  (json_int_t)bundle_x509_count(b), "jwt_count",
                                  (json_int_t)bundle_jwt_count(b), "updated_at",
                                  json_when(list[i].updated_at));
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                rc = ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            }
        } else {
            printf("%s source=%s sequence=", list[i].trust_domain, list[i].source);
            if (list[i].sequence >= 0) {
                printf("%lld", (long long)list[i].sequence);
            } else {
                printf("-");
            }
            printf(" x509=%zu jwt=%zu updated=%s\n", bundle_x509_count(b), bundle_jwt_count(b),
                   fmt_when(list[i].updated_at, when, sizeof(when)));
        }
        bundle_free(b);
    }
    store_fed_bundle_list_free(list, n);
    if (rc < 0) {
        json_decref(arr);
        return fail(c, "bundle list");
    }
    return json ? print_json(c, arr) : write_stdout(NULL, 0);
}

static int cmd_bundle_delete(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *td_arg = NULL;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char own[SPIFFEID_TD_MAX_LEN + 1];
    struct store *st = NULL;
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            td_arg = optarg;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc || td_arg == NULL) {
        return -2;
    }
    if (parse_td_opt(c, "--trust-domain", td_arg, td, sizeof(td)) < 0 ||
        open_entry_store(c, &st, own, sizeof(own)) < 0) {
        return fail(c, "bundle delete");
    }
    if (strcmp(td, own) == 0) {
        store_close(st);
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--trust-domain %s is this data directory's own trust domain; its bundle "
                      "comes from its CA and cannot be deleted",
                      own);
        return fail(c, "bundle delete");
    }
    rc = store_fed_bundle_delete(st, td, &c->err);
    store_close(st);
    if (rc < 0) {
        return fed_fail(c, "bundle delete");
    }
    printf("deleted the static bundle of %s\n", td);
    return write_stdout(NULL, 0);
}

/* `bundle show --trust-domain TD` for a foreign TD: its federated bundle from the store. */
static int show_federated_bundle(struct cli *c, struct store *st, const char *td,
                                 const char *format)
{
    struct store_fed_bundle row;
    struct bundle *b = NULL;
    struct ly_buf out;
    int found = 0;
    int rc;

    ly_buf_init(&out, 0);
    rc = store_fed_bundle_get(st, td, &row, &found, &c->err);
    if (rc == 0 && !found) {
        rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                           "no bundle for trust domain %s (see lanyard bundle list)", td);
    }
    if (rc == 0) {
        rc = fed_row_parse(c, &row, &b);
    }
    if (rc == 0 && strcmp(format, "pem") == 0 && bundle_x509_count(b) == 0) {
        rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                           "the bundle of %s has no X.509 authority to print as PEM", td);
    }
    if (rc == 0) {
        rc = strcmp(format, "pem") == 0 ? bundle_codec_write_pem(b, &out, &c->err)
                                        : bundle_codec_write_json(b, &out, &c->err);
    }
    store_fed_bundle_clear(&row);
    bundle_free(b);
    if (rc < 0) {
        ly_buf_free(&out);
        return fail(c, "bundle show");
    }
    return print_buf(&out);
}

/* ---- server ------------------------------------------------------------------------------ */

static int cmd_server(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"trust-domain", required_argument, NULL, 't'},
        {"workload-socket", required_argument, NULL, 'w'},
        {"admin-socket", required_argument, NULL, 'a'},
        {"health-listen", required_argument, NULL, 'h'},
        {"log-level", required_argument, NULL, 'l'},
        {"bundle-endpoint", required_argument, NULL, 'B'},
        {"bundle-endpoint-profile", required_argument, NULL, 'P'},
        {"web-cert", required_argument, NULL, 'C'},
        {"web-key", required_argument, NULL, 'K'},
        {"bundle-refresh-hint", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    /* Flags are applied after the config file, whatever their order on the line. */
    const char *keys[16];
    const char *vals[16];
    size_t n = 0;
    size_t i;
    const char *config_path = NULL;
    struct config cfg;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (o) {
        case 'c':
            config_path = optarg;
            continue;
        case 'd':
            c->data_dir = optarg;
            c->data_explicit = 1;
            continue;
        case 't':
            key = "trust_domain";
            break;
        case 'w':
            key = "workload_socket";
            break;
        case 'a':
            key = "admin_socket";
            break;
        case 'h':
            key = "health_listen";
            break;
        case 'l':
            key = "log_level";
            break;
        case 'B':
            key = "bundle_endpoint";
            break;
        case 'P':
            key = "bundle_endpoint_profile";
            break;
        case 'C':
            key = "web_cert";
            break;
        case 'K':
            key = "web_key";
            break;
        case 'R':
            key = "bundle_refresh_hint";
            break;
        default:
            return -2;
        }
        if (n == sizeof(keys) / sizeof(keys[0])) {
            return -2;
        }
        keys[n] = key;
        vals[n++] = optarg;
    }
    if (optind != argc) {
        return -2;
    }
    config_defaults(&cfg);
    if (config_path != NULL && config_load_file(&cfg, config_path, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, "config");
    }
    if ((c->data_explicit || config_path == NULL) &&
        config_set(&cfg, "data_dir", c->data_dir, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, NULL);
    }
    for (i = 0; i < n; i++) {
        if (config_set(&cfg, keys[i], vals[i], &c->err) < 0) {
            c->err.code = LY_ERR_USAGE;
            return fail(c, NULL);
        }
    }
    if (config_finish(&cfg, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, NULL);
    }
    return server_run(&cfg, config_path);
}

static int cmd_server_status(struct cli *c, int argc, char **argv)
{
    json_t *res = NULL;
    int json = 0;
    int rc;

    if (json_data_opts(c, argc, argv, &json) < 0) {
        return -2;
    }
    rc = try_admin(c, "status", NULL, &res);
    if (rc < 0) {
        return fail(c, "server status");
    }
    if (rc == 0) {
        ly_error_setx(&c->err, LY_ERR_IO, 0, "no lanyard server is running on %s", c->data_dir);
        return fail(c, "server status");
    }
    if (json) {
        char *text = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (text != NULL) {
            printf("%s\n", text);
            free(text);
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(res, k, v) {
            if (json_is_string(v)) {
                printf("%s: %s\n", k, json_string_value(v));
            } else if (json_is_integer(v)) {
                printf("%s: %lld\n", k, (long long)json_integer_value(v));
            }
        }
    }
    json_decref(res);
    return write_stdout(NULL, 0);
}

/* ---- helper ------------------------------------------------------------------------------ */

static int helper_usage(const char *msg)
{
    fprintf(stderr, "lanyard helper: %s\n(see 'lanyard helper run --help')\n", msg);
    return 2;
}

static int cmd_helper(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'D'},
        {"jwt-audience", required_argument, NULL, 'a'},
        {"cmd", required_argument, NULL, 'c'},
        {"cmd-timeout", required_argument, NULL, 'T'},
        {"signal", required_argument, NULL, 'S'},
        {"pid", required_argument, NULL, 'p'},
        {"pid-file", required_argument, NULL, 'P'},
        {"once", no_argument, NULL, 'o'},
        {"log-level", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const char *aud[HELPER_MAX_AUDIENCES];
    const char *socket_arg = NULL;
    const char *pid_arg = NULL;
    char sock[4096];
    struct helper_config cfg;
    enum log_level level;
    int64_t t;
    int o;

    memset(&cfg, 0, sizeof(cfg));
    cfg.audiences = aud;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            socket_arg = optarg;
            break;
        case 'D':
            cfg.dir = optarg;
            break;
        case 'a':
            if (cfg.n_audiences == HELPER_MAX_AUDIENCES) {
                return helper_usage("at most 16 --jwt-audience flags");
            }
            aud[cfg.n_audiences++] = optarg;
            break;
        case 'c':
            cfg.cmd = optarg;
            break;
        case 'T':
            if (parse_duration_opt(c, "--cmd-timeout", optarg, &t) < 0) {
                return fail(c, NULL);
            }
            cfg.cmd_timeout_ms = (long)(t > 3600 ? 3600 : t) * 1000;
            break;
        case 'S':
            if (helper_signal_parse(optarg, &cfg.signal, &c->err) < 0) {
                return fail(c, "--signal");
            }
            break;
        case 'p':
            pid_arg = optarg;
            break;
        case 'P':
            cfg.pid_file = optarg;
            break;
        case 'o':
            cfg.once = 1;
            break;
        case 'l':
            if (log_level_parse(optarg, &level) < 0) {
                return helper_usage("--log-level must be debug, info, warn or error");
            }
            log_set_level(level);
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (socket_arg == NULL) {
        socket_arg = getenv("SPIFFE_ENDPOINT_SOCKET");
        if (socket_arg == NULL || socket_arg[0] == '\0') {
            return helper_usage("no Workload API socket: give --socket PATH or set "
                                "SPIFFE_ENDPOINT_SOCKET");
        }
    }
    if (helper_endpoint_parse(socket_arg, sock, sizeof(sock), &c->err) < 0) {
        return fail(c, "--socket");
    }
    cfg.socket_path = sock;
    if (cfg.dir == NULL || cfg.dir[0] == '\0') {
        return helper_usage("--dir DIR is required (where the files are written)");
    }
    if (pid_arg != NULL && cfg.pid_file != NULL) {
        return helper_usage("give --pid or --pid-file, not both");
    }
    if (pid_arg != NULL &&
        helper_pid_parse(pid_arg, strlen(pid_arg), &cfg.pid, &c->err) < 0) {
        c->err.code = LY_ERR_USAGE;
        return fail(c, "--pid");
    }
    if (cfg.signal != 0 && pid_arg == NULL && cfg.pid_file == NULL) {
        return helper_usage("--signal needs --pid PID or --pid-file FILE");
    }
    if (cfg.signal == 0 && (pid_arg != NULL || cfg.pid_file != NULL)) {
        return helper_usage("--pid and --pid-file need --signal SIG");
    }
    if (helper_run(&cfg, &c->err) < 0) {
        return fail(c, "helper");
    }
    return 0;
}


static int audit_path(struct cli *c, char *path, size_t pathsz);

/* ---- gateway ----------------------------------------------------------------------------- */

static int gateway_usage(const char *msg)
{
    fprintf(stderr, "lanyard gateway: %s\n(see 'lanyard gateway --help')\n", msg);
    return 2;
}

/* A non-negative decimal number of at most max; -1 otherwise. */
static int parse_count(const char *v, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long n;

    if (v == NULL || v[0] < '0' || v[0] > '9') {
        return -1;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}

static int cmd_gateway(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"client", no_argument, NULL, 'C'},
        {"listen", required_argument, NULL, 'L'},
        {"upstream", required_argument, NULL, 'U'},
        {"audience", required_argument, NULL, 'A'},
        {"id", required_argument, NULL, 'i'},
        {"server-id", required_argument, NULL, 'S'},
        {"socket", required_argument, NULL, 's'},
        {"audit", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 't'},
        {"allow-no-user", no_argument, NULL, 'N'},
        {"token-leeway", required_argument, NULL, 'W'},
        {"max-body", required_argument, NULL, 'B'},
        {"max-conns", required_argument, NULL, 'M'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"ready-fd", required_argument, NULL, 'R'},
        {"log-level", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct gateway_config cfg;
    const char *socket_arg = NULL;
    char sock[4096];
    char store[4096];
    char audit[4096];
    enum log_level level;
    unsigned long long n;
    int64_t t;
    int o;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.max_body = GATEWAY_MAX_BODY_DEFAULT;
    cfg.max_conns = GATEWAY_MAX_CONNS_DEFAULT;
    cfg.idle_timeout_ms = GATEWAY_IDLE_TIMEOUT_DEFAULT_MS;
    cfg.token_leeway = TOKEN_LEEWAY_DEFAULT;
    cfg.ready_fd = -1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'C':
            cfg.client_mode = 1;
            break;
        case 'L':
            cfg.listen = optarg;
            break;
        case 'U':
            cfg.upstream = optarg;
            break;
        case 'A':
            cfg.audience = optarg;
            break;
        case 'i':
            cfg.want_id = optarg;
            break;
        case 'S':
            cfg.server_id = optarg;
            break;
        case 's':
            socket_arg = optarg;
            break;
        case 'a':
            cfg.audit_path = optarg;
            break;
        case 't':
            cfg.token_file = optarg;
            break;
        case 'N':
            cfg.allow_no_user = 1;
            break;
        case 'W':
            if (parse_duration_opt(c, "--token-leeway", optarg, &t) < 0 && strcmp(optarg, "0")) {
                return fail(c, NULL);
            }
            ly_error_clear(&c->err);
            cfg.token_leeway = strcmp(optarg, "0") == 0 ? 0 : t;
            break;
        case 'B':
            if (parse_count(optarg, 64ull * 1024 * 1024, &n) < 0 || n == 0) {
                return gateway_usage("--max-body must be a number of bytes, 1 to 67108864");
            }
            cfg.max_body = (size_t)n;
            break;
        case 'M':
            if (parse_count(optarg, 65536, &n) < 0 || n == 0) {
                return gateway_usage("--max-conns must be 1..65536");
            }
            cfg.max_conns = (int)n;
            break;
        case 'I':
            if (parse_duration_opt(c, "--idle-timeout", optarg, &t) < 0) {
                return fail(c, NULL);
            }
            if (t < 1 || t > 86400) {
                return gateway_usage("--idle-timeout must be 1s to 1d");
            }
            cfg.idle_timeout_ms = (int)t * 1000;
            break;
        case 'R':
            if (parse_count(optarg, 65535, &n) < 0 || n < 3) {
                return gateway_usage("--ready-fd must be an open descriptor >= 3");
            }
            cfg.ready_fd = (int)n;
            break;
        case 'l':
            if (log_level_parse(optarg, &level) < 0) {
                return gateway_usage("--log-level must be debug, info, warn or error");
            }
            log_set_level(level);
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (cfg.listen == NULL || cfg.upstream == NULL) {
        return gateway_usage("--listen HOST:PORT and --upstream URL are required");
    }
    if (cfg.client_mode && cfg.server_id == NULL) {
        return gateway_usage("--client needs --server-id SPIFFE_ID (who the server must be)");
    }
    if (!cfg.client_mode && cfg.audience == NULL) {
        return gateway_usage("server mode needs --audience AUD (the aud its tokens carry)");
    }
    /* The Workload API: --socket, else SPIFFE_ENDPOINT_SOCKET, else the data directory's. */
    if (socket_arg == NULL) {
        socket_arg = getenv("SPIFFE_ENDPOINT_SOCKET");
    }
    if (socket_arg != NULL && socket_arg[0] != '\0') {
        if (helper_endpoint_parse(socket_arg, sock, sizeof(sock), &c->err) < 0) {
            return fail(c, "--socket");
        }
    } else if (snprintf(sock, sizeof(sock), "%s/workload.sock", c->data_dir) >=
               (int)sizeof(sock)) {
        return gateway_usage("data directory path too long");
    }
    cfg.socket_path = sock;
    if (!cfg.client_mode) {
        if (snprintf(store, sizeof(store), "%s/lanyard.db", c->data_dir) >= (int)sizeof(store)) {
            return gateway_usage("data directory path too long");
        }
        cfg.store_path = store;
        if (cfg.audit_path == NULL) {
            if (audit_path(c, audit, sizeof(audit)) < 0) {
                return fail(c, NULL);
            }
            cfg.audit_path = audit;
        }
    }
    if (ly_secret_disable_core_dumps(&c->err) < 0) {
        return fail(c, "gateway");
    }
    rc = gateway_run(&cfg, &c->err);
    if (rc < 0) {
        return fail(c, "gateway");
    }
    return 0;
}

/* ---- audit ------------------------------------------------------------------------------- */

/* DATA/audit.log, or a usage error when the path does not fit. */
static int audit_path(struct cli *c, char *path, size_t pathsz)
{
    int n = snprintf(path, pathsz, "%s/audit.log", c->data_dir);

    if (n < 0 || (size_t)n >= pathsz) {
        return ly_error_setx(&c->err, LY_ERR_USAGE, 0, "data directory path too long");
    }
    return 0;
}

struct audit_list_ctx {
    struct ly_buf *out;
    int json;
    size_t n;
    struct ly_error *err;
};

/* One record as a text line (odd bytes escaped) or as a JSON array element. */
static int audit_list_cb(const struct audit_record *r, void *arg)
{
    struct audit_list_ctx *x = arg;
    const char *vals[5];
    const char *names[5] = {"user", "target", "reason", "consent", "cert"};
    size_t i;
    int rc;

    if (x->json) {
        char *s = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s == NULL) {
            return ly_error_setx(x->err, LY_ERR_NOMEM, 0, "out of memory");
        }
        rc = ly_buf_append_str(x->out, x->n == 0 ? "\n" : ",\n", x->err);
        if (rc == 0) {
            rc = ly_buf_append_str(x->out, s, x->err);
        }
        free(s);
        x->n++;
        return rc;
    }
    vals[0] = r->user;
    vals[1] = r->target;
    vals[2] = r->reason;
    vals[3] = r->consent_id;
    vals[4] = r->cert_sha256;
    {
        char cid[1024];
        char meth[256];
        rc = ly_buf_appendf(x->out, x->err, "%" PRIu64 " %s %s %s %s", r->seq, r->time_str,
                            r->decision,
                            ly_text_escape(r->client_id, strlen(r->client_id), 512, cid,
                                           sizeof(cid)),
                            ly_text_escape(r->method, strlen(r->method), 128, meth,
                                           sizeof(meth)));
    }
    for (i = 0; rc == 0 && i < 5; i++) {
        char v[1024];
        if (vals[i] == NULL) {
            continue;
        }
        rc = ly_buf_appendf(x->out, x->err, " %s=%s", names[i],
                            ly_text_escape(vals[i], strlen(vals[i]), 512, v, sizeof(v)));
    }
    if (rc == 0) {
        rc = ly_buf_append_str(x->out, "\n", x->err);
    }
    x->n++;
    return rc;
}

static int cmd_audit_list(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"since", required_argument, NULL, 's'},
        {"client", required_argument, NULL, 'c'},
        {"user", required_argument, NULL, 'u'},
        {"decision", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct audit_filter f;
    struct audit_list_ctx x;
    struct ly_buf out;
    char path[4096];
    int json = 0;
    int o;
    int rc;

    memset(&f, 0, sizeof(f));
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': {
            struct ly_error e;
            int64_t d;
            ly_error_clear(&e);
            /* An RFC 3339 instant, or a duration back from now ("1h"). */
            if (ly_time_parse_rfc3339(optarg, &f.since, &e) == 0) {
                break;
            }
            if (parse_duration_opt(c, "--since (an RFC 3339 time or a duration)", optarg, &d) <
                0) {
                return fail(c, NULL);
            }
            f.since = ly_time_now() - d;
            break;
        }
        case 'c':
            f.client_id = optarg;
            break;
        case 'u':
            f.user = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "allow") != 0 && strcmp(optarg, "deny") != 0) {
                (void)ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--decision must be allow or deny");
                return fail(c, NULL);
            }
            f.decision = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'd':
            c->data_dir = optarg;
            break;
        default:
            return -2;
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (audit_path(c, path, sizeof(path)) < 0) {
        return fail(c, "audit list");
    }
    ly_buf_init(&out, (size_t)1 << 30);
    memset(&x, 0, sizeof(x));
    x.out = &out;
    x.json = json;
    x.err = &c->err;
    rc = json ? ly_buf_append_str(&out, "[", &c->err) : 0;
    if (rc == 0) {
        rc = audit_scan(path, &f, audit_list_cb, &x, NULL, &c->err);
    }
    if (rc < 0 && c->err.code != LY_ERR_VERIFY) {
        ly_buf_free(&out);
        return fail(c, "audit list");
    }
    /* On a broken chain, print the records before the break, then say where it broke. */
    if (json && ly_buf_append_str(&out, x.n > 0 ? "\n]\n" : "]\n", &c->err) < 0) {
        return fail(c, "audit list");
    }
    o = print_buf(&out);
    if (rc < 0) {
        return fail(c, "audit list: chain broken (run 'lanyard audit verify')");
    }
    return o;
}

static int cmd_audit_verify(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct audit_scan_info info;
    char path[4096];
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o != 'd') {
            return -2;
        }
        c->data_dir = optarg;
    }
    if (optind != argc) {
        return -2;
    }
    if (audit_path(c, path, sizeof(path)) < 0) {
        return fail(c, "audit verify");
    }
    if (audit_scan(path, NULL, NULL, NULL, &info, &c->err) < 0) {
        if (c->err.code == LY_ERR_VERIFY) {
            fprintf(stderr, "lanyard: audit verify: %" PRIu64 " records intact before the break\n",
                    info.records);
        }
        return fail(c, "audit verify");
    }
    printf("%" PRIu64 " records, chain intact\n", info.records);
    return write_stdout(NULL, 0);
}

/* ---- token ------------------------------------------------------------------------------- */

/*
 * The SHA-256 a token binds to (RFC 8705 §3.1) of the first certificate in a PEM or DER file,
 * so a chain file names its leaf. The file is read as a secret: it may also hold the key.
 */
static int cert_file_sha256(struct cli *c, const char *flag, const char *path, uint8_t out[32])
{
    struct x509svid_chain *chain = NULL;
    struct ly_buf file;
    const uint8_t *der;
    size_t len = 0;
    int rc;

    rc = ly_file_read(path, LY_FILE_MAX_DEFAULT, 1, &file, &c->err);
    if (rc < 0) {
        (void)ly_error_wrap(&c->err, "%s", flag);
        return rc;
    }
    rc = x509svid_chain_parse(file.data, file.len, &chain, &c->err);
    ly_buf_free(&file);
    if (rc < 0) {
        (void)ly_error_wrap(&c->err, "%s %s", flag, path);
        return rc;
    }
    der = x509svid_chain_cert(chain, 0, &len);
    if (der == NULL) {
        rc = ly_error_setx(&c->err, LY_ERR_PARSE, 0, "%s %s holds no certificate", flag, path);
    } else {
        rc = token_cert_sha256(der, len, out, &c->err);
    }
    x509svid_chain_free(chain);
    return rc;
}

/*
 * The data directory's current JWT signing key and its kid: the newest JWT key recorded as
 * active, whose key file must match the recorded public key. This is the key ca_open() loads
 * for `jwt mint`, which ca.h does not hand out. td receives the trust domain.
 */
static int load_jwt_signer(struct cli *c, struct svid_key **key, char *kid, size_t kidsz, char *td,
                           size_t tdsz)
{
    struct store *st = NULL;
    struct store_jwt_key *jks = NULL;
    size_t n_jks = 0;
    struct ly_buf pem;
    char path[4096];
    size_t i;
    int n;
    int rc;

    *key = NULL;
    rc = open_entry_store(c, &st, td, tdsz);
    if (rc < 0) {
        return rc;
    }
    rc = store_jwt_key_list(st, &jks, &n_jks, &c->err);
    if (rc < 0) {
        goto done;
    }
    for (i = 0; i < n_jks; i++) {
        if (strcmp(jks[i].status, "active") == 0) {
            break;
        }
    }
    if (i == n_jks) {
        rc = ly_error_setx(&c->err, LY_ERR_IO, 0, "no active JWT key recorded in %s",
                           c->data_dir);
        goto done;
    }
    n = snprintf(path, sizeof(path), "%s/%s", c->data_dir, jks[i].key_file);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        rc = ly_error_setx(&c->err, LY_ERR_USAGE, 0, "data directory path too long");
        goto done;
    }
    n = snprintf(kid, kidsz, "%s", jks[i].kid);
    if (n < 0 || (size_t)n >= kidsz) {
        rc = ly_error_setx(&c->err, LY_ERR_IO, 0, "database: JWT key id too long");
        goto done;
    }
    rc = ly_file_read(path, 64 * 1024, 1, &pem, &c->err);
    if (rc < 0) {
        goto done;
    }
    rc = svid_key_parse(pem.data, pem.len, key, &c->err);
    ly_buf_free(&pem);
    if (rc < 0) {
        (void)ly_error_wrap(&c->err, "JWT key file %s", path);
        goto done;
    }
    if (!svid_key_matches_public(*key, jks[i].spki, jks[i].spki_len)) {
        svid_key_free(*key);
        *key = NULL;
        rc = ly_error_setx(&c->err, LY_ERR_IO, 0, "JWT key file %s does not match its record",
                           jks[i].key_file);
        goto done;
    }
    rc = 0;
done:
    store_jwt_key_list_free(jks, n_jks);
    store_close(st);
    return rc;
}

/* A flag given twice is an error rather than a silent "last one wins". */
static int token_flag_once(struct cli *c, const char **slot, const char *flag, const char *v)
{
    if (*slot != NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "give %s only once", flag);
        return -1;
    }
    *slot = v;
    return 0;
}

/* --client: a workload's SPIFFE ID (with a path), as the token names it. */
static int parse_client_opt(struct cli *c, const char *v, struct spiffeid *id)
{
    if (parse_id_opt(c, "--client", v, id) < 0) {
        return -1;
    }
    if (spiffeid_is_root(id)) {
        ly_error_setx(&c->err, LY_ERR_PARSE, 0,
                      "--client %s names the trust domain itself; a client's SPIFFE ID needs a "
                      "path such as %s/mcp/client",
                      id->str, id->str);
        return -1;
    }
    return 0;
}

static int cmd_token_mint(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"client", required_argument, NULL, 'c'},
        {"audience", required_argument, NULL, 'a'},
        {"bind-cert", required_argument, NULL, 'b'},
        {"ttl", required_argument, NULL, 'T'},
        {"at", required_argument, NULL, 't'},
        {"data", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL;
    int64_t at = ly_time_now();
    const char *client_arg = NULL;
    const char *aud = NULL;
    const char *cert_path = NULL;
    int64_t ttl = TOKEN_TTL_DEFAULT;
    struct spiffeid client;
    struct svid_key *key = NULL;
    struct ly_error uerr;
    uint8_t cert_sha256[32];
    char kid[BUNDLE_KID_MAX + 1];
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_buf tok;
    int rc;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            rc = token_flag_once(c, &user, "--user", optarg);
            break;
        case 'c':
            rc = token_flag_once(c, &client_arg, "--client", optarg);
            break;
        case 'a':
            rc = token_flag_once(c, &aud, "--audience", optarg);
            break;
        case 'b':
            rc = token_flag_once(c, &cert_path, "--bind-cert", optarg);
            break;
        case 'T':
            rc = parse_duration_opt(c, "--ttl", optarg, &ttl);
            break;
        case 't':
            rc = parse_at_opt(c, optarg, &at);
            break;
        case 'd':
            c->data_dir = optarg;
            rc = 0;
            break;
        default:
            return -2;
        }
        if (rc < 0) {
            return fail(c, NULL);
        }
    }
    if (optind != argc) {
        return -2;
    }
    if (user == NULL || client_arg == NULL || aud == NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "token mint needs --user, --client and --audience");
        return fail(c, NULL);
    }
    ly_error_clear(&uerr);
    if (user[0] == '\0') {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--user must not be empty: a token is a user's");
        return fail(c, NULL);
    }
    if (consent_user_validate(user, &uerr) < 0) {
        ly_error_setx(&c->err, uerr.code, uerr.reason, "--user: %s", uerr.msg);
        return fail(c, NULL);
    }
    if (parse_client_opt(c, client_arg, &client) < 0) {
        return fail(c, NULL);
    }
    if (aud[0] == '\0' || strlen(aud) > TOKEN_AUD_MAX) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--audience must be 1..%d bytes", TOKEN_AUD_MAX);
        return fail(c, NULL);
    }
    if (ttl < TOKEN_TTL_MIN || ttl > TOKEN_TTL_MAX) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--ttl must be between %d s and %d s",
                      TOKEN_TTL_MIN, TOKEN_TTL_MAX);
        return fail(c, NULL);
    }
    if (cert_path != NULL && cert_file_sha256(c, "--bind-cert", cert_path, cert_sha256) < 0) {
        return fail(c, NULL);
    }
    if (load_jwt_signer(c, &key, kid, sizeof(kid), td, sizeof(td)) < 0) {
        return fail(c, "token mint");
    }
    rc = token_mint(key, kid, td, user, &client, aud, cert_path != NULL ? cert_sha256 : NULL,
                    at, ttl, &tok, &c->err);
    svid_key_free(key);
    if (rc < 0) {
        return fail(c, "token mint");
    }
    rc = write_stdout(tok.data, tok.len);
    if (rc == 0) {
        rc = write_stdout("\n", 1);
    }
    ly_buf_free(&tok);
    return rc;
}

/*
 * Take --client and --cert (also as --flag=VALUE) out of argv so that the remaining options
 * go through parse_verify_opts() like `jwt verify`'s. The values of that parser's own options
 * are passed through untouched, as is everything after "--". rest has room for argc + 1.
 */
static int take_token_verify_opts(struct cli *c, int argc, char **argv, const char **client,
                                  const char **cert, char **rest, int *n_rest)
{
    static const char *const valued[] = {"--bundle", "--audience", "--at", "--data"};
    int saw_audience = 0;
    int n = 0;
    int i;
    size_t k;

    *client = NULL;
    *cert = NULL;
    rest[n++] = argv[0];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *flag = NULL;
        const char *val = NULL;

        if (strcmp(a, "--") == 0) {
            while (i < argc) {
                rest[n++] = argv[i++];
            }
            break;
        }
        if (strcmp(a, "--client") == 0 || strncmp(a, "--client=", 9) == 0) {
            slot = client;
            flag = "--client";
            val = a[8] == '=' ? a + 9 : NULL;
        } else if (strcmp(a, "--cert") == 0 || strncmp(a, "--cert=", 7) == 0) {
            slot = cert;
            flag = "--cert";
            val = a[6] == '=' ? a + 7 : NULL;
        }
        if (slot == NULL) {
            saw_audience |= strcmp(a, "--audience") == 0 || strncmp(a, "--audience=", 11) == 0;
            rest[n++] = argv[i];
            for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
                if (strcmp(a, valued[k]) == 0 && i + 1 < argc) {
                    rest[n++] = argv[++i];
                    break;
                }
            }
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                ly_error_setx(&c->err, LY_ERR_USAGE, 0, "%s needs a value", flag);
                return -1;
            }
            val = argv[++i];
        }
        if (token_flag_once(c, slot, flag, val) < 0) {
            return -1;
        }
    }
    if (!saw_audience) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--audience is required: the audience of the server the token is for");
        return -1;
    }
    rest[n] = NULL;
    *n_rest = n;
    return 0;
}

/* A refused token: exit 1 with the stable reason name, then what exactly was wrong. */
static int token_rejected(struct cli *c)
{
    if (c->err.code != LY_ERR_VERIFY && c->err.code != LY_ERR_PARSE) {
        return fail(c, NULL);
    }
    fprintf(stderr, "lanyard: rejected: %s: %s\n", token_reason_name(c->err.reason), c->err.msg);
    return ly_error_exit_code(c->err.code);
}

static int cmd_token_verify(struct cli *c, int argc, char **argv)
{
    struct verify_opts v;
    struct bundle_set *set = NULL;
    struct token_claims *claims = NULL;
    const char *client_arg = NULL;
    const char *cert_path = NULL;
    char **rest = NULL;
    int n_rest = 0;
    struct spiffeid client;
    uint8_t cert_sha256[32];
    char tbuf[48];
    char hex[2 * 32 + 1];
    struct ly_buf tok;
    int rc;

    ly_buf_init(&tok, 0);
    rest = calloc((size_t)argc + 1, sizeof(*rest));
    claims = calloc(1, sizeof(*claims));
    if (rest == NULL || claims == NULL) {
        ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
        rc = fail(c, NULL);
        goto done;
    }
    if (take_token_verify_opts(c, argc, argv, &client_arg, &cert_path, rest, &n_rest) < 0) {
        rc = fail(c, NULL);
        goto done;
    }
    rc = parse_verify_opts(c, n_rest, rest, 1, &v);
    if (rc != 0) {
        goto done;
    }
    if (client_arg == NULL) {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0,
                      "--client is required: the SPIFFE ID of the client presenting the token");
        rc = fail(c, NULL);
        goto done;
    }
    if (v.audience[0] == '\0') {
        ly_error_setx(&c->err, LY_ERR_USAGE, 0, "--audience must not be empty");
        rc = fail(c, NULL);
        goto done;
    }
    if (parse_client_opt(c, client_arg, &client) < 0) {
        rc = fail(c, NULL);
        goto done;
    }
    if (cert_path != NULL && cert_file_sha256(c, "--cert", cert_path, cert_sha256) < 0) {
        rc = fail(c, NULL);
        goto done;
    }
    if (read_token_arg(c, rest[optind], &tok) < 0) {
        rc = fail(c, NULL);
        goto done;
    }
    if (load_bundle_set(c, v.specs, v.n_specs, v.at, &set) < 0) {
        rc = fail(c, NULL);
        goto done;
    }
    if (token_verify_signed((const char *)tok.data, tok.len, set, claims, &c->err) < 0) {
        rc = token_rejected(c);
        goto done;
    }
    if (cert_path != NULL) {
        rc = token_check(claims, v.audience, &client, cert_sha256, v.at, TOKEN_LEEWAY_DEFAULT,
                         &c->err);
    } else {
        /* Every other check first, on a copy without the binding; then refuse a bound token,
         * whose certificate was not presented. */
        struct token_claims *unbound = malloc(sizeof(*unbound));

        if (unbound == NULL) {
            ly_error_setx(&c->err, LY_ERR_NOMEM, 0, "out of memory");
            rc = fail(c, NULL);
            goto done;
        }
        *unbound = *claims;
        unbound->has_cnf = 0;
        memset(cert_sha256, 0, sizeof(cert_sha256));
        rc = token_check(unbound, v.audience, &client, cert_sha256, v.at, TOKEN_LEEWAY_DEFAULT,
                         &c->err);
        free(unbound);
        if (rc == 0 && claims->has_cnf) {
            ly_hex_encode(claims->x5t_s256, sizeof(claims->x5t_s256), hex);
            rc = ly_error_setx(&c->err, LY_ERR_VERIFY, TOKEN_R_WRONG_CERT,
                               "token is bound to a certificate (sha256 %s) that was not "
                               "presented; pass it with --cert FILE",
                               hex);
        }
    }
    if (rc < 0) {
        rc = token_rejected(c);
        goto done;
    }
    if (ly_time_format_rfc3339(claims->exp, tbuf, sizeof(tbuf), NULL) < 0) {
        (void)snprintf(tbuf, sizeof(tbuf), "%lld", (long long)claims->exp);
    }
    printf("%s\nissuer: spiffe://%s\nclient: %s\nexpires: %s\n", claims->user, claims->issuer_td,
           claims->client.str, tbuf);
    if (claims->has_cnf) {
        ly_hex_encode(claims->x5t_s256, sizeof(claims->x5t_s256), hex);
        printf("bound-cert-sha256: %s\n", hex);
    }
    rc = write_stdout(NULL, 0);
done:
    ly_buf_free(&tok);
    bundle_set_free(set);
    free(claims);
    free(rest);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static const struct cli_cmd commands[] = {
    {"id", "parse", "id parse SPIFFE_ID",
     "Check a SPIFFE ID; print its trust domain and path, or why it is invalid.", cmd_id_parse},
    {"server", "run",
     "server [run] [--config FILE] [--trust-domain TD] [--workload-socket PATH] "
     "[--admin-socket PATH] [--health-listen HOST:PORT] [--log-level LEVEL] "
     "[--bundle-endpoint HOST:PORT [--bundle-endpoint-profile https_spiffe|https_web "
     "--web-cert FILE --web-key FILE] [--bundle-refresh-hint DURATION]]",
     "Run the broker daemon in the foreground: the SPIFFE Workload API, the admin socket and\n"
     "  the health endpoint, with automatic SVID and CA rotation. JSON log lines on stderr.\n"
     "  SIGTERM/SIGINT stop it cleanly; SIGHUP re-reads the config file's log level and TTLs\n"
     "  and the bundle endpoint's web certificate.\n"
     "  With --trust-domain, an empty data directory is initialised first.\n"
     "  Federation: --bundle-endpoint serves this trust domain's bundle (SPIFFE bundle JSON)\n"
     "  over HTTPS, authenticated by an SVID the server keeps for spiffe://TD/lanyard/server\n"
     "  (https_spiffe, the default) or by --web-cert/--web-key (https_web); the bundle carries\n"
     "  --bundle-refresh-hint (default 5m), and a rotated CA then signs only one refresh hint\n"
     "  after it was published, so federated domains hold it first. The server also fetches\n"
     "  the bundle of every trust domain added with 'federation add', at a quarter of its\n"
     "  refresh hint, keeping the last good one when an endpoint fails or serves one it refuses.",
     cmd_server},
    {"server", "status", "server status [--json]",
     "Ask the running daemon (through its admin socket) for its status.", cmd_server_status},
    {"ca", "init",
     "ca init --trust-domain TD [--key-type ec-p256|ed25519] [--ca-ttl DURATION]",
     "Create this data directory's trust domain: CA key and certificate, JWT signing key.\n"
     "  Refuses to overwrite an existing CA. Default CA lifetime 30d.",
     cmd_ca_init},
    {"ca", "rotate", "ca rotate",
     "Rotate the X.509 CA now: the next CA (published in the bundle) starts signing; the\n"
     "  old one stays in the bundle until every SVID it signed has expired. With a server\n"
     "  running this takes two steps: the next CA is published at once (the new bundle is\n"
     "  pushed on every open Workload API stream) and signs only 2 s later, when SVIDs are\n"
     "  re-issued from it; the command returns after that. Without a server it signs at once\n"
     "  (no client is connected to be told first). The daemon also rotates on its own: next\n"
     "  CA published at 1/2 of the CA lifetime, signing at 5/6.",
     cmd_ca_rotate},
    {"svid", "mint",
     "svid mint --id SPIFFE_ID [--ttl DURATION] [--csr FILE] [--dns NAME]... "
     "--out-cert FILE [--out-key FILE] [--key-type ec-p256|ed25519]",
     "Issue an X509-SVID signed by this trust domain's CA (default TTL 1h).\n"
     "  With --csr the CSR's public key is certified and no key is written; otherwise a\n"
     "  fresh key is generated and written to --out-key (PKCS#8 PEM, mode 0600).",
     cmd_svid_mint},
    {"svid", "verify", "svid verify [--bundle TD=FILE]... [--at RFC3339] CHAIN_PEM",
     "Verify an X509-SVID chain (leaf first) against the bundle of the leaf's trust domain.\n"
     "  FILE is a PEM bundle or a SPIFFE bundle JSON; without --bundle the local CA's bundle.\n"
     "  Accepted: exit 0, first line the SPIFFE ID. Rejected: exit 1, reason on stderr.",
     cmd_svid_verify},
    {"bundle", "show", "bundle show [--format spiffe|pem] [--trust-domain TD]",
     "Print this trust domain's trust bundle (SPIFFE bundle JSON by default). With\n"
     "  --trust-domain naming another trust domain, print its federated bundle as stored\n"
     "  (fetched from its bundle endpoint, its bootstrap bundle, or set with bundle set).",
     cmd_bundle_show},
    {"bundle", "parse", "bundle parse --trust-domain TD FILE",
     "Parse a bundle file (PEM or SPIFFE JSON) and print a JSON summary of it.",
     cmd_bundle_parse},
    {"bundle", "set", "bundle set --trust-domain TD FILE",
     "Set a static federated bundle for another trust domain: FILE (SPIFFE bundle JSON or PEM;\n"
     "  - for standard input) is stored as SPIFFE bundle JSON and sent to the workloads of\n"
     "  entries created with --federates-with TD. Replaces an earlier static bundle. Refused:\n"
     "  this data directory's own trust domain, a file that does not parse or holds no\n"
     "  authority, X.509 authorities of another trust domain, and a trust domain that has a\n"
     "  federation relationship (its bundle is fetched; delete the relationship first).",
     cmd_bundle_set},
    {"bundle", "list", "bundle list [--json]",
     "List the trust bundles: this trust domain's own (source local) and every federated one\n"
     "  (source endpoint, bootstrap or static), one line each (trust domain, source, sequence,\n"
     "  X.509 and JWT authority counts, last update) or a JSON array.",
     cmd_bundle_list},
    {"bundle", "delete", "bundle delete --trust-domain TD",
     "Delete the static federated bundle of TD (one set with bundle set). The bundle of a\n"
     "  federation relationship goes only with it (federation delete); this trust domain's own\n"
     "  bundle cannot be deleted.",
     cmd_bundle_delete},
    {"federation", "add",
     "federation add --trust-domain TD --url URL --profile https_web [--ca FILE] | "
     "federation add --trust-domain TD --url URL --profile https_spiffe --endpoint-id SPIFFE_ID "
     "--bootstrap-bundle FILE",
     "Federate with another trust domain: its bundle is fetched from its bundle endpoint URL\n"
     "  (https:// with a host; no user info, no fragment) by the running server. Profiles\n"
     "  (SPIFFE Trust Domain and Bundle 5.2): https_web authenticates the endpoint by its web\n"
     "  PKI certificate, against the system's CAs or the PEM certificates of --ca FILE;\n"
     "  https_spiffe by its X509-SVID, which must be --endpoint-id (a SPIFFE ID with a path in\n"
     "  TD) and verify against TD's bundle, starting from --bootstrap-bundle FILE (SPIFFE\n"
     "  bundle JSON or PEM, with at least one X.509 authority of TD), which is stored as TD's\n"
     "  bundle until the first fetch. Refuses this data directory's own trust domain and a\n"
     "  trust domain that already has a relationship or a static bundle.",
     cmd_federation_add},
    {"federation", "list", "federation list [--json]",
     "List the federation relationships by trust domain: one line each (trust domain,\n"
     "  profile, URL, endpoint ID, bundle source and sequence, X.509 and JWT authority counts,\n"
     "  last successful fetch, last error) or a JSON array.",
     cmd_federation_list},
    {"federation", "show", "federation show TD [--json]",
     "Show one federation relationship: its endpoint and profile, trust anchors, fetch state\n"
     "  (last attempt, last success, last error) and its bundle (source, sequence, refresh\n"
     "  hint, X.509 authorities with SHA-256 and subject, JWT authorities). Exit 1 when TD\n"
     "  has no relationship.",
     cmd_federation_show},
    {"federation", "delete", "federation delete TD",
     "Delete the federation relationship with TD and its bundle (one transaction). Entries\n"
     "  that federate with TD keep the name; their workloads no longer receive a bundle for it.",
     cmd_federation_delete},
    {"federation", "refresh", "federation refresh TD",
     "Fetch TD's bundle from its bundle endpoint now and print what happened: through the\n"
     "  running server when there is one (its workloads get a changed bundle at once), else\n"
     "  directly, with the same checks. A bundle that fails them is not stored (exit 1).",
     cmd_federation_refresh},
    {"jwt", "mint",
     "jwt mint --id SPIFFE_ID --audience AUD [--audience AUD]... [--ttl DURATION]",
     "Issue a JWT-SVID (ES256) signed by this trust domain's JWT key (default TTL 5m).",
     cmd_jwt_mint},
    {"jwt", "verify",
     "jwt verify [--bundle TD=FILE]... --audience AUD [--at RFC3339] TOKEN_OR_FILE",
     "Validate a JWT-SVID for the expected audience against the bundle of its subject's\n"
     "  trust domain. TOKEN_OR_FILE is the token, a file holding it, or - for stdin.\n"
     "  Accepted: exit 0, first line the subject. Rejected: exit 1, reason on stderr.",
     cmd_jwt_verify},
    {"token", "mint",
     "token mint --user U --client SPIFFE_ID --audience AUD [--bind-cert FILE] [--ttl DURATION] "
     "[--at RFC3339]",
     "Issue a user access token (JWT, typ at+jwt, ES256) signed by this trust domain's JWT key:\n"
     "  iss spiffe://TD, sub the user, aud the MCP server, azp and client_id the client's\n"
     "  SPIFFE ID, a random jti. --bind-cert binds it to a certificate (PEM or DER; the first\n"
     "  of a chain) through cnf.x5t#S256, the SHA-256 of its DER. Default TTL 15m (10s to 24h).\n"
     "  --at sets the issuing time (iat/nbf; default now), e.g. to test expiry handling.\n"
     "  Prints the token and nothing else.",
     cmd_token_mint},
    {"token", "verify",
     "token verify --audience AUD --client SPIFFE_ID [--cert FILE] [--bundle TD=FILE]... "
     "[--at RFC3339] TOKEN_OR_FILE",
     "Validate a user access token as the gateway does: typ at+jwt, alg, the key by kid in the\n"
     "  bundle of the issuer's trust domain, the signature, every claim's type, the audience,\n"
     "  exp/nbf (30 s leeway), the client, and the certificate binding (a bound token needs\n"
     "  --cert, the certificate the client presents). Without --bundle the local bundle.\n"
     "  Accepted: exit 0, the user on the first line, then issuer, client and expiry.\n"
     "  Rejected: exit 1 and the reason on stderr.",
     cmd_token_verify},
    {"entry", "create",
     "entry create --id SPIFFE_ID --selector S [--selector S]... [--ttl DURATION] "
     "[--dns NAME]... [--hint TEXT] [--federates-with TD]...",
     "Register a workload: the SPIFFE ID (in this trust domain) it gets when ALL selectors\n"
     "  hold. Selectors: unix:uid:N unix:gid:N unix:user:NAME unix:group:NAME\n"
     "  unix:supplementary_gid:N unix:supplementary_group:NAME unix:path:/ABS unix:sha256:HEX.\n"
     "  Default TTL 1h (10s to 30d). --federates-with TD (up to 32) also gives its workloads\n"
     "  the bundle of another trust domain TD (federation add or bundle set; it may be added\n"
     "  later); this trust domain itself is refused. Prints the new entry's id. An entry with\n"
     "  the same SPIFFE ID and selectors is refused.",
     cmd_entry_create},
    {"entry", "list", "entry list [--json]",
     "List registered entries, oldest first: one line each (id, SPIFFE ID, TTL, selectors,\n"
     "  federated trust domains) or a JSON array.",
     cmd_entry_list},
    {"entry", "show", "entry show ID [--json]", "Show one registered entry.", cmd_entry_show},
    {"entry", "delete", "entry delete ID", "Delete a registered entry.", cmd_entry_delete},
    {"consent", "grant",
     "consent grant (--user U | --no-user) --client SPIFFE_ID --scope S [--scope S]... "
     "[--expires DURATION] [--window HH:MM-HH:MM] [--source-td TD]... [--granted-by NAME]",
     "Record that a user (or, with --no-user, nobody: a workload-only grant) allows one client\n"
     "  SPIFFE ID these scopes: tools:NAME, prompts:NAME, resources:URI_PREFIX (a plain byte\n"
     "  prefix) or '*' for everything. --window is a UTC time window (may wrap midnight),\n"
     "  --source-td limits the trust domains requests may come from. Prints the record id.",
     cmd_consent_grant},
    {"consent", "revoke", "consent revoke ID | consent revoke (--user U | --no-user) --client ID",
     "Revoke one consent record, or every record of a user and client.", cmd_consent_revoke},
    {"consent", "list", "consent list [--user U] [--client ID] [--json]",
     "List consent records, oldest first: one line each or a JSON array.", cmd_consent_list},
    {"audit", "list",
     "audit list [--since RFC3339|DURATION] [--client ID] [--user U] [--decision allow|deny] "
     "[--json]",
     "List the policy decisions in DATA/audit.log, oldest first: one line each (seq, time,\n"
     "  decision, client, method, then user/target/reason/consent/cert) or a JSON array.\n"
     "  The chain is checked while reading; a broken record ends the list with exit 1.",
     cmd_audit_list},
    {"audit", "verify", "audit verify",
     "Check the hash chain of DATA/audit.log: exit 0 with 'N records, chain intact', or\n"
     "  exit 1 naming the first broken record (edited, deleted, reordered or truncated).",
     cmd_audit_verify},
    {"helper", "run",
     "helper [run] --socket PATH --dir DIR [--jwt-audience AUD]... [--cmd \"PROGRAM ARGS\"] "
     "[--cmd-timeout DURATION] [--signal SIG (--pid PID | --pid-file FILE)] [--once]",
     "Keep this process's SVIDs as files in DIR, from the Workload API at --socket\n"
     "  (unix:///PATH or a path; default $SPIFFE_ENDPOINT_SOCKET): svid.pem, svid.key (0600),\n"
     "  svid_bundle.pem (cert chain + key, 0600), bundle.pem, federated/TD.pem, svid_N.pem/.key\n"
     "  for further identities, jwt_svid_AUD.token (0600) per --jwt-audience. Each file is\n"
     "  replaced atomically; svid.key is replaced just before svid.pem, and svid_bundle.pem\n"
     "  always holds a matching pair. After each update the --cmd runs (no shell; default\n"
     "  timeout 30s) and/or SIG is sent. Reconnects with backoff (0.5s to 10s) and keeps the\n"
     "  last good files. --once: write once and exit (1 when this process has no identity).",
     cmd_helper},
    {"gateway", "run",
     "gateway [run] [--client] --listen HOST:PORT --upstream URL [--audience AUD] [--id ID] "
     "[--server-id ID] [--socket PATH] [--audit FILE] [--token-file FILE] [--allow-no-user] "
     "[--token-leeway DURATION] [--max-body BYTES] [--max-conns N] [--idle-timeout DURATION] "
     "[--log-level LEVEL]",
     "Run the MCP gateway in the foreground. Server mode (default) terminates TLS 1.3 mutual\n"
     "  TLS with this workload's SVID in front of an MCP server (--upstream http://HOST:PORT):\n"
     "  every client must present a valid X509-SVID; every request needs a bearer token for\n"
     "  --audience (lanyard token mint) and a consent record covering it (lanyard consent);\n"
     "  every decision goes to the audit log (default DATA/audit.log). Allowed requests reach\n"
     "  the upstream without the token, with X-Lanyard-Client-Id/-User/-Consent-Id headers.\n"
     "  --client: listen on loopback for plain HTTP from an MCP client and forward it over\n"
     "  mutual TLS (--upstream https://HOST:PORT) to a server whose SPIFFE ID is --server-id,\n"
     "  adding the token of --token-file when a request has none. The SVID comes from the\n"
     "  Workload API (--socket, $SPIFFE_ENDPOINT_SOCKET, else DATA/workload.sock); --id picks\n"
     "  one when the workload holds several. SIGTERM/SIGINT stop it. JSON log on stderr.",
     cmd_gateway},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_global_help(FILE *f)
{
    size_t i;

    fputs("lanyard " CLI_VERSION " - SPIFFE identities, mTLS and per-client consent for MCP\n\n"
          "usage: lanyard [--data DIR] COMMAND [OPTIONS]\n\n"
          "commands:\n",
          f);
    for (i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  lanyard %s\n", commands[i].usage);
    }
    fputs("\nglobal options:\n"
          "  --data DIR   data directory (default: $LANYARD_DATA, else ./lanyard-data)\n"
          "  --help       this help; 'lanyard COMMAND --help' for one command\n"
          "  --version    print the version\n\n"
          "durations: 90s, 15m, 1h, 7d or combinations such as 1h30m\n"
          "exit codes: 0 ok, 1 rejected or invalid input, 2 usage error, "
          "3 internal or I/O error\n",
          f);
}

static void print_cmd_help(FILE *f, const struct cli_cmd *cmd)
{
    fprintf(f, "usage: lanyard %s\n\n  %s\n\n  --data DIR   data directory (default: "
               "$LANYARD_DATA, else ./lanyard-data)\n",
            cmd->usage, cmd->summary);
}

static int print_group_help(FILE *f, const char *group)
{
    size_t i;
    int found = 0;

    for (i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].group, group) == 0) {
            if (!found) {
                fprintf(f, "usage: lanyard %s COMMAND [OPTIONS]\n\nlanyard %s commands:\n",
                        group, group);
            }
            fprintf(f, "  lanyard %s\n", commands[i].usage);
            found = 1;
        }
    }
    return found;
}

static int has_help_flag(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
        if (strcmp(argv[i], "--") == 0) {
            return 0;
        }
    }
    return 0;
}

int cli_main(int argc, char **argv)
{
    struct cli c;
    const char *env = getenv("LANYARD_DATA");
    int i = 1;
    size_t k;
    const char *group;

    memset(&c, 0, sizeof(c));
    c.data_dir = (env != NULL && env[0] != '\0') ? env : "./lanyard-data";
    c.data_explicit = env != NULL && env[0] != '\0';
    opterr = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--help") == 0) {
            print_global_help(stdout);
            return write_stdout(NULL, 0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("lanyard %s\n", CLI_VERSION);
            return write_stdout(NULL, 0);
        }
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            c.data_dir = argv[i + 1];
            c.data_explicit = 1;
            i += 2;
            continue;
        }
        if (strncmp(argv[i], "--data=", 7) == 0) {
            c.data_dir = argv[i] + 7;
            c.data_explicit = 1;
            i++;
            continue;
        }
        fprintf(stderr, "lanyard: unknown global option '%.64s'\n(see 'lanyard --help')\n",
                argv[i]);
        return 2;
    }
    if (i >= argc) {
        print_global_help(stderr);
        return 2;
    }
    group = argv[i];
    if (strcmp(group, "help") == 0) {
        print_global_help(stdout);
        return write_stdout(NULL, 0);
    }
    if ((strcmp(group, "server") == 0 || strcmp(group, "helper") == 0 ||
         strcmp(group, "gateway") == 0) &&
        (i + 1 >= argc ||
         (strncmp(argv[i + 1], "-", 1) == 0 && !has_help_flag(argc - i, argv + i)))) {
        /* Bare "lanyard server|helper|gateway [flags]" runs the group's "run" command. */
        for (k = 0; k < N_COMMANDS; k++) {
            if (strcmp(commands[k].group, group) == 0 && strcmp(commands[k].verb, "run") == 0) {
                int rc;
                optind = 0;
                rc = commands[k].fn(&c, argc - i, argv + i);
                return rc == -2 ? usage_error(&commands[k]) : rc;
            }
        }
    }
    if (i + 1 >= argc || strncmp(argv[i + 1], "-", 1) == 0) {
        /* "lanyard ca" or "lanyard ca --help": the group's commands. */
        int want_help = (i + 1 < argc) && has_help_flag(argc - i, argv + i);
        /* "lanyard server --help": the command a bare group name runs, in full. */
        for (k = 0; want_help && k < N_COMMANDS; k++) {
            if (strcmp(commands[k].group, group) == 0 && strcmp(commands[k].verb, "run") == 0) {
                print_cmd_help(stdout, &commands[k]);
                fputs("\n", stdout);
            }
        }
        if (print_group_help(want_help ? stdout : stderr, group)) {
            return want_help ? write_stdout(NULL, 0) : 2;
        }
        fprintf(stderr, "lanyard: unknown command '%.64s'\n(see 'lanyard --help')\n", group);
        return 2;
    }
    for (k = 0; k < N_COMMANDS; k++) {
        const struct cli_cmd *cmd = &commands[k];
        int rc;
        if (strcmp(cmd->group, group) != 0 || strcmp(cmd->verb, argv[i + 1]) != 0) {
            continue;
        }
        if (has_help_flag(argc - i - 1, argv + i + 1)) {
            print_cmd_help(stdout, cmd);
            return write_stdout(NULL, 0);
        }
        optind = 0; /* full getopt re-initialisation (glibc) */
        rc = cmd->fn(&c, argc - i - 1, argv + i + 1);
        if (rc == -2) {
            return usage_error(cmd);
        }
        return rc;
    }
    if (print_group_help(stderr, group)) {
        fprintf(stderr, "lanyard: unknown %s command '%.64s'\n", group, argv[i + 1]);
    } else {
        fprintf(stderr, "lanyard: unknown command '%.64s'\n(see 'lanyard --help')\n", group);
    }
    return 2;
}
