/*
 * server: `lanyard server`, the long-running daemon. It loads the configuration, opens (or, when
 * a trust domain is configured, creates) the data directory's CA, and serves on one event loop:
 * the SPIFFE Workload API socket, the admin socket (owner-only; CBOR, see admin.h) and the
 * health endpoint. A periodic tick rotates SVIDs and the CA and pushes changes to open streams.
 * SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the config file's log level.
 */
#ifndef SERVER_H
#define SERVER_H

#include "config.h"

/*
 * Run the daemon with configuration `cfg` (already finished) and the config file it came from
 * (NULL for none; re-read on SIGHUP). Returns the process exit code: 0 after a clean stop,
 * 2 for a configuration problem, 3 for a runtime failure (the reason is logged).
 */
int server_run(const struct config *cfg, const char *config_path);

#endif
