/*
 * ly_text: small helpers for untrusted text: escaping peer-supplied bytes before they go into
 * an error message (capped, non-printable bytes as \xHH), and sniffing whether a buffer is PEM
 * text or blank. Nothing here parses a format; it only looks at bytes.
 */
#ifndef LY_TEXT_H
#define LY_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copy at most `cap` bytes of s (len bytes) into out (outsz bytes) for a message: printable
 * ASCII is kept except '\'' and '\\'; every other byte becomes \xHH; "..." marks a cut. Always
 * NUL-terminates when outsz > 0 (never writes past outsz). Returns out.
 */
const char *ly_text_escape(const char *s, size_t len, size_t cap, char *out, size_t outsz);

/* Lower-case hex of len bytes into out, which holds at least 2 * len + 1 bytes (NUL-terminated). */
void ly_hex_encode(const uint8_t *in, size_t len, char *out);

/* 1 when data, after leading ASCII white space, starts with "-----BEGIN"; 0 otherwise. */
int ly_text_is_pem(const uint8_t *data, size_t len);

/* 1 when data is empty or only ASCII white space (space, tab, CR, LF); 0 otherwise. */
int ly_text_is_blank(const uint8_t *data, size_t len);

#endif
