/*
 * helper: `lanyard helper`, a Workload API client that keeps a workload's X509-SVID, key, trust
 * bundles and JWT-SVIDs as files in a directory, for programs that only read files (nginx,
 * databases, proxies). It holds a FetchX509SVID stream open, rewrites the files on every change
 * and then runs a command or signals a process so it reloads; it reconnects with backoff when
 * the server goes away and keeps the last good files meanwhile.
 *
 * Files in the directory (each written atomically: temporary file, fsync, rename):
 *   svid.pem         leaf + intermediates of the default (first) SVID, PEM, 0644
 *   svid.key         its private key, PKCS#8 PEM, 0600
 *   svid_bundle.pem  leaf + intermediates + key in one file, 0600
 *   bundle.pem       the CA certificates of the SVID's trust domain, PEM, 0644
 *   federated/TD.pem the CA certificates of each federated trust domain, PEM, 0644
 *   svid_N.pem/.key  further SVIDs (N = 1, 2, ...) when the workload has several identities
 *   jwt_svid_AUD.token  a JWT-SVID per configured audience (sanitised name), 0600
 *
 * Consistency: svid_bundle.pem always holds a matching certificate and key (one rename). The
 * separate svid.key and svid.pem are staged complete and durable first, then renamed key
 * first, cert second, back to back, so a reader that reads svid.key before svid.pem, or that
 * reloads on the notification (command or signal, sent only after every file is in place),
 * always gets a matching pair. The key is checked against the leaf before anything is written.
 * Keys and tokens live in secret buffers and never reach the log.
 */
#ifndef HELPER_H
#define HELPER_H

#include <stddef.h>
#include <sys/types.h>

#include "../common/ly_error.h"

/* Caps on the command line pieces. */
#define HELPER_MAX_AUDIENCES 16
#define HELPER_MAX_ARGS 64
#define HELPER_CMD_MAX 4096
#define HELPER_AUD_FILE_MAX 128 /* longest sanitised audience part of a file name */

/* Reconnect backoff: from HELPER_BACKOFF_MIN_MS, doubling, up to HELPER_BACKOFF_MAX_MS. */
#define HELPER_BACKOFF_MIN_MS 500
#define HELPER_BACKOFF_MAX_MS 10000

/* What to run; every pointer is borrowed for the duration of helper_run(). */
struct helper_config {
    const char *socket_path;       /* filesystem path (see helper_endpoint_parse) */
    const char *dir;               /* output directory; created (0755) when missing */
    const char *const *audiences;  /* JWT-SVID audiences, n_audiences <= HELPER_MAX_AUDIENCES */
    size_t n_audiences;
    const char *cmd;               /* "PROGRAM ARGS..." run after each update, or NULL */
    long cmd_timeout_ms;           /* kill the command after this long; <= 0: 30 s */
    int signal;                    /* signal sent after each update, or 0 */
    pid_t pid;                     /* target of `signal` when pid_file is NULL */
    const char *pid_file;          /* read at each update (the target may have restarted) */
    int once;                      /* write the files once and return */
};

/*
 * Turn a Workload API address into a socket path in `out` (outsz bytes): "unix:///abs/path" or
 * "unix:/abs/path" (a URI with an absolute path, no authority, query or fragment), or a bare
 * path ("/run/x.sock", "./x.sock", "x.sock"). "unix://relative" (an authority), "tcp:..." (not
 * supported by lanyard), other schemes, percent escapes and an empty address give LY_ERR_USAGE
 * with a message naming the problem. Pure; thread-safe.
 */
int helper_endpoint_parse(const char *addr, char *out, size_t outsz, struct ly_error *err)
    LY_MUST_USE;

/*
 * Split a command line on runs of spaces and tabs into a NULL-terminated argv (no shell, no
 * quoting, no expansion). On success *argv_out (caller frees with helper_argv_free) holds
 * *argc_out >= 1 words. An empty line, more than HELPER_MAX_ARGS words or a line longer than
 * HELPER_CMD_MAX give LY_ERR_USAGE; LY_ERR_NOMEM.
 */
int helper_argv_split(const char *line, char ***argv_out, size_t *argc_out, struct ly_error *err)
    LY_MUST_USE;

/* Free an argv from helper_argv_split. NULL is a no-op. */
void helper_argv_free(char **argv);

/*
 * The file name for an audience's JWT-SVID: "jwt_svid_" + the audience with every byte outside
 * [A-Za-z0-9._-] replaced by '_' + ".token", into out. An empty audience, one longer than
 * HELPER_AUD_FILE_MAX bytes, or a name that is only dots and underscores gives LY_ERR_USAGE.
 * Two audiences can map to the same name ("a/b", "a:b"); callers must refuse that.
 */
int helper_audience_filename(const char *aud, char *out, size_t outsz, struct ly_error *err)
    LY_MUST_USE;

/* "HUP", "SIGHUP", "hup" or a number 1..64 to a signal number; LY_ERR_USAGE otherwise. */
int helper_signal_parse(const char *s, int *out, struct ly_error *err) LY_MUST_USE;

/* A decimal pid > 0 with optional trailing white space (a pid file's text); LY_ERR_PARSE. */
int helper_pid_parse(const char *s, size_t len, pid_t *out, struct ly_error *err) LY_MUST_USE;

/*
 * Run the helper until SIGTERM or SIGINT (or, with cfg->once, until the files were written
 * once). It installs handlers for SIGTERM, SIGINT (stop) and ignores SIGPIPE. Logs JSON lines
 * on stderr (log.h). Returns 0 when stopped by a signal or done; LY_ERR_POLICY when cfg->once
 * and the server gives this process no identity (PermissionDenied); LY_ERR_PARSE when the
 * server answers InvalidArgument (never retried); LY_ERR_IO when cfg->once and the server
 * cannot be reached; LY_ERR_USAGE for a bad configuration. Not thread-safe; one per process.
 */
int helper_run(const struct helper_config *cfg, struct ly_error *err) LY_MUST_USE;

#endif
