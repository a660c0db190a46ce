/*
 * `cairn put` and `cairn get`: whole files, with a progress bar on a terminal
 * and resumption after an interruption.
 *
 * put, the happy path:
 * 1. stat the local file (a regular file); the remote path defaults to its
 *    name in the drive's top folder, and a REMOTE ending in '/' is a folder.
 * 2. Below --tus-min (8 MiB): one streaming PUT.
 * 3. Else tus: the record key is SHA-256(local absolute path, size, mtime,
 *    endpoint, root, remote path). A recorded upload URL is asked for its
 *    offset (HEAD); a gone one is forgotten. Otherwise POST /v1/uploads and
 *    record the URL before sending a byte.
 * 4. PATCH --chunk-size bytes at a time from the server's offset; the last
 *    PATCH commits the file. Forget the record, print the entry.
 *
 * get, the happy path:
 * 1. stat the remote file: its size and ETag (or, with --version N, that
 *    version, whose bytes never change).
 * 2. Bytes go to LOCAL.cairn-part next to the target. If a part file and a
 *    record (keyed by the part's absolute path, endpoint, root, remote path
 *    and version) with the same ETag exist, ask for the rest: Range from the
 *    part's size, If-Match the ETag. Else start the part file afresh.
 * 3. Stream, fsync, rename over LOCAL, forget the record.
 *
 * Possible failure modes:
 * - The connection drops during a tus PATCH: ask the offset again and go on,
 *   up to RETRY_MAX times with growing pauses; after that the record stays,
 *   and the next `cairn put` of the same unchanged file resumes.
 * - The local file changes (size or mtime): another record key, a fresh upload.
 * - The server's offset exceeds the file (cl_tus_next: CAIRN_EPROTO): forget
 *   the record and fail; the next run starts afresh.
 * - The remote file changed under a partial download: 412 (CAIRN_ECONFLICT)
 *   or 416: start the part file again, once.
 * - get is interrupted: the part file and its record stay for the next run;
 *   LOCAL itself is never half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define RETRY_MAX        5
#define DRAW_EVERY_MS    100
#define RECORD_AGE_MAX_S (7 * 24 * 3600) /* the gateway keeps an upload 24 h */

/* ---- The progress bar ---- */

struct progress {
    bool on;
    const char *label;
    uint64_t total; /* the whole file's size: a tus PATCH only knows its own */
    uint64_t start_ms;
    uint64_t drawn_ms;
    bool drawn;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned term_width(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) {
        return ws.ws_col;
    }
    return 80;
}

static void progress_init(struct progress *p,
                          const struct cli *cli,
                          const char *label,
                          uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->on = cli->args.progress == 1 ||
            (cli->args.progress == -1 && !cli->args.quiet && isatty(STDERR_FILENO));
    p->label = label;
    p->total = total;
    p->start_ms = now_ms();
}

static void progress_draw(void *data, uint64_t done, uint64_t total)
{
    struct progress *p = data;
    uint64_t now = now_ms();
    char line[512];

    total = p->total > 0 ? p->total : total;
    if (!p->on || (p->drawn && now - p->drawn_ms < DRAW_EVERY_MS && done != total)) {
        return;
    }
    cl_progress_render(line, sizeof(line), term_width() - 1, p->label, done, total,
                       now - p->start_ms);
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->drawn = true;
    p->drawn_ms = now;
}

static void progress_end(struct progress *p)
{
    if (p->on && p->drawn) {
        fputc('\n', stderr);
    }
}

/* ---- put ---- */

/* The remote path for a put: REMOTE; REMOTE/name when REMOTE ends in '/' or
 * is an existing folder; name (in the drive's top) without REMOTE. */
static int put_target(const struct cli *cli, char *out, size_t out_size)
{
    const char *local = cli->args.pos[0];
    const char *remote = cli->args.pos_count > 1 ? cli->args.pos[1] : "/";
    char joined[CAIRN_PATH_SIZE + CAIRN_NAME_SIZE];
    struct cairn_entry entry;
    size_t len = strlen(remote);

    if (len > 0 && remote[len - 1] != '/' && cairn_stat(cli->client, remote, &entry) == 0 &&
        entry.folder) {
        snprintf(joined, sizeof(joined), "%s/%s", remote, cl_path_basename(local));
    } else if (len > 0 && remote[len - 1] == '/') {
        snprintf(joined, sizeof(joined), "%s%s", remote, cl_path_basename(local));
    } else {
        snprintf(joined, sizeof(joined), "%s", remote);
    }
    return cl_path_normalize(joined, out, out_size);
}

static void print_entry_line(const struct cli *cli, const char *verb, const struct cairn_entry *e)
{
    char size[32];

    if (cli->args.quiet) {
        return;
    }
    cl_format_size(e->size, size, sizeof(size));
    printf("%s %s (%s, version %" PRIu64 ", etag %s)\n", verb, e->path[0] ? e->path : e->name, size,
           e->version, e->etag);
}

/* Sends one PATCH after another from the server's offset. */
/* True for a failure after which asking the offset again and going on may
 * work: the connection broke, the gateway is busy, or the server's offset is
 * not ours (409: a cut PATCH's chunks landed after our HEAD). */
static bool tus_retryable(int rv)
{
    return rv == CAIRN_EUNAVAIL || rv == CAIRN_ETIMEOUT || rv == CAIRN_EBUSY ||
           rv == CAIRN_ECONFLICT;
}

/* Sends one PATCH after another from offset (the server's, just asked or
 * just created), asking again after a retryable failure. On failure the
 * client's errmsg says why. */
static int tus_send(
    struct cli *cli, const char *url, int fd, uint64_t size, uint64_t offset, struct progress *p)
{
    struct cairn_upload_result result = {0};
    uint64_t len;
    unsigned tries = 0;
    int rv = 0;

    while (rv == 0 || (tus_retryable(rv) && tries < RETRY_MAX)) {
        if (rv != 0) {
            /* Wait, then ask where the server is. */
            fprintf(stderr, "\ncairn: %s; resuming (%u/%u)\n", cairn_client_errmsg(cli->client),
                    tries + 1, (unsigned)RETRY_MAX);
            sleep(1u << tries++);
            rv = cairn_upload_offset(cli->client, url, &offset);
            continue;
        }
        if (cl_tus_next(offset, size, cli->args.chunk_size, &len) != 0) {
            snprintf(cli->client->errmsg, sizeof(cli->client->errmsg),
                     "the server holds %" PRIu64 " bytes of a %" PRIu64 "-byte file", offset, size);
            return CAIRN_EPROTO;
        }
        if (len == 0) {
            return 0;
        }
        rv = cairn_upload_patch(cli->client, url, fd, offset, len, progress_draw, p, &result);
        if (rv == 0 && result.offset <= offset) {
            snprintf(cli->client->errmsg, sizeof(cli->client->errmsg),
                     "a PATCH at %" PRIu64 " left the offset at %" PRIu64, offset, result.offset);
            return CAIRN_EPROTO;
        }
        if (rv == 0) {
            offset = result.offset;
            tries = 0;
        }
    }
    return rv;
}

static int put_tus(
    struct cli *cli, int fd, const struct stat *st, const char *remote, struct progress *p)
{
    char abs_path[PATH_MAX], size[24], mtime[48], key[65], url[CAIRN_URL_SIZE];
    const char *parts[6] = {
        abs_path, size, mtime, cli->endpoint, cli->args.root ? cli->args.root : "", remote};
    uint64_t offset = 0;
    int rv;

    if (realpath(cli->args.pos[0], abs_path) == NULL) {
        snprintf(cli->client->errmsg, sizeof(cli->client->errmsg), "%s: %s", cli->args.pos[0],
                 strerror(errno));
        return cn_err_from_errno(errno);
    }
    snprintf(size, sizeof(size), "%jd", (intmax_t)st->st_size);
    snprintf(mtime, sizeof(mtime), "%jd.%09ld", (intmax_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    cl_record_key(parts, CN_ARRAY_SIZE(parts), key);
    cl_record_prune(cli->state_dir, "uploads", RECORD_AGE_MAX_S);
    rv = cl_record_read(cli->state_dir, "uploads", key, url, sizeof(url));
    if (rv == 0) {
        rv = cairn_upload_offset(cli->client, url, &offset);
        if (rv == CAIRN_ENOENT || rv == CAIRN_EEXPIRED || rv == CAIRN_EINVAL) {
            cl_record_remove(cli->state_dir, "uploads", key); /* Gone: start again. */
        } else if (rv != 0) {
            return rv;
        } else if (!cli->args.quiet) {
            fprintf(stderr, "cairn: resuming the upload of %s at byte %" PRIu64 "\n",
                    cli->args.pos[0], offset);
        }
    }
    if (rv != 0) {
        rv = cairn_upload_create(cli->client, remote, (uint64_t)st->st_size, cli->args.base, url);
        if (rv != 0) {
            return rv;
        }
        offset = 0; /* A new upload holds nothing: no need to ask. */
        if (cl_record_write(cli->state_dir, "uploads", key, url) != 0) {
            fprintf(stderr, "cairn: warning: cannot record the upload in %s: it will not resume\n",
                    cli->state_dir);
        }
    }
    rv = tus_send(cli, url, fd, (uint64_t)st->st_size, offset, p);
    if (rv == CAIRN_EPROTO || rv == CAIRN_ENOENT || rv == CAIRN_EEXPIRED) {
        cl_record_remove(cli->state_dir, "uploads", key);
    }
    if (rv == 0) {
        cl_record_remove(cli->state_dir, "uploads", key);
    }
    return rv;
}

int cli_put(struct cli *cli)
{
    char remote[CAIRN_PATH_SIZE];
    struct cairn_entry entry;
    struct cairn_put_options options = {.if_match = cli->args.if_match, .base = cli->args.base};
    struct progress p;
    struct stat st;
    int fd, rv;

    if (put_target(cli, remote, sizeof(remote)) != 0 || remote[0] == '\0') {
        return cli_fail(cli, CAIRN_EINVAL, "bad remote path");
    }
    fd = open(cli->args.pos[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rv = cn_err_from_errno(errno);
        fprintf(stderr, "cairn: %s: %s\n", cli->args.pos[0], strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return rv;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        fprintf(stderr, "cairn: %s: not a regular file\n", cli->args.pos[0]);
        return CAIRN_EINVAL;
    }
    progress_init(&p, cli, cl_path_basename(remote), (uint64_t)st.st_size);
    /* A base version goes with a simple PUT: the gateway's tus does not check one yet. */
    if ((uint64_t)st.st_size < cli->args.tus_min || cli->args.if_match != NULL ||
        cli->args.base > 0) {
        options.progress = progress_draw;
        options.progress_data = &p;
        rv = cairn_put_fd(cli->client, remote, fd, (uint64_t)st.st_size, &options, &entry);
        progress_end(&p);
    } else {
        rv = put_tus(cli, fd, &st, remote, &p);
        progress_end(&p);
        if (rv == 0) {
            rv = cairn_stat(cli->client, remote, &entry);
        }
    }
    close(fd);
    if (rv != 0) {
        return cli_fail(cli, rv, remote);
    }
    print_entry_line(cli, "uploaded", &entry);
    return 0;
}

/* ---- get ---- */

/* The local target: LOCAL, LOCAL/name for a folder, or ./name. */
static int get_target(const struct cli *cli, char *out, size_t out_size)
{
    const char *name = cl_path_basename(cli->args.pos[0]);
    const char *local = cli->args.pos_count > 1 ? cli->args.pos[1] : name;
    struct stat st;
    int n;

    if (name[0] == '\0') {
        return CAIRN_EINVAL;
    }
    if (stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        n = snprintf(out, out_size, "%s/%s", local, name);
    } else {
        n = snprintf(out, out_size, "%s", local);
    }
    return n > 0 && (size_t)n < out_size ? 0 : CAIRN_ETOOBIG;
}

static int get_stdout(struct cli *cli, const char *remote)
{
    struct cairn_get_options options = {.version = cli->args.version};
    struct cairn_get_result result;
    int rv = cairn_get_fd(cli->client, remote, &options, STDOUT_FILENO, &result);

    return rv != 0 ? cli_fail(cli, rv, remote) : 0;
}

/* The record key of a partial download, and the ETag it must match. */
static int get_record_key(struct cli *cli, const char *part, const char *remote, char key[65])
{
    char dir[PATH_MAX], abs_part[PATH_MAX + CAIRN_NAME_SIZE + 16], version[24];
    char copy[PATH_MAX + 16];
    const char *parts[6] = {"get",  abs_part, cli->endpoint, cli->args.root ? cli->args.root : "",
                            remote, version};
    char *slash;

    snprintf(copy, sizeof(copy), "%s", part);
    slash = strrchr(copy, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    if (realpath(slash != NULL ? (copy[0] ? copy : "/") : ".", dir) == NULL) {
        return cn_err_from_errno(errno);
    }
    snprintf(abs_part, sizeof(abs_part), "%s/%s", dir, cl_path_basename(part));
    snprintf(version, sizeof(version), "%" PRIu64, cli->args.version);
    cl_record_key(parts, CN_ARRAY_SIZE(parts), key);
    return 0;
}

/* Opens the part file: resuming (*offset > 0) when it and its record agree. */
static int part_open(
    struct cli *cli, const char *part, const char *key, const char *etag, uint64_t *offset)
{
    char recorded[CAIRN_URL_SIZE];
    struct stat st;
    int fd;

    *offset = 0;
    fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) == 0 && st.st_size > 0 &&
        cl_record_read(cli->state_dir, "downloads", key, recorded, sizeof(recorded)) == 0 &&
        strcmp(recorded, etag) == 0) {
        *offset = (uint64_t)st.st_size;
        lseek(fd, 0, SEEK_END);
        return fd;
    }
    if (ftruncate(fd, 0) != 0) {
        close(fd);
        return -errno;
    }
    if (cl_record_write(cli->state_dir, "downloads", key, etag) != 0) {
        fprintf(stderr, "cairn: warning: cannot record the download in %s: it will not resume\n",
                cli->state_dir);
    }
    return fd;
}

/* Checks that the part file holds the whole content the server announced. */
static int part_complete(struct cli *cli, int fd, const struct cairn_get_result *result)
{
    struct stat st;

    if (fsync(fd) != 0 || fstat(fd, &st) != 0) {
        return cn_err_from_errno(errno);
    }
    if (result->size > 0 && (uint64_t)st.st_size != result->size) {
        snprintf(cli->client->errmsg, sizeof(cli->client->errmsg), "got %jd bytes of %" PRIu64,
                 (intmax_t)st.st_size, result->size);
        return CAIRN_EPROTO;
    }
    return 0;
}

static int get_into(struct cli *cli,
                    const char *remote,
                    const char *part,
                    const char *key,
                    const struct cairn_entry *entry,
                    struct progress *p)
{
    struct cairn_get_options options = {
        .version = cli->args.version, .progress = progress_draw, .progress_data = p};
    struct cairn_get_result result;
    bool restarted = false;
    unsigned breaks = 0;
    uint64_t offset;
    int fd, rv;

    for (;;) {
        fd = part_open(cli, part, key, entry->etag, &offset);
        if (fd < 0) {
            fprintf(stderr, "cairn: %s: %s\n", part, strerror(-fd));
            return cn_err_from_errno(-fd);
        }
        if (offset > 0 && !cli->args.quiet) {
            fprintf(stderr, "cairn: resuming the download of %s at byte %" PRIu64 "\n", remote,
                    offset);
        }
        options.offset = offset;
        options.etag = cli->args.has_version ? NULL : entry->etag;
        rv = cairn_get_fd(cli->client, remote, &options, fd, &result);
        if (rv == 0) {
            rv = part_complete(cli, fd, &result);
        }
        close(fd);
        if (offset > 0 && !restarted && (rv == CAIRN_ECONFLICT || rv == CAIRN_ERANGE)) {
            /* The part belongs to another version: start it again, once. */
            cl_record_remove(cli->state_dir, "downloads", key);
            restarted = true;
            continue;
        }
        if ((rv == CAIRN_EUNAVAIL || rv == CAIRN_ETIMEOUT || rv == CAIRN_EBUSY) &&
            breaks < RETRY_MAX) {
            /* The connection broke: the part and its record let us go on. */
            fprintf(stderr, "\ncairn: %s; resuming (%u/%u)\n", cairn_client_errmsg(cli->client),
                    breaks + 1, RETRY_MAX);
            sleep(1u << breaks++);
            continue;
        }
        return rv;
    }
}

int cli_get(struct cli *cli)
{
    char remote[CAIRN_PATH_SIZE], local[PATH_MAX], part[PATH_MAX + 16], key[65];
    struct cairn_entry entry;
    struct progress p;
    int rv;

    if (cl_path_normalize(cli->args.pos[0], remote, sizeof(remote)) != 0 || remote[0] == '\0') {
        return cli_fail(cli, CAIRN_EINVAL, "bad remote path");
    }
    if (cli->args.pos_count > 1 && strcmp(cli->args.pos[1], "-") == 0) {
        return get_stdout(cli, remote);
    }
    rv = cairn_stat(cli->client, remote, &entry);
    if (rv == 0 && entry.folder) {
        snprintf(cli->client->errmsg, sizeof(cli->client->errmsg), "is a folder");
        rv = CAIRN_EISDIR;
    }
    if (rv != 0) {
        return cli_fail(cli, rv, remote);
    }
    if (cli->args.has_version) {
        /* A version's bytes never change: its number names them. */
        snprintf(entry.etag, sizeof(entry.etag), "version %" PRIu64, cli->args.version);
    }
    if (get_target(cli, local, sizeof(local)) != 0) {
        return cli_fail(cli, CAIRN_EINVAL, "bad local path");
    }
    snprintf(part, sizeof(part), "%s.cairn-part", local);
    cl_record_prune(cli->state_dir, "downloads", RECORD_AGE_MAX_S);
    rv = get_record_key(cli, part, remote, key);
    if (rv != 0) {
        fprintf(stderr, "cairn: %s: %s\n", local, cairn_strerror(rv));
        return rv;
    }
    progress_init(&p, cli, cl_path_basename(remote), cli->args.has_version ? 0 : entry.size);
    rv = get_into(cli, remote, part, key, &entry, &p);
    progress_end(&p);
    if (rv != 0) {
        struct stat st;

        /* An empty part is nothing to resume: leave no litter. */
        if (stat(part, &st) == 0 && st.st_size == 0) {
            unlink(part);
            cl_record_remove(cli->state_dir, "downloads", key);
        }
        return cli_fail(cli, rv, remote);
    }
    if (rename(part, local) != 0) {
        rv = cn_err_from_errno(errno);
        fprintf(stderr, "cairn: rename %s: %s\n", local, strerror(errno));
        return rv;
    }
    cl_record_remove(cli->state_dir, "downloads", key);
    if (!cli->args.quiet) {
        char size[32];
        struct stat st;

        stat(local, &st);
        cl_format_size((uint64_t)st.st_size, size, sizeof(size));
        printf("downloaded %s to %s (%s)\n", remote, local, size);
    }
    return 0;
}
