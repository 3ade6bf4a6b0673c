/*
 * ly_file: race-free reads and atomic, durable writes. It never follows a symlink when reading
 * and never leaves a partial file in place of a complete one.
 */
#define _GNU_SOURCE
#include "ly_file.h"
#include "ly_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int ly_file_read(const char *path, size_t max, int secret, struct ly_buf *out,
                 struct ly_error *err)
{
    struct stat st;
    int fd;
    int rc;
    uint8_t chunk[8192];

    if (secret) {
        ly_buf_init_secret(out, max);
    } else {
        ly_buf_init(out, max);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot open %s", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot stat %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "%s is not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = ly_error_set(err, LY_ERR_IO, 0, "cannot read %s", path);
            goto out;
        }
        if (n == 0) {
            break;
        }
        rc = ly_buf_append(out, chunk, (size_t)n, err);
        if (rc < 0) {
            (void)ly_error_wrap(err, "reading %s", path);
            goto out;
        }
    }
    /* An empty file still yields a valid (empty, NUL-terminated) buffer. */
    if (out->data == NULL) {
        rc = ly_buf_append(out, "", 0, err);
        if (rc < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    if (secret) {
        ly_wipe(chunk, sizeof(chunk));
    }
    (void)close(fd); /* read-only descriptor: a close error loses nothing */
    if (rc < 0) {
        ly_buf_free(out);
    }
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int dir_of(const char *path, char *dir, size_t dirsz)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        if (dirsz < 2) {
            return -1;
        }
        dir[0] = '.';
        dir[1] = '\0';
        return 0;
    }
    n = (size_t)(slash - path);
    if (n == 0) {
        n = 1; /* "/file" lives in "/" */
    }
    if (n >= dirsz) {
        return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int ly_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags,
                         struct ly_error *err)
{
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    uint8_t rnd[8];
    int fd = -1;
    int dfd = -1;
    int rc;
    int n;

    if (dir_of(path, dir, sizeof(dir)) < 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "path too long: %.64s", path);
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "getrandom failed");
    }
    n = snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "path too long: %.64s", path);
    }
    if ((flags & LY_FILE_NO_REPLACE) && ly_file_exists(path)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "%s already exists; refusing to overwrite",
                             path);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot create %s", tmp);
    }
    /* open() applies the umask; set the exact mode on the descriptor. */
    if (fchmod(fd, mode) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot set mode of %s", tmp);
        goto fail;
    }
    if (write_all(fd, data, len) < 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot write %s", tmp);
        goto fail;
    }
    if (fsync(fd) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot fsync %s", tmp);
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot close %s", tmp);
        goto fail;
    }
    fd = -1;
    if (flags & LY_FILE_NO_REPLACE) {
        /* link() fails if the target appeared meanwhile: no overwrite even under a race. */
        if (link(tmp, path) != 0) {
            rc = ly_error_set(err, errno == EEXIST ? LY_ERR_USAGE : LY_ERR_IO, 0,
                              "cannot create %s", path);
            goto fail;
        }
        (void)unlink(tmp); /* the data is safely at `path` already */
    } else if (rename(tmp, path) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot rename into %s", path);
        goto fail;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot fsync directory %s", dir);
        if (dfd >= 0) {
            (void)close(dfd);
        }
        return rc;
    }
    (void)close(dfd); /* read-only directory descriptor */
    return 0;
fail:
    if (fd >= 0) {
        (void)close(fd); /* already failing; the temp file is removed next */
    }
    (void)unlink(tmp);
    return rc;
}

int ly_file_mkdir_p(const char *path, mode_t mode, struct ly_error *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    size_t i;

    if (len == 0 || len >= sizeof(buf)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bad directory path");
    }
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) {
                return ly_error_set(err, LY_ERR_IO, 0, "cannot create directory %s", buf);
            }
            buf[i] = saved;
        }
    }
    {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return ly_error_setx(err, LY_ERR_IO, 0, "%s is not a directory", path);
        }
    }
    return 0;
}

int ly_file_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}
