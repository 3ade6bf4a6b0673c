/*
 * ly_file: safe file I/O for keys, certificates and bundles. Reads open with O_NOFOLLOW and
 * check the opened descriptor (no check-then-open races) against a size cap; writes go to a
 * temporary file in the target directory (O_EXCL, chosen mode), are fsync'ed and renamed into
 * place, so a reader sees either the old file or the new one, never a torn one.
 */
#ifndef LY_FILE_H
#define LY_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "ly_buf.h"
#include "ly_error.h"

/* Largest file ly_file_read accepts unless told otherwise (certs, bundles, keys, tokens). */
#define LY_FILE_MAX_DEFAULT (4u * 1024u * 1024u)

/*
 * Read a regular file (not a symlink, not a FIFO) of at most `max` bytes into `out`, which is
 * initialised here (secret when `secret` is set: wiped on free). Caller frees with
 * ly_buf_free(). Returns 0, LY_ERR_IO (cannot open/read), or LY_ERR_USAGE (too big, not a
 * regular file).
 */
int ly_file_read(const char *path, size_t max, int secret, struct ly_buf *out,
                 struct ly_error *err) LY_MUST_USE;

/* Flags for ly_file_write_atomic. */
#define LY_FILE_NO_REPLACE 1 /* fail with LY_ERR_USAGE if the target already exists */

/*
 * Write `len` bytes to `path` atomically with permissions `mode` (e.g. 0600 for keys): temp
 * file in the same directory, write, fsync, rename, fsync the directory. On any failure the
 * target is untouched and the temporary file removed.
 */
int ly_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags,
                         struct ly_error *err) LY_MUST_USE;

/* Create a directory (and parents) with `mode` if missing; an existing directory is fine. */
int ly_file_mkdir_p(const char *path, mode_t mode, struct ly_error *err) LY_MUST_USE;

/* 1 if path exists (lstat succeeds), 0 if not. */
int ly_file_exists(const char *path);

#endif
