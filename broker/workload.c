/*
 * workload: the SPIFFE Workload API over gRPC. Each RPC checks the security header, attests the
 * caller through the broker's ops, and answers with protobuf-c messages; streams keep the caller
 * and re-send the complete state when the broker reports a change. Packed messages that hold
 * private keys live in secret buffers and are wiped once queued.
 */
#define _GNU_SOURCE
#include "workload.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "../common/ly_buf.h"
#include "../common/ly_secret.h"
#include "google/protobuf/struct.pb-c.h"
#include "log.h"
#include "workloadapi.pb-c.h"

#define WORKLOAD_MAX_ITEMS 256 /* SVIDs, bundles or audiences in one message */
#define WORKLOAD_MAX_MESSAGE (4u * 1024u * 1024u)
#define WORKLOAD_MAX_DEPTH 16  /* nesting of JWT claims converted to a protobuf Struct */

enum stream_kind {
    STREAM_X509SVID = 1,
    STREAM_X509BUNDLES,
    STREAM_JWTBUNDLES,
};

struct stream {
    struct workload *w;
    struct grpc_call *call;
    enum stream_kind kind;
    void *caller;
    uint8_t last[WC_SHA256_DIGEST_SIZE]; /* digest of the last message sent */
    int sent;
    struct stream *prev;
    struct stream *next;
};

struct workload {
    struct grpc_server *srv;
    const struct workload_ops *ops;
    void *ctx;
    struct stream *streams;
    size_t n_streams;
};

/* ---- helpers ------------------------------------------------------------------------------- */

static int status_for(int code)
{
    switch (code) {
    case LY_ERR_POLICY:
        return GRPC_PERMISSION_DENIED;
    case LY_ERR_USAGE:
    case LY_ERR_VERIFY:
    case LY_ERR_PARSE:
        return GRPC_INVALID_ARGUMENT;
    default:
        return GRPC_UNAVAILABLE;
    }
}

/* WAPI-3/7: a request without `workload.spiffe.io: true` is refused with InvalidArgument. */
static int check_header(struct grpc_call *call)
{
    const char *v = grpc_call_header(call, "workload.spiffe.io");

    if (v == NULL || strcmp(v, "true") != 0) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT,
                         "security header missing: workload.spiffe.io must be \"true\"");
        return -1;
    }
    return 0;
}

static void finish_err(struct grpc_call *call, const struct ly_error *err)
{
    grpc_call_finish(call, status_for(err->code), err->msg[0] ? err->msg : "request failed");
}

/* Pack a message into a secret buffer (it may hold private keys). */
static int pack(const ProtobufCMessage *m, struct ly_buf *out, struct ly_error *err)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    int rc;

    ly_buf_init_secret(out, WORKLOAD_MAX_MESSAGE);
    if (n > WORKLOAD_MAX_MESSAGE) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "Workload API response too large");
    }
    rc = ly_buf_reserve(out, n, err);
    if (rc < 0) {
        return rc;
    }
    out->len = protobuf_c_message_pack(m, out->data);
    out->data[out->len] = '\0';
    return out->len == n ? 0 : ly_error_setx(err, LY_ERR_INTERNAL, 0, "protobuf packing failed");
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    ProtobufCBinaryData b;

    b.data = (uint8_t *)p; /* protobuf-c's field type is non-const; packing only reads it */
    b.len = n;
    return b;
}

/* ---- message builders ---------------------------------------------------------------------- */

static int build_x509svid(struct workload *w, void *caller, struct ly_buf *out,
                          struct ly_error *err)
{
    const struct workload_x509 *svids = NULL;
    const struct workload_bundle *fed = NULL;
    size_t n = 0;
    size_t n_fed = 0;
    X509SVIDResponse resp = X509_SVIDRESPONSE__INIT;
    X509SVID *items = NULL;
    X509SVID **ptrs = NULL;
    X509SVIDResponse__FederatedBundlesEntry *fitems = NULL;
    X509SVIDResponse__FederatedBundlesEntry **fptrs = NULL;
    size_t i;
    int rc;

    rc = w->ops->x509(w->ctx, caller, &svids, &n, &fed, &n_fed, err);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        return ly_error_setx(err, LY_ERR_POLICY, 0, "no identity issued to this workload");
    }
    if (n > WORKLOAD_MAX_ITEMS || n_fed > WORKLOAD_MAX_ITEMS) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "too many SVIDs or bundles");
    }
    items = calloc(n, sizeof(*items));
    ptrs = calloc(n, sizeof(*ptrs));
    fitems = calloc(n_fed ? n_fed : 1, sizeof(*fitems));
    fptrs = calloc(n_fed ? n_fed : 1, sizeof(*fptrs));
    if (items == NULL || ptrs == NULL || fitems == NULL || fptrs == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        X509SVID init = X509_SVID__INIT;
        items[i] = init;
        items[i].spiffe_id = (char *)svids[i].spiffe_id;
        items[i].x509_svid = bin(svids[i].chain, svids[i].chain_len);
        items[i].x509_svid_key = bin(svids[i].key, svids[i].key_len);
        items[i].bundle = bin(svids[i].bundle, svids[i].bundle_len);
        items[i].hint = (char *)(svids[i].hint != NULL ? svids[i].hint : "");
        ptrs[i] = &items[i];
    }
    for (i = 0; i < n_fed; i++) {
        X509SVIDResponse__FederatedBundlesEntry init =
            X509_SVIDRESPONSE__FEDERATED_BUNDLES_ENTRY__INIT;
        fitems[i] = init;
        fitems[i].key = (char *)fed[i].td_id;
        fitems[i].value = bin(fed[i].data, fed[i].len);
        fptrs[i] = &fitems[i];
    }
    resp.n_svids = n;
    resp.svids = ptrs;
    resp.n_federated_bundles = n_fed;
    resp.federated_bundles = n_fed ? fptrs : NULL;
    rc = pack(&resp.base, out, err);
out:
    free(items);
    free(ptrs);
    free(fitems);
    free(fptrs);
    return rc;
}

/* X509BundlesResponse and JWTBundlesResponse share their map shape. */
static int build_bundles(struct workload *w, void *caller, enum stream_kind kind,
                         struct ly_buf *out, struct ly_error *err)
{
    const struct workload_bundle *b = NULL;
    size_t n = 0;
    size_t i;
    int rc;

    rc = kind == STREAM_X509BUNDLES ? w->ops->x509_bundles(w->ctx, caller, &b, &n, err)
                                    : w->ops->jwt_bundles(w->ctx, caller, &b, &n, err);
    if (rc < 0) {
        return rc;
    }
    if (n == 0 || n > WORKLOAD_MAX_ITEMS) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "bundle set is empty or too large");
    }
    if (kind == STREAM_X509BUNDLES) {
        X509BundlesResponse resp = X509_BUNDLES_RESPONSE__INIT;
        X509BundlesResponse__BundlesEntry *items = calloc(n, sizeof(*items));
        X509BundlesResponse__BundlesEntry **ptrs = calloc(n, sizeof(*ptrs));

        if (items == NULL || ptrs == NULL) {
            free(items);
            free(ptrs);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        for (i = 0; i < n; i++) {
            X509BundlesResponse__BundlesEntry init = X509_BUNDLES_RESPONSE__BUNDLES_ENTRY__INIT;
            items[i] = init;
            items[i].key = (char *)b[i].td_id;
            items[i].value = bin(b[i].data, b[i].len);
            ptrs[i] = &items[i];
        }
        resp.n_bundles = n;
        resp.bundles = ptrs;
        rc = pack(&resp.base, out, err);
        free(items);
        free(ptrs);
    } else {
        JWTBundlesResponse resp = JWTBUNDLES_RESPONSE__INIT;
        JWTBundlesResponse__BundlesEntry *items = calloc(n, sizeof(*items));
        JWTBundlesResponse__BundlesEntry **ptrs = calloc(n, sizeof(*ptrs));

        if (items == NULL || ptrs == NULL) {
            free(items);
            free(ptrs);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        for (i = 0; i < n; i++) {
            JWTBundlesResponse__BundlesEntry init = JWTBUNDLES_RESPONSE__BUNDLES_ENTRY__INIT;
            items[i] = init;
            items[i].key = (char *)b[i].td_id;
            items[i].value = bin(b[i].data, b[i].len);
            ptrs[i] = &items[i];
        }
        resp.n_bundles = n;
        resp.bundles = ptrs;
        rc = pack(&resp.base, out, err);
        free(items);
        free(ptrs);
    }
    return rc;
}

/* ---- streams ------------------------------------------------------------------------------- */

static void stream_unlink(struct stream *s)
{
    struct workload *w = s->w;

    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        w->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    w->n_streams--;
    w->ops->release(w->ctx, s->caller);
    free(s);
}

static void on_stream_close(struct grpc_call *call, void *arg)
{
    struct stream *s = arg;

    (void)call; /* being freed by the transport: never touched here */
    stream_unlink(s);
}

/* End a stream with a status (the transport will not call the close callback afterwards). */
static void stream_end(struct stream *s, int status, const char *msg)
{
    grpc_call_set_close_cb(s->call, NULL, NULL);
    grpc_call_finish(s->call, status, msg);
    stream_unlink(s);
}

/* Compute the stream's current message and send it if it differs from the last one. */
static int stream_push(struct stream *s)
{
    struct ly_error err;
    struct ly_buf msg;
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    int rc;

    ly_error_clear(&err);
    rc = s->kind == STREAM_X509SVID ? build_x509svid(s->w, s->caller, &msg, &err)
                                    : build_bundles(s->w, s->caller, s->kind, &msg, &err);
    if (rc < 0) {
        stream_end(s, status_for(err.code), err.msg);
        return -1;
    }
    if (msg.len > 0xffffffffu || wc_Sha256Hash(msg.data, (word32)msg.len, digest) != 0) {
        ly_buf_free(&msg);
        stream_end(s, GRPC_INTERNAL, "digest failed");
        return -1;
    }
    if (s->sent && memcmp(digest, s->last, sizeof(digest)) == 0) {
        ly_buf_free(&msg);
        return 0; /* WAPI-13: send only when something changed */
    }
    /* WAPI-12: every message is the whole state, so an unsent older one may be dropped. */
    rc = grpc_call_send(s->call, msg.data, msg.len, GRPC_SEND_REPLACE, &err);
    ly_buf_free(&msg);
    if (rc < 0) {
        stream_end(s, GRPC_UNAVAILABLE, "cannot queue the response");
        return -1;
    }
    memcpy(s->last, digest, sizeof(digest));
    s->sent = 1;
    return 0;
}

static int start_stream(struct workload *w, struct grpc_call *call, enum stream_kind kind)
{
    struct ly_error err;
    struct stream *s;
    void *caller = NULL;

    ly_error_clear(&err);
    if (w->ops->attest(w->ctx, grpc_call_peer(call), &caller, &err) < 0) {
        log_event(LOG_INFO, "workload.denied", LOG_STR, "method", grpc_call_path(call), LOG_INT,
                  "pid", (int64_t)grpc_call_peer(call)->pid, LOG_INT, "uid",
                  (int64_t)grpc_call_peer(call)->uid, LOG_STR, "reason", err.msg, LOG_END);
        finish_err(call, &err);
        return 0;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        w->ops->release(w->ctx, caller);
        grpc_call_finish(call, GRPC_UNAVAILABLE, "out of memory");
        return 0;
    }
    s->w = w;
    s->call = call;
    s->kind = kind;
    s->caller = caller;
    s->next = w->streams;
    if (w->streams != NULL) {
        w->streams->prev = s;
    }
    w->streams = s;
    w->n_streams++;
    grpc_call_set_close_cb(call, on_stream_close, s);
    /* WAPI-13: the first message goes out at once. */
    (void)stream_push(s); /* on failure the stream has already been ended */
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* The three streaming RPCs differ only in their (empty) request type and what they stream. */
static int start_checked(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx,
                         const ProtobufCMessageDescriptor *desc, enum stream_kind kind)
{
    ProtobufCMessage *req;

    if (check_header(call) < 0) {
        return 0;
    }
    req = protobuf_c_message_unpack(desc, NULL, len, msg);
    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "malformed request message");
        return 0;
    }
    protobuf_c_message_free_unpacked(req, NULL);
    return start_stream(ctx, call, kind);
}

static int h_x509svid(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    return start_checked(call, msg, len, ctx, &x509_svidrequest__descriptor, STREAM_X509SVID);
}

static int h_x509bundles(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    return start_checked(call, msg, len, ctx, &x509_bundles_request__descriptor,
                         STREAM_X509BUNDLES);
}

static int h_jwtbundles(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    return start_checked(call, msg, len, ctx, &jwtbundles_request__descriptor,
                         STREAM_JWTBUNDLES);
}

static int h_jwtsvid(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct workload *w = ctx;
    struct ly_error err;
    JWTSVIDRequest *req;
    JWTSVIDResponse resp = JWTSVIDRESPONSE__INIT;
    const struct workload_jwt *toks = NULL;
    JWTSVID *items = NULL;
    JWTSVID **ptrs = NULL;
    struct ly_buf out;
    void *caller = NULL;
    size_t n = 0;
    size_t i;

    if (check_header(call) < 0) {
        return 0;
    }
    ly_error_clear(&err);
    ly_buf_init_secret(&out, 0);
    req = jwtsvidrequest__unpack(NULL, len, msg);
    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "malformed JWTSVIDRequest");
        return 0;
    }
    /* WAPI-15/20: audience is mandatory. */
    if (req->n_audience == 0 || req->n_audience > WORKLOAD_MAX_ITEMS) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "audience is required");
        goto out;
    }
    for (i = 0; i < req->n_audience; i++) {
        if (req->audience[i][0] == '\0') {
            grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "audience must not be empty");
            goto out;
        }
    }
    if (w->ops->attest(w->ctx, grpc_call_peer(call), &caller, &err) < 0 ||
        w->ops->jwt_mint(w->ctx, caller, req->spiffe_id, (const char *const *)req->audience,
                         req->n_audience, &toks, &n, &err) < 0) {
        finish_err(call, &err);
        goto out;
    }
    if (n == 0 || n > WORKLOAD_MAX_ITEMS) {
        grpc_call_finish(call, GRPC_PERMISSION_DENIED, "no identity issued to this workload");
        goto out;
    }
    items = calloc(n, sizeof(*items));
    ptrs = calloc(n, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        grpc_call_finish(call, GRPC_UNAVAILABLE, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        JWTSVID init = JWTSVID__INIT;
        items[i] = init;
        items[i].spiffe_id = (char *)toks[i].spiffe_id;
        items[i].svid = (char *)toks[i].token;
        items[i].hint = (char *)(toks[i].hint != NULL ? toks[i].hint : "");
        ptrs[i] = &items[i];
    }
    resp.n_svids = n;
    resp.svids = ptrs;
    if (pack(&resp.base, &out, &err) < 0 ||
        grpc_call_send(call, out.data, out.len, 0, &err) < 0) {
        grpc_call_finish(call, GRPC_UNAVAILABLE, "cannot send the response");
        goto out;
    }
    grpc_call_finish(call, GRPC_OK, NULL);
out:
    if (caller != NULL) {
        w->ops->release(w->ctx, caller);
    }
    free(items);
    free(ptrs);
    ly_buf_free(&out);
    jwtsvidrequest__free_unpacked(req, NULL);
    return 0;
}

/* ---- JWT claims (JSON) to google.protobuf.Struct --------------------------------------------- */

static void value_free(Google__Protobuf__Value *v);

static void struct_free(Google__Protobuf__Struct *s)
{
    size_t i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->n_fields; i++) {
        free(s->fields[i]->key);
        value_free(s->fields[i]->value);
        free(s->fields[i]);
    }
    free(s->fields);
    free(s);
}

static void value_free(Google__Protobuf__Value *v)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE) {
        free(v->string_value);
    } else if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE) {
        struct_free(v->struct_value);
    } else if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE &&
               v->list_value != NULL) {
        for (i = 0; i < v->list_value->n_values; i++) {
            value_free(v->list_value->values[i]);
        }
        free(v->list_value->values);
        free(v->list_value);
    }
    free(v);
}

static Google__Protobuf__Struct *struct_from_json(const json_t *o, int depth);

static Google__Protobuf__Value *value_from_json(const json_t *j, int depth)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT;
    Google__Protobuf__Value *v;

    if (depth > WORKLOAD_MAX_DEPTH) {
        return NULL;
    }
    v = malloc(sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    *v = init;
    switch (json_typeof(j)) {
    case JSON_NULL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        return v;
    case JSON_TRUE:
    case JSON_FALSE:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = json_is_true(j);
        return v;
    case JSON_INTEGER:
    case JSON_REAL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        v->number_value = json_number_value(j);
        return v;
    case JSON_STRING:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v->string_value = strndup(json_string_value(j), json_string_length(j));
        if (v->string_value == NULL) {
            free(v);
            return NULL;
        }
        return v;
    case JSON_OBJECT:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        v->struct_value = struct_from_json(j, depth + 1);
        if (v->struct_value == NULL) {
            free(v);
            return NULL;
        }
        return v;
    case JSON_ARRAY: {
        Google__Protobuf__ListValue linit = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
        size_t i;
        size_t n = json_array_size(j);

        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        v->list_value = malloc(sizeof(*v->list_value));
        if (v->list_value == NULL) {
            free(v);
            return NULL;
        }
        *v->list_value = linit;
        v->list_value->values = calloc(n ? n : 1, sizeof(*v->list_value->values));
        if (v->list_value->values == NULL) {
            value_free(v);
            return NULL;
        }
        for (i = 0; i < n; i++) {
            v->list_value->values[i] = value_from_json(json_array_get(j, i), depth + 1);
            if (v->list_value->values[i] == NULL) {
                value_free(v);
                return NULL;
            }
            v->list_value->n_values++;
        }
        return v;
    }
    default:
        free(v);
        return NULL;
    }
}

static Google__Protobuf__Struct *struct_from_json(const json_t *o, int depth)
{
    Google__Protobuf__Struct init = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct *s;
    const char *k;
    json_t *val;

    s = malloc(sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    *s = init;
    s->fields = calloc(json_object_size(o) ? json_object_size(o) : 1, sizeof(*s->fields));
    if (s->fields == NULL) {
        free(s);
        return NULL;
    }
    json_object_foreach((json_t *)o, k, val) {
        Google__Protobuf__Struct__FieldsEntry finit = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
        Google__Protobuf__Struct__FieldsEntry *f = malloc(sizeof(*f));

        if (f == NULL) {
            struct_free(s);
            return NULL;
        }
        *f = finit;
        f->key = strdup(k);
        f->value = value_from_json(val, depth + 1);
        if (f->key == NULL || f->value == NULL) {
            free(f->key);
            value_free(f->value);
            free(f);
            struct_free(s);
            return NULL;
        }
        s->fields[s->n_fields++] = f;
    }
    return s;
}

static int h_validate(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct workload *w = ctx;
    struct ly_error err;
    ValidateJWTSVIDRequest *req;
    ValidateJWTSVIDResponse resp = VALIDATE_JWTSVIDRESPONSE__INIT;
    struct jwtsvid_result res;
    Google__Protobuf__Struct *claims = NULL;
    json_t *cj = NULL;
    struct ly_buf out;

    if (check_header(call) < 0) {
        return 0;
    }
    ly_error_clear(&err);
    memset(&res, 0, sizeof(res));
    ly_buf_init(&out, 0);
    req = validate_jwtsvidrequest__unpack(NULL, len, msg);
    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "malformed ValidateJWTSVIDRequest");
        return 0;
    }
    /* WAPI-22: both fields are required. */
    if (req->audience[0] == '\0' || req->svid[0] == '\0') {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "audience and svid are both required");
        goto out;
    }
    if (w->ops->jwt_validate(w->ctx, req->svid, req->audience, &res, &err) < 0) {
        /* go-spiffe's behaviour, which clients expect: InvalidArgument for a bad token. */
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, err.msg);
        goto out;
    }
    cj = json_loadb(res.claims_json, res.claims_json_len, JSON_REJECT_DUPLICATES, NULL);
    claims = json_is_object(cj) ? struct_from_json(cj, 0) : NULL;
    if (claims == NULL) {
        grpc_call_finish(call, GRPC_INTERNAL, "cannot convert the token's claims");
        goto out;
    }
    resp.spiffe_id = res.sub.str;
    resp.claims = claims;
    if (pack(&resp.base, &out, &err) < 0 ||
        grpc_call_send(call, out.data, out.len, 0, &err) < 0) {
        grpc_call_finish(call, GRPC_UNAVAILABLE, "cannot send the response");
        goto out;
    }
    grpc_call_finish(call, GRPC_OK, NULL);
out:
    struct_free(claims);
    json_decref(cj);
    jwtsvid_result_free(&res);
    ly_buf_free(&out);
    validate_jwtsvidrequest__free_unpacked(req, NULL);
    return 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int workload_new(struct loop *loop, const char *path, const struct workload_ops *ops, void *ctx,
                 struct workload **out, struct ly_error *err)
{
    /* FetchWITSVID/FetchWITBundles are not routed: the transport answers Unimplemented (WAPI-9). */
    static const struct grpc_method methods[] = {
        {"/SpiffeWorkloadAPI/FetchX509SVID", h_x509svid},
        {"/SpiffeWorkloadAPI/FetchX509Bundles", h_x509bundles},
        {"/SpiffeWorkloadAPI/FetchJWTSVID", h_jwtsvid},
        {"/SpiffeWorkloadAPI/FetchJWTBundles", h_jwtbundles},
        {"/SpiffeWorkloadAPI/ValidateJWTSVID", h_validate},
    };
    struct workload *w;
    int rc;

    ly_error_clear(err);
    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    w->ops = ops;
    w->ctx = ctx;
    rc = grpc_server_new(loop, methods, sizeof(methods) / sizeof(methods[0]), w, NULL, &w->srv,
                         err);
    if (rc == 0) {
        rc = grpc_server_listen_unix(w->srv, path, 0666, err);
    }
    if (rc < 0) {
        workload_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void workload_notify(struct workload *w)
{
    struct stream *s = w->streams;

    while (s != NULL) {
        struct stream *next = s->next; /* s may be unlinked and freed by the push */
        (void)stream_push(s);
        s = next;
    }
}

size_t workload_stream_count(const struct workload *w)
{
    return w->n_streams;
}

void workload_free(struct workload *w)
{
    if (w == NULL) {
        return;
    }
    while (w->streams != NULL) {
        stream_end(w->streams, GRPC_UNAVAILABLE, "lanyard server is shutting down");
    }
    grpc_server_free(w->srv);
    free(w);
}
