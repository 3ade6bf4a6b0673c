/*
 * config: defaults, JSON config file and flag overrides for the daemon. All validation happens
 * on a copy, so a bad file or flag never leaves a half-applied configuration behind.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../common/ly_file.h"
#include "../common/ly_time.h"
#include "../svid/spiffeid.h"
#include "ca.h"

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    (void)snprintf(c->data_dir, sizeof(c->data_dir), "./lanyard-data");
    (void)snprintf(c->health_listen, sizeof(c->health_listen), "127.0.0.1:8089");
    c->log_level = LOG_INFO;
    c->ca_key_type = SVID_KEY_EC_P256;
    c->ca_ttl = CA_DEFAULT_TTL;
    c->default_svid_ttl = CA_DEFAULT_SVID_TTL;
    c->jwt_ttl = CA_DEFAULT_JWT_TTL;
    (void)snprintf(c->bundle_endpoint_profile, sizeof(c->bundle_endpoint_profile),
                   "https_spiffe");
    c->bundle_refresh_hint = CA_DEFAULT_REFRESH_HINT;
}

static int copy_str(char *dst, size_t dstsz, const char *key, const char *v, struct ly_error *err)
{
    size_t n = strlen(v);

    if (n >= dstsz) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "config %s: value longer than %zu bytes", key,
                             dstsz - 1);
    }
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_duration(int64_t *dst, const char *key, const char *v, int64_t min, int64_t max,
                        struct ly_error *err)
{
    int64_t d;

    if (ly_duration_parse(v, &d, err) < 0) {
        return ly_error_wrap(err, "config %s", key);
    }
    if (d < min || d > max) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "config %s: %lld s is outside %lld..%lld s", key, (long long)d,
                             (long long)min, (long long)max);
    }
    *dst = d;
    return 0;
}

int config_parse_listen(const char *s, char *host, size_t hostsz, int *port,
                        struct ly_error *err)
{
    const char *colon = strrchr(s, ':');
    size_t hl;
    long p = 0;
    const char *q;

    if (colon == NULL || colon == s || colon[1] == '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "listen address '%.64s' is not HOST:PORT", s);
    }
    hl = (size_t)(colon - s);
    if (hl >= hostsz) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "listen host too long");
    }
    for (q = colon + 1; *q != '\0'; q++) {
        if (*q < '0' || *q > '9' || p > 65535) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "listen port in '%.64s' is not a number",
                                 s);
        }
        p = p * 10 + (*q - '0');
    }
    if (p < 1 || p > 65535) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "listen port must be 1..65535");
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int config_set(struct config *c, const char *key, const char *v, struct ly_error *err)
{
    struct config n = *c;
    int rc;

    if (strcmp(key, "data_dir") == 0) {
        rc = v[0] == '\0' ? ly_error_setx(err, LY_ERR_PARSE, 0, "config data_dir is empty")
                          : copy_str(n.data_dir, sizeof(n.data_dir), key, v, err);
    } else if (strcmp(key, "trust_domain") == 0) {
        rc = spiffeid_parse_trust_domain(v, strlen(v), n.trust_domain, sizeof(n.trust_domain),
                                         err);
        if (rc == 0 && strncmp(v, "spiffe://", 9) == 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                               "config trust_domain takes a bare name, not a SPIFFE ID");
        }
        if (rc < 0) {
            (void)ly_error_wrap(err, "config trust_domain");
        }
    } else if (strcmp(key, "workload_socket") == 0 || strcmp(key, "admin_socket") == 0) {
        char *dst = key[0] == 'w' ? n.workload_socket : n.admin_socket;
        if (v[0] != '/') {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "config %s must be an absolute path", key);
        }
        rc = copy_str(dst, CONFIG_PATH_MAX, key, v, err);
    } else if (strcmp(key, "health_listen") == 0) {
        char host[64];
        int port;
        rc = v[0] == '\0' ? 0 : config_parse_listen(v, host, sizeof(host), &port, err);
        if (rc == 0) {
            rc = copy_str(n.health_listen, sizeof(n.health_listen), key, v, err);
        }
    } else if (strcmp(key, "log_level") == 0) {
        rc = log_level_parse(v, &n.log_level) == 0
                 ? 0
                 : ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "config log_level must be debug, info, warn or error");
    } else if (strcmp(key, "ca_key_type") == 0) {
        rc = svid_key_type_parse(v, &n.ca_key_type, err);
        if (rc < 0) {
            err->code = LY_ERR_PARSE;
            rc = ly_error_wrap(err, "config ca_key_type");
        }
    } else if (strcmp(key, "ca_ttl") == 0) {
        rc = set_duration(&n.ca_ttl, key, v, CA_MIN_TTL, 10 * 365 * 86400LL, err);
    } else if (strcmp(key, "default_svid_ttl") == 0) {
        rc = set_duration(&n.default_svid_ttl, key, v, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL, err);
    } else if (strcmp(key, "jwt_ttl") == 0) {
        rc = set_duration(&n.jwt_ttl, key, v, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL, err);
    } else if (strcmp(key, "bundle_endpoint") == 0) {
        char host[64];
        int port;
        rc = v[0] == '\0' ? 0 : config_parse_listen(v, host, sizeof(host), &port, err);
        if (rc == 0) {
            rc = copy_str(n.bundle_endpoint, sizeof(n.bundle_endpoint), key, v, err);
        } else {
            (void)ly_error_wrap(err, "config bundle_endpoint");
        }
    } else if (strcmp(key, "bundle_endpoint_profile") == 0) {
        rc = strcmp(v, "https_spiffe") == 0 || strcmp(v, "https_web") == 0
                 ? copy_str(n.bundle_endpoint_profile, sizeof(n.bundle_endpoint_profile), key, v,
                            err)
                 : ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "config bundle_endpoint_profile must be https_spiffe or "
                                 "https_web");
    } else if (strcmp(key, "web_cert") == 0 || strcmp(key, "web_key") == 0) {
        rc = v[0] == '\0' ? ly_error_setx(err, LY_ERR_PARSE, 0, "config %s is empty", key)
                          : copy_str(key[4] == 'c' ? n.web_cert : n.web_key, CONFIG_PATH_MAX,
                                     key, v, err);
    } else if (strcmp(key, "bundle_refresh_hint") == 0) {
        rc = set_duration(&n.bundle_refresh_hint, key, v, 1, 7 * 86400, err);
    } else {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "unknown config key '%.64s'", key);
    }
    if (rc < 0) {
        return rc;
    }
    *c = n;
    return 0;
}

int config_apply_json(struct config *c, const char *text, size_t len, struct ly_error *err)
{
    struct config n = *c;
    json_error_t je;
    json_t *root;
    const char *key;
    json_t *v;
    int rc = 0;

    ly_error_clear(err);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "config is not valid JSON (line %d)",
                             je.line);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "config must be a JSON object");
    }
    json_object_foreach(root, key, v) {
        if (!json_is_string(v)) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0, "config %.64s must be a string", key);
            break;
        }
        rc = config_set(&n, key, json_string_value(v), err);
        if (rc < 0) {
            break;
        }
    }
    json_decref(root);
    if (rc == 0) {
        *c = n;
    }
    return rc;
}

int config_load_file(struct config *c, const char *path, struct ly_error *err)
{
    struct ly_buf b;
    int rc;

    ly_error_clear(err);
    rc = ly_file_read(path, CONFIG_MAX_FILE, 0, &b, err);
    if (rc < 0) {
        return rc;
    }
    rc = config_apply_json(c, (const char *)b.data, b.len, err);
    ly_buf_free(&b);
    if (rc < 0) {
        (void)ly_error_wrap(err, "%s", path);
    }
    return rc;
}

int config_finish(struct config *c, struct ly_error *err)
{
    int n;

    ly_error_clear(err);
    if (c->workload_socket[0] == '\0') {
        n = snprintf(c->workload_socket, sizeof(c->workload_socket), "%s/workload.sock",
                     c->data_dir);
        if (n < 0 || (size_t)n >= sizeof(c->workload_socket)) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "data_dir too long for a socket path");
        }
    }
    if (c->admin_socket[0] == '\0') {
        n = snprintf(c->admin_socket, sizeof(c->admin_socket), "%s/admin.sock", c->data_dir);
        if (n < 0 || (size_t)n >= sizeof(c->admin_socket)) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "data_dir too long for a socket path");
        }
    }
    /* sockaddr_un holds 108 bytes including the NUL. */
    if (strlen(c->workload_socket) > 107 || strlen(c->admin_socket) > 107) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "socket paths must be at most 107 bytes (Unix socket limit)");
    }
    if (strcmp(c->workload_socket, c->admin_socket) == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "workload_socket and admin_socket must differ");
    }
    if (strcmp(c->bundle_endpoint_profile, "https_web") == 0) {
        if (c->bundle_endpoint[0] == '\0') {
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "bundle_endpoint_profile https_web needs a bundle_endpoint");
        }
        if (c->web_cert[0] == '\0' || c->web_key[0] == '\0') {
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "the https_web bundle endpoint needs web_cert and web_key "
                                 "(its certificate chain and key, PEM)");
        }
    } else if (c->web_cert[0] != '\0' || c->web_key[0] != '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "web_cert and web_key are for the https_web bundle endpoint "
                             "profile only");
    }
    return 0;
}
