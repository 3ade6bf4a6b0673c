/*
 * policy: consent decisions per second on one core from an index of 100,000 consent records,
 * loaded through the store API (one transaction) and rebuilt from store_consent_list(). Its
 * anchor, measured in the same run on the same request mix, is a bare hash-table lookup of the
 * same (user, client ID) keys: what any decision must at least pay. The two run in alternating
 * half-second slices (2 s each), so outside load hits both alike. Prints both rates and ratio.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../broker/consent.h"
#include "../broker/gwpolicy.h"
#include "../broker/store.h"
#include "../common/ly_time.h"

#define N_RECORDS 100000
#define N_USERS (N_RECORDS / 4)
#define N_REQ 4096
#define SLICES 12
#define SLICE_SECONDS 0.5
#define CHECK_EVERY 256

struct req {
    char user[32];
    struct spiffeid client;
    const char *kind;
    char name[64];
};

/* The anchor: an open-addressing table of the same keys, lookup only. */
struct akey {
    uint64_t h;
    const char *user;
    size_t ulen;
    const char *client;
    size_t clen;
};

static double mono_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t fnv2(const char *u, size_t ul, const char *c, size_t cl)
{
    uint64_t h = 14695981039346656037ULL;
    size_t i;

    for (i = 0; i < ul; i++) {
        h = (h ^ (unsigned char)u[i]) * 1099511628211ULL;
    }
    h *= 1099511628211ULL;
    for (i = 0; i < cl; i++) {
        h = (h ^ (unsigned char)c[i]) * 1099511628211ULL;
    }
    return h;
}

/* Format into a char array; -1 on error or truncation. */
#define FMT(out, ...)                                                                              \
    (snprintf((out), sizeof(out), __VA_ARGS__) < 0 ||                                              \
             (size_t)snprintf((out), sizeof(out), __VA_ARGS__) >= sizeof(out)                      \
         ? -1                                                                                      \
         : 0)

int main(void)
{
    static struct req reqs[N_REQ];
    char dir[] = "/tmp/lanyard-policy-XXXXXX";
    char path[128];
    char buf[128];
    struct store *st = NULL;
    struct consent **list = NULL;
    struct consent_index *idx = NULL;
    struct akey *tab = NULL;
    struct ly_error err;
    struct consent_decision d;
    size_t n = 0;
    size_t mask = (1u << 18) - 1;
    size_t i;
    int64_t now = ly_time_now();
    double t0;
    double t_load;
    double t_build;
    double pol_t = 0;
    double anc_t = 0;
    double gw_t = 0;
    uint64_t pol_n = 0;
    uint64_t anc_n = 0;
    uint64_t gw_n = 0;
    uint64_t gw_allowed = 0;
    struct gwpolicy *gwp = NULL;
    uint64_t allowed = 0;
    uint64_t found = 0;
    int s;

    ly_error_clear(&err);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "policy: cannot make a scratch directory\n");
        return 1;
    }
    if (snprintf(path, sizeof(path), "%s/lanyard.db", dir) < 0 ||
        store_open(path, &st, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    /* 25,000 users x 4 clients, 6 scopes each; every tenth record has a time window. */
    t0 = mono_now();
    if (store_begin(st, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    for (i = 0; i < N_RECORDS; i++) {
        struct consent *c = consent_new();
        int u = (int)(i / 4);
        int k;
        int rc = c == NULL ? -1 : 0;
        if (rc == 0) {
            rc = FMT(buf, "user%d", u) < 0 ? -1
                                                              : consent_set_user(c, buf, &err);
        }
        if (rc == 0) {
            rc = FMT(buf, "spiffe://bench.test/agent/%d/client%d", u % 97,
                     (int)(i % 4)) < 0
                     ? -1
                     : consent_set_client(c, buf, &err);
        }
        for (k = 0; rc == 0 && k < 5; k++) {
            rc = FMT(buf, "tools:tool%d", k) < 0
                     ? -1
                     : consent_add_scope(c, buf, &err);
        }
        if (rc == 0) {
            rc = FMT(buf, "resources:file:///data/u%d/", u) < 0
                     ? -1
                     : consent_add_scope(c, buf, &err);
        }
        if (rc == 0 && i % 10 == 0) {
            rc = consent_set_window(c, "00:00-23:59", &err);
        }
        if (rc == 0) {
            c->granted_at = now;
            memcpy(c->granted_by, "bench", 6);
            rc = store_consent_add(st, c, &err);
        }
        consent_free(c);
        if (rc < 0) {
            fprintf(stderr, "policy: record %zu: %s\n", i, err.msg);
            return 1;
        }
    }
    if (store_commit(st, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    t_load = mono_now() - t0;
    t0 = mono_now();
    if (store_consent_list(st, NULL, NULL, &list, &n, &err) < 0 ||
        consent_index_build(list, n, &idx, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    t_build = mono_now() - t0;
    /* The gateway's own state, on its own connection to the same store. */
    if (gwpolicy_open(path, &gwp, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        return 1;
    }
    /* The anchor table holds the same keys (borrowed from the list). */
    tab = calloc(mask + 1, sizeof(*tab));
    if (tab == NULL) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        size_t ul = strlen(list[i]->user);
        size_t cl = strlen(list[i]->client_id);
        uint64_t h = fnv2(list[i]->user, ul, list[i]->client_id, cl);
        size_t j = (size_t)h & mask;
        while (tab[j].user != NULL) {
            j = (j + 1) & mask;
        }
        tab[j] = (struct akey){h, list[i]->user, ul, list[i]->client_id, cl};
    }
    /* Requests: 3/4 allowed (a tool or a resource); 1/8 unknown client; 1/8 ungranted tool. */
    for (i = 0; i < N_REQ; i++) {
        uint32_t x = (uint32_t)(i * 2654435761u);
        int u = (int)(x % N_USERS);
        int cl = (int)((x >> 8) % 4);
        int kind = (int)(i % 8);
        int rc = FMT(reqs[i].user, "user%d", u);
        if (rc == 0) {
            rc = FMT(buf, "spiffe://bench.test/agent/%d/client%d", u % 97,
                     kind == 6 ? 9 : cl);
        }
        if (rc < 0 || spiffeid_parse(buf, strlen(buf), &reqs[i].client, &err) < 0) {
            return 1;
        }
        reqs[i].kind = kind < 3 ? "resources" : "tools";
        rc = kind < 3 ? FMT(reqs[i].name, "file:///data/u%d/f%d", u, kind)
             : kind == 7 ? FMT(reqs[i].name, "tool%d", 99)
                         : FMT(reqs[i].name, "tool%d", kind - 3);
        if (rc < 0) {
            return 1;
        }
    }
    for (s = 0; s < SLICES; s++) {
        double start = mono_now();
        double el = 0;
        uint64_t k = 0;
        if (s % 3 == 2) {
            /* What the gateway pays per request: ask the store whether anything changed,
             * take the snapshot, decide, release. */
            while (el < SLICE_SECONDS) {
                const struct req *r = &reqs[k % N_REQ];
                struct gwpolicy_snap *sn = gwpolicy_snapshot(gwp, &err);
                struct gwpolicy_verdict v;
                if (sn == NULL) {
                    fprintf(stderr, "policy: %s\n", err.msg);
                    return 1;
                }
                gw_allowed += (uint64_t)gwpolicy_decide(sn, r->user, &r->client, r->kind, r->name,
                                                        now, &v);
                gwpolicy_release(sn);
                if (++k % CHECK_EVERY == 0) {
                    el = mono_now() - start;
                }
            }
            gw_t += el;
            gw_n += k;
        } else if (s % 3 == 0) {
            while (el < SLICE_SECONDS) {
                const struct req *r = &reqs[k % N_REQ];
                allowed += (uint64_t)consent_decide(idx, r->user, &r->client, r->kind, r->name,
                                                    now, &d);
                if (++k % CHECK_EVERY == 0) {
                    el = mono_now() - start;
                }
            }
            pol_t += el;
            pol_n += k;
        } else {
            while (el < SLICE_SECONDS) {
                const struct req *r = &reqs[k % N_REQ];
                size_t ul = strlen(r->user);
                uint64_t h = fnv2(r->user, ul, r->client.str, r->client.len);
                size_t j = (size_t)h & mask;
                while (tab[j].user != NULL) {
                    if (tab[j].h == h && tab[j].ulen == ul && tab[j].clen == r->client.len &&
                        memcmp(tab[j].user, r->user, ul) == 0 &&
                        memcmp(tab[j].client, r->client.str, r->client.len) == 0) {
                        found++;
                        break;
                    }
                    j = (j + 1) & mask;
                }
                if (++k % CHECK_EVERY == 0) {
                    el = mono_now() - start;
                }
            }
            anc_t += el;
            anc_n += k;
        }
    }
    printf("consent store: %d records added in one transaction in %.2f s; index built in "
           "%.3f s\n",
           N_RECORDS, t_load, t_build);
    printf("policy decisions: %.0f/s (target >= 500000/s) [%.1f%% allowed]\n", pol_n / pol_t,
           100.0 * (double)allowed / (double)(pol_n ? pol_n : 1));
    printf("gateway path (store freshness check + snapshot + decision, per request): %.0f/s "
           "(target >= 500000/s) [%.1f%% allowed]\n",
           gw_n / gw_t, 100.0 * (double)gw_allowed / (double)(gw_n ? gw_n : 1));
    printf("anchor, bare hash-table lookup of the same keys: %.0f/s [%.1f%% found]\n",
           anc_n / anc_t, 100.0 * (double)found / (double)(anc_n ? anc_n : 1));
    printf("policy ratio (decision / bare lookup): %.2f\n", (pol_n / pol_t) / (anc_n / anc_t));
    free(tab);
    gwpolicy_free(gwp);
    consent_index_free(idx);
    consent_list_free(list, n);
    store_close(st);
    if (unlink(path) != 0) {
        fprintf(stderr, "policy: cannot remove %s\n", path);
    }
    if (rmdir(dir) != 0) {
        fprintf(stderr, "policy: cannot remove %s (WAL files left?)\n", dir);
    }
    return 0;
}
