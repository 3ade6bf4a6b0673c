/*
 * config: settings of `lanyard server`, with safe defaults, read from an optional JSON config
 * file (jansson; unknown keys are errors so a typo never silently falls back to a default) and
 * overridden by command-line flags. Pure: no I/O except reading the file it is given.
 *
 * File format (every key optional):
 *   {
 *     "data_dir": "/var/lib/lanyard",
 *     "trust_domain": "example.org",          (used only to initialise an empty data dir)
 *     "workload_socket": "/run/lanyard/workload.sock",
 *     "admin_socket": "/run/lanyard/admin.sock",
 *     "health_listen": "127.0.0.1:8089",      ("" disables the health endpoint)
 *     "log_level": "info",                    (debug | info | warn | error)
 *     "ca_key_type": "ec-p256",               (ec-p256 | ed25519)
 *     "ca_ttl": "30d", "default_svid_ttl": "1h", "jwt_ttl": "5m",
 *     "bundle_endpoint": "0.0.0.0:8443",      (HOST:PORT; "" or absent: no bundle endpoint)
 *     "bundle_endpoint_profile": "https_spiffe", (https_spiffe | https_web)
 *     "web_cert": "/etc/lanyard/web.pem",     (https_web: certificate chain, PEM)
 *     "web_key": "/etc/lanyard/web.key",      (https_web: private key, PEM)
 *     "bundle_refresh_hint": "5m"             (spiffe_refresh_hint of the published bundle)
 *   }
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <limits.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/key.h"
#include "log.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_MAX_FILE (64 * 1024)

struct config {
    char data_dir[CONFIG_PATH_MAX];
    char trust_domain[256];           /* "" when not given */
    char workload_socket[CONFIG_PATH_MAX]; /* "" means <data_dir>/workload.sock */
    char admin_socket[CONFIG_PATH_MAX];    /* "" means <data_dir>/admin.sock */
    char health_listen[64];           /* "host:port"; "" disables */
    enum log_level log_level;
    enum svid_key_type ca_key_type;
    int64_t ca_ttl;
    int64_t default_svid_ttl;
    int64_t jwt_ttl;
    char bundle_endpoint[64];         /* "host:port"; "" serves no bundle endpoint */
    char bundle_endpoint_profile[16]; /* "https_spiffe" (default) | "https_web" */
    char web_cert[CONFIG_PATH_MAX];   /* https_web only */
    char web_key[CONFIG_PATH_MAX];
    int64_t bundle_refresh_hint;      /* seconds */
};

/*
 * Fill with the defaults (data dir "./lanyard-data", health on 127.0.0.1:8089, TTLs 30d/1h/5m,
 * no bundle endpoint, refresh hint 5m).
 */
void config_defaults(struct config *c);

/*
 * Apply a JSON config document (len bytes) on top of *c. Unknown keys, wrong types, bad
 * durations, relative socket paths, an invalid trust domain or a bad health address are
 * LY_ERR_PARSE errors naming the key. *c is unchanged on failure.
 */
int config_apply_json(struct config *c, const char *text, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Read `path` (regular file, at most CONFIG_MAX_FILE bytes) and apply it. */
int config_load_file(struct config *c, const char *path, struct ly_error *err) LY_MUST_USE;

/* Set one key from a flag value using the same rules as the file ("ca_ttl", "30d"). */
int config_set(struct config *c, const char *key, const char *value, struct ly_error *err)
    LY_MUST_USE;

/*
 * Resolve defaults that depend on others (socket paths under data_dir) and check coherence: an
 * https_web bundle endpoint needs web_cert and web_key, which nothing else may set.
 */
int config_finish(struct config *c, struct ly_error *err) LY_MUST_USE;

/* Split "host:port" (IPv4 literal or "localhost"; port 1..65535). 0 or LY_ERR_PARSE. */
int config_parse_listen(const char *s, char *host, size_t hostsz, int *port,
                        struct ly_error *err) LY_MUST_USE;

#endif
