/*
 * The files the CLI keeps between runs.
 *
 * - $XDG_CONFIG_HOME/cairn/config (or ~/.config/cairn/config), written by
 *   `cairn login`: an INI file (docs/config.md) with a [cairn] section holding
 *   endpoint, token and user. It holds a bearer token, so it is written with
 *   mode 0600 in a 0700 folder, atomically (temp file, fsync, rename), and a
 *   file others can read is refused rather than used.
 * - $XDG_STATE_HOME/cairn/<kind>/<key> (or ~/.local/state/cairn/...): one line
 *   of text per record. `uploads/` maps a local file (path, size, mtime) and
 *   its destination to a tus upload URL, so an interrupted `put` resumes;
 *   `downloads/` maps a target file to the ETag of the partial download next
 *   to it, so an interrupted `get` resumes with Range and If-Match.
 *
 * Possible failure modes: no HOME (CAIRN_EINVAL with a message), a folder we
 * cannot create or a full disk (CAIRN_EIO and friends, from errno), a config
 * file with a syntax error or an unknown key (CAIRN_EINVAL naming the line).
 * A record that cannot be written only costs the ability to resume, so the
 * callers treat that as a warning.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cl_int.h"

static int xdg_dir(const char *env, const char *fallback, char *out, size_t out_size)
{
    const char *base = getenv(env);
    const char *home = getenv("HOME");
    int n;

    if (base != NULL && base[0] == '/') {
        n = snprintf(out, out_size, "%s/cairn", base);
    } else if (home != NULL && home[0] != '\0') {
        n = snprintf(out, out_size, "%s/%s/cairn", home, fallback);
    } else {
        return CAIRN_EINVAL;
    }
    return n > 0 && (size_t)n < out_size ? 0 : CAIRN_ETOOBIG;
}

int cl_config_dir(char *out, size_t out_size)
{
    return xdg_dir("XDG_CONFIG_HOME", ".config", out, out_size);
}

int cl_state_dir(char *out, size_t out_size)
{
    return xdg_dir("XDG_STATE_HOME", ".local/state", out, out_size);
}

int cl_mkdirs(const char *path, mode_t mode)
{
    char buf[CAIRN_PATH_SIZE];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        return CAIRN_EINVAL;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            return cn_err_from_errno(errno);
        }
        buf[i] = i < len ? '/' : '\0';
    }
    return 0;
}

static void copy_value(struct cn_config *file, const char *key, char *out, size_t out_size)
{
    const char *value = cn_config_get(file, "cairn", key);

    if (value != NULL) {
        snprintf(out, out_size, "%s", value);
    }
}

int cl_config_read(const char *dir, struct cl_config *config, char *errmsg)
{
    char path[CAIRN_PATH_SIZE];
    struct cn_config file;
    struct stat st;
    int rv;

    memset(config, 0, sizeof(*config));
    snprintf(path, sizeof(path), "%s/config", dir);
    if (stat(path, &st) != 0) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "%s: %s", path, strerror(errno));
    }
    if ((st.st_mode & 077) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EPERM,
                          "%s holds a token but others may read it (mode %03o); run chmod 600",
                          path, (unsigned)(st.st_mode & 0777));
    }
    rv = cn_config_load(&file, path, errmsg);
    if (rv != 0) {
        return rv;
    }
    copy_value(&file, "endpoint", config->endpoint, sizeof(config->endpoint));
    copy_value(&file, "token", config->token, sizeof(config->token));
    copy_value(&file, "user", config->user, sizeof(config->user));
    rv = cn_config_check_unused(&file, errmsg);
    cn_config_close(&file);
    return rv;
}

/* Writes text to path atomically with mode: temp file, fsync, rename. */
static int write_atomic(const char *path, const char *text, mode_t mode)
{
    char tmp[CAIRN_PATH_SIZE + 16];
    size_t len = strlen(text);
    int fd;
    int rv = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return cn_err_from_errno(errno);
    }
    if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        rv = cn_err_from_errno(errno != 0 ? errno : EIO);
    }
    if (close(fd) != 0 && rv == 0) {
        rv = cn_err_from_errno(errno);
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = cn_err_from_errno(errno);
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

/* Config values are single lines; a CR or LF would forge another key. */
static bool line_safe(const char *value)
{
    return strpbrk(value, "\r\n") == NULL;
}

int cl_config_write(const char *dir, const struct cl_config *config, char *errmsg)
{
    char path[CAIRN_PATH_SIZE];
    char text[CAIRN_URL_SIZE + CAIRN_TOKEN_SIZE + CAIRN_USER_SIZE + 128];
    size_t at;
    int rv;

    if (!line_safe(config->endpoint) || !line_safe(config->token) || !line_safe(config->user)) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "a config value holds a line break");
    }
    rv = cl_mkdirs(dir, 0700);
    if (rv != 0) {
        return cn_errmsgf(errmsg, rv, "mkdir %s: %s", dir, cairn_strerror(rv));
    }
    at = (size_t)snprintf(text, sizeof(text),
                          "# Written by cairn login. Holds a token: keep it private.\n[cairn]\n");
    if (config->endpoint[0] != '\0') {
        at += (size_t)snprintf(text + at, sizeof(text) - at, "endpoint = %s\n", config->endpoint);
    }
    if (config->user[0] != '\0') {
        at += (size_t)snprintf(text + at, sizeof(text) - at, "user = %s\n", config->user);
    }
    if (config->token[0] != '\0') {
        snprintf(text + at, sizeof(text) - at, "token = %s\n", config->token);
    }
    snprintf(path, sizeof(path), "%s/config", dir);
    rv = write_atomic(path, text, 0600);
    if (rv != 0) {
        return cn_errmsgf(errmsg, rv, "write %s: %s", path, cairn_strerror(rv));
    }
    return 0;
}

void cl_record_key(const char *const *parts, size_t part_count, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t digest[32];
    unsigned len = 0;

    CN_ASSERT(ctx != NULL);
    CN_ASSERT(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    for (size_t i = 0; i < part_count; i++) {
        /* The NUL separates parts, so ("ab","c") and ("a","bc") differ. */
        CN_ASSERT(EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) == 1);
    }
    CN_ASSERT(EVP_DigestFinal_ex(ctx, digest, &len) == 1 && len == sizeof(digest));
    EVP_MD_CTX_free(ctx);
    cn_hex_encode(digest, sizeof(digest), out);
}

static int record_path(
    const char *dir, const char *kind, const char *key, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s/%s/%s", dir, kind, key);

    return n > 0 && (size_t)n < out_size ? 0 : CAIRN_ETOOBIG;
}

int cl_record_read(const char *dir, const char *kind, const char *key, char *out, size_t out_size)
{
    char path[CAIRN_PATH_SIZE];
    FILE *f;
    int rv;

    rv = record_path(dir, kind, key, path, sizeof(path));
    if (rv != 0) {
        return rv;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        return cn_err_from_errno(errno);
    }
    if (fgets(out, (int)out_size, f) == NULL) {
        fclose(f);
        return CAIRN_ENOENT;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] == '\0' ? CAIRN_ENOENT : 0;
}

int cl_record_write(const char *dir, const char *kind, const char *key, const char *text)
{
    char path[CAIRN_PATH_SIZE];
    char line[CAIRN_URL_SIZE + 2];
    int rv;

    if (!line_safe(text) || strlen(text) > CAIRN_URL_SIZE) {
        return CAIRN_EINVAL;
    }
    rv = record_path(dir, kind, "", path, sizeof(path));
    if (rv == 0) {
        rv = cl_mkdirs(path, 0700);
    }
    if (rv == 0) {
        rv = record_path(dir, kind, key, path, sizeof(path));
    }
    if (rv != 0) {
        return rv;
    }
    snprintf(line, sizeof(line), "%s\n", text);
    return write_atomic(path, line, 0600);
}

void cl_record_remove(const char *dir, const char *kind, const char *key)
{
    char path[CAIRN_PATH_SIZE];

    if (record_path(dir, kind, key, path, sizeof(path)) == 0) {
        unlink(path);
    }
}

unsigned cl_record_prune(const char *dir, const char *kind, uint64_t max_age_s)
{
    char path[CAIRN_PATH_SIZE], file[CAIRN_PATH_SIZE + 80];
    time_t now = time(NULL);
    unsigned removed = 0;
    struct dirent *d;
    struct stat st;
    DIR *listing;

    if (record_path(dir, kind, "", path, sizeof(path)) != 0 || (listing = opendir(path)) == NULL) {
        return 0;
    }
    while ((d = readdir(listing)) != NULL) {
        /* Only our own names: 64 hex digits (a record key). */
        if (strlen(d->d_name) != 64 || strspn(d->d_name, "0123456789abcdef") != 64) {
            continue;
        }
        snprintf(file, sizeof(file), "%s%.64s", path, d->d_name);
        if (stat(file, &st) == 0 && now - st.st_mtime > (time_t)max_age_s && unlink(file) == 0) {
            removed++;
        }
    }
    closedir(listing);
    return removed;
}
