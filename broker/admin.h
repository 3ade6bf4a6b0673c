/*
 * admin: the wire format of lanyard's admin socket (CLI <-> daemon). Each message is a 4-byte
 * big-endian length followed by one CBOR data item (RFC 8949) holding a map. In memory a
 * message is a jansson value, so the same structures serve `--json` output; on the wire it is
 * CBOR, encoded and decoded by libcbor. Decoding is strict and bounded (definite lengths only,
 * text-keyed maps, no tags, floats or byte strings, depth and size caps) because the daemon
 * reads it from any local process that can reach the socket.
 *
 * Requests: {"op": "<name>", "args": {...}}. Responses: {"ok": true, "result": ...} or
 * {"ok": false, "code": <enum ly_err>, "error": "<message>"}.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

/* Largest CBOR payload of one message (the length prefix excluded). */
#define ADMIN_MAX_MESSAGE (1024u * 1024u)
/* Deepest nesting of maps/arrays accepted. */
#define ADMIN_MAX_DEPTH 16
/* Longest text string accepted. */
#define ADMIN_MAX_TEXT (64u * 1024u)

/* Reasons (ly_error.reason) for decoding failures. */
enum admin_reason {
    ADMIN_R_MALFORMED = 1, /* not well-formed CBOR, truncated, or trailing bytes */
    ADMIN_R_UNSUPPORTED,   /* a CBOR feature the protocol excludes (tag, float, bytes, ...) */
    ADMIN_R_LIMIT,         /* a size, depth or count cap exceeded */
    ADMIN_R_SHAPE,         /* well-formed but not a request/response of the expected shape */
};

/*
 * Encode a jansson value (objects, arrays, strings, integers, true/false/null; reals are
 * refused) as one CBOR item into out (initialised here). Returns 0, LY_ERR_USAGE or LY_ERR_NOMEM.
 */
int admin_cbor_encode(const json_t *v, struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * Decode exactly one CBOR item occupying all `len` bytes. On success *out is a new reference
 * the caller releases with json_decref(). LY_ERR_PARSE with an enum admin_reason otherwise.
 */
int admin_cbor_decode(const uint8_t *data, size_t len, json_t **out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Frame a value: 4-byte length + CBOR, into out (initialised here).
 */
int admin_frame_encode(const json_t *v, struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * Look for one complete frame at the start of buf (len bytes). Returns 0 with *frame_len = 0
 * when more bytes are needed, 0 with *frame_len = 4 + payload length when a frame is complete,
 * or LY_ERR_PARSE (ADMIN_R_LIMIT) when the announced length exceeds ADMIN_MAX_MESSAGE.
 */
int admin_frame_check(const uint8_t *buf, size_t len, size_t *frame_len, struct ly_error *err)
    LY_MUST_USE;

/*
 * Validate a decoded request: an object with a string "op" (1..64 bytes of [a-z.]) and an
 * optional object "args". Sets *op and *args (borrowed from req; args may be NULL).
 */
int admin_request_parse(const json_t *req, const char **op, const json_t **args,
                        struct ly_error *err) LY_MUST_USE;

/* Build responses (new references). error: code is an enum ly_err, msg copied. */
json_t *admin_response_ok(json_t *result /* stolen; may be NULL */);
json_t *admin_response_error(int code, const char *msg);

/*
 * Client: connect to the admin socket at `path`, send {"op": op, "args": args} and wait up to
 * timeout_ms for the response. On a response with ok=false, returns its code and copies its
 * message into err. On success *result is a new reference (json null when absent).
 * LY_ERR_IO when the socket cannot be reached (e.g. no server running).
 */
int admin_call(const char *path, const char *op, const json_t *args, int timeout_ms,
               json_t **result, struct ly_error *err) LY_MUST_USE;

#endif
