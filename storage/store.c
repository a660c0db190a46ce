/*
 * The shard store: one file per shard, in 256 fan-out folders, on one data
 * directory. Why files rather than segments: docs/storage.md.
 *
 *   DIR/LOCK                     flock()ed while a process has the store open
 *   DIR/shards/ab/<id hex>.<i>   shard i of the chunk whose id starts with 0xab
 *   DIR/shards/ab/<name>.tmp.<n> a put in progress (removed at open)
 *   DIR/quarantine/<name>.q<ns>  a shard moved aside as corrupt: never served
 *                                or listed, counted by usage
 *
 * The happy path for a put: verify the shard; write it to a fresh temporary
 * file; fdatasync it; rename it over its final name; then join a group commit
 * of the folder: the first put to arrive becomes the leader, fsyncs every
 * folder dirtied so far, and wakes every put whose rename that sync covered.
 * So N concurrent puts cost N file fsyncs but about one folder fsync per folder
 * per batch, and a put returns only once its bytes and its name are durable.
 *
 * Possible failure modes:
 * - a crash (kill -9, power loss) mid-put: the final name either does not
 *   exist yet or names a whole, fsynced file; a temporary file may remain and
 *   is removed at the next open. Every get verifies the shard anyway, so a
 *   file torn by a filesystem or disk that lied is CAIRN_ECORRUPT, never data;
 * - write or fsync fails (EIO, ENOSPC): the temporary file is removed and the
 *   put fails. A failed folder fsync leaves the page cache's state unknown, so
 *   the store refuses all later puts (the Linux fsync lesson) until reopened;
 * - a shard under the wrong name (an operator's copy): its header disagrees
 *   with the name, CAIRN_ECORRUPT;
 * - another process has the store open: CAIRN_ELOCKED.
 * Every disk call of put and delete is a fault point (stor__store_set_fault),
 * and a test fails each in turn and checks that the store stays consistent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "stor_int.h"

#define FANOUT       256
#define QUARANTINE   FANOUT /* The folder number of DIR/quarantine */
#define PATH_MAX_LEN 512
/* "<64 hex>.<index>" */
#define NAME_LEN_MAX     (2 * STOR_ID_SIZE + 4)
#define TMP_PATH_MAX_LEN (PATH_MAX_LEN + 32)

struct stor_store {
    char dir[PATH_MAX_LEN - 128];
    int lock_fd;
    pthread_mutex_t mutex;
    pthread_cond_t synced_cond;
    bool dirty[FANOUT + 1]; /* Folders (and quarantine) with a rename or unlink not yet fsynced */
    uint64_t requested;     /* Generation of the latest rename/unlink */
    uint64_t synced;        /* Every generation up to this one is durable */
    bool syncing;           /* A leader is fsyncing folders */
    int broken;             /* Sticky error after a failed folder fsync */
    uint64_t tmp_seq;       /* Unique temporary names */
    struct cn_fault *fault; /* Tests only: fails the disk calls of put and delete */
};

/* A fault point: true if the test's fault says this disk call fails (with EIO). */
static bool faulted(struct stor_store *store)
{
    return store->fault != NULL && cn_fault_tick(store->fault);
}

void stor__store_set_fault(struct stor_store *store, struct cn_fault *fault)
{
    store->fault = fault;
}

static void folder_path(const struct stor_store *store, unsigned folder, char *path)
{
    if (folder == QUARANTINE) {
        snprintf(path, PATH_MAX_LEN, "%s/quarantine", store->dir);
    } else {
        snprintf(path, PATH_MAX_LEN, "%s/shards/%02x", store->dir, folder);
    }
}

static void shard_path(const struct stor_store *store,
                       const struct stor_id *id,
                       unsigned index,
                       char *path)
{
    char hex[2 * STOR_ID_SIZE + 1];

    cn_hex_encode(id->bytes, STOR_ID_SIZE, hex);
    snprintf(path, PATH_MAX_LEN, "%s/shards/%02x/%s.%u", store->dir, id->bytes[0], hex, index);
}

/* Parses "<64 hex>.<index>"; false for anything else (temporaries, strays). */
static bool parse_name(const char *name, struct stor_id *id, unsigned *index)
{
    char hex[2 * STOR_ID_SIZE + 1];
    char *end;
    unsigned long value;

    if (strlen(name) > NAME_LEN_MAX || strlen(name) < 2 * STOR_ID_SIZE + 2 ||
        name[2 * STOR_ID_SIZE] != '.') {
        return false;
    }
    memcpy(hex, name, 2 * STOR_ID_SIZE);
    hex[2 * STOR_ID_SIZE] = '\0';
    if (cn_hex_decode(hex, id->bytes, STOR_ID_SIZE) != 0) {
        return false;
    }
    value = strtoul(name + 2 * STOR_ID_SIZE + 1, &end, 10);
    if (*end != '\0' || value >= STOR_SHARD_COUNT_MAX) {
        return false;
    }
    *index = (unsigned)value;
    return true;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv = 0;

    if (fd < 0) {
        return cn_err_from_errno(errno);
    }
    if (fsync(fd) != 0) {
        rv = cn_err_from_errno(errno);
    }
    close(fd);
    return rv;
}

/* Leader's work, outside the lock: fsync every folder in dirty. */
static int sync_folders(struct stor_store *store, const bool *dirty)
{
    char path[PATH_MAX_LEN];
    int rv;

    for (unsigned i = 0; i <= QUARANTINE; i++) {
        if (!dirty[i]) {
            continue;
        }
        folder_path(store, i, path);
        rv = faulted(store) ? CAIRN_EIO : fsync_path(path);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Marks the folders dirty (second: another one, or -1) and returns once a folder
 * fsync that began after that is done. */
static int group_commit(struct stor_store *store, unsigned folder, int second)
{
    bool dirty[FANOUT + 1];
    uint64_t mine;
    uint64_t target;
    int rv;

    CN_ASSERT(folder <= QUARANTINE);
    CN_ASSERT(second < 0 || second <= QUARANTINE);
    pthread_mutex_lock(&store->mutex);
    store->dirty[folder] = true;
    if (second >= 0) {
        store->dirty[second] = true;
    }
    mine = ++store->requested;
    while (store->synced < mine && store->broken == 0) {
        if (store->syncing) {
            pthread_cond_wait(&store->synced_cond, &store->mutex);
            continue;
        }
        /* Lead a batch: everything requested so far rides on this sync. */
        store->syncing = true;
        target = store->requested;
        memcpy(dirty, store->dirty, sizeof(dirty));
        memset(store->dirty, 0, sizeof(store->dirty));
        pthread_mutex_unlock(&store->mutex);
        rv = sync_folders(store, dirty);
        pthread_mutex_lock(&store->mutex);
        store->syncing = false;
        if (rv != 0) {
            store->broken = rv;
        } else {
            store->synced = target;
        }
        pthread_cond_broadcast(&store->synced_cond);
    }
    CN_ASSERT(store->synced >= mine || store->broken != 0);
    rv = store->synced >= mine ? 0 : store->broken;
    pthread_mutex_unlock(&store->mutex);
    return rv;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return cn_err_from_errno(errno);
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The disk calls of put, each a fault point for tests; they return 0 or a CAIRN_E* code. */
static int disk_create(struct stor_store *store, const char *path, int *fd)
{
    if (faulted(store)) {
        return CAIRN_EIO;
    }
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return *fd < 0 ? cn_err_from_errno(errno) : 0;
}

static int disk_write(struct stor_store *store, int fd, const uint8_t *data, size_t len)
{
    return faulted(store) ? CAIRN_EIO : write_all(fd, data, len);
}

static int disk_datasync(struct stor_store *store, int fd)
{
    if (faulted(store)) {
        return CAIRN_EIO;
    }
    return fdatasync(fd) != 0 ? cn_err_from_errno(errno) : 0;
}

static int disk_rename(struct stor_store *store, const char *source, const char *target)
{
    if (faulted(store)) {
        return CAIRN_EIO;
    }
    return rename(source, target) != 0 ? cn_err_from_errno(errno) : 0;
}

/* Writes a fresh temporary file next to path and fdatasyncs it. */
static int write_temporary(
    struct stor_store *store, const char *path, const uint8_t *shard, size_t len, char *tmp)
{
    uint64_t seq;
    int fd = -1;
    int rv;

    pthread_mutex_lock(&store->mutex);
    seq = ++store->tmp_seq;
    pthread_mutex_unlock(&store->mutex);
    snprintf(tmp, TMP_PATH_MAX_LEN, "%s.tmp.%llu", path, (unsigned long long)seq);
    rv = disk_create(store, tmp, &fd);
    if (rv != 0) {
        return rv;
    }
    rv = disk_write(store, fd, shard, len);
    if (rv == 0) {
        rv = disk_datasync(store, fd);
    }
    close(fd);
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

static int read_file(const char *path, struct cn_buf *out);

/* A shard may replace one of its name only if that one is missing, corrupt
 * or the same bytes (a chunk is encoded the same way every time). A valid
 * shard of another encoding of the chunk (another scheme, key version or
 * compression) is never replaced: the chunk's record may name it, and the
 * other shards of its encoding would no longer agree with it
 * (CAIRN_ECONFLICT). */
static int check_replace(const char *path, const uint8_t *shard, size_t len)
{
    struct stor_shard_header old;
    struct cn_buf existing;
    int rv;

    if (access(path, F_OK) != 0) {
        return 0; /* the usual case: nothing there */
    }
    cn_buf_init(&existing);
    rv = read_file(path, &existing);
    if (rv == 0 && stor_shard_parse(existing.base, existing.len, &old) == 0 &&
        (existing.len != len || memcmp(existing.base, shard, len) != 0)) {
        rv = CAIRN_ECONFLICT;
    } else if (rv != CAIRN_ENOMEM) {
        rv = 0; /* gone meanwhile, unreadable or corrupt: replaced */
    }
    cn_buf_close(&existing);
    return rv;
}

int stor_store_put(struct stor_store *store, const uint8_t *shard, size_t len)
{
    struct stor_shard_header header;
    char path[PATH_MAX_LEN];
    char tmp[TMP_PATH_MAX_LEN];
    int rv;

    rv = stor_shard_parse(shard, len, &header);
    if (rv != 0) {
        return rv;
    }
    pthread_mutex_lock(&store->mutex);
    rv = store->broken;
    pthread_mutex_unlock(&store->mutex);
    if (rv != 0) {
        return rv;
    }
    CN_ASSERT(header.index < STOR_SHARD_COUNT_MAX);
    shard_path(store, &header.id, header.index, path);
    rv = check_replace(path, shard, len);
    if (rv != 0) {
        return rv;
    }
    rv = write_temporary(store, path, shard, len, tmp);
    if (rv != 0) {
        return rv;
    }
    rv = disk_rename(store, tmp, path);
    if (rv != 0) {
        unlink(tmp);
        return rv;
    }
    return group_commit(store, header.id.bytes[0], -1);
}

/* Reads the whole file at path into out, refusing sizes no shard can have. */
static int read_file(const char *path, struct cn_buf *out)
{
    struct stat st;
    ssize_t n;
    int fd;
    int rv = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? CAIRN_ENOENT : cn_err_from_errno(errno);
    }
    if (fstat(fd, &st) != 0) {
        rv = cn_err_from_errno(errno);
        goto err_close;
    }
    if (st.st_size < STOR_SHARD_HEADER_SIZE || st.st_size > STOR_SHARD_SIZE_MAX) {
        rv = CAIRN_ECORRUPT;
        goto err_close;
    }
    rv = cn_buf_reserve(out, (size_t)st.st_size);
    if (rv != 0) {
        goto err_close;
    }
    n = pread(fd, out->base, (size_t)st.st_size, 0);
    if (n < 0) {
        rv = cn_err_from_errno(errno);
    } else if (n != st.st_size) {
        rv = CAIRN_ECORRUPT; /* Shrunk under us: treat it as torn. */
    } else {
        out->len = (size_t)n;
    }
err_close:
    close(fd);
    return rv;
}

int stor_store_get(struct stor_store *store,
                   const struct stor_id *id,
                   unsigned index,
                   struct cn_buf *out)
{
    struct stor_shard_header header;
    char path[PATH_MAX_LEN];
    int rv;

    CN_ASSERT(index < STOR_SHARD_COUNT_MAX);
    cn_buf_reset(out);
    shard_path(store, id, index, path);
    rv = read_file(path, out);
    if (rv == 0) {
        rv = stor_shard_parse(out->base, out->len, &header);
    }
    if (rv == 0 &&
        (memcmp(header.id.bytes, id->bytes, STOR_ID_SIZE) != 0 || header.index != index)) {
        rv = CAIRN_ECORRUPT;
    }
    if (rv != 0) {
        cn_buf_reset(out);
    }
    return rv;
}

int stor_store_get_range(struct stor_store *store,
                         const struct stor_id *id,
                         unsigned index,
                         uint64_t offset,
                         size_t len,
                         uint8_t *out)
{
    struct cn_buf shard;
    size_t payload_size;
    int rv;

    cn_buf_init(&shard);
    rv = stor_store_get(store, id, index, &shard);
    if (rv != 0) {
        goto err_close;
    }
    payload_size = shard.len - STOR_SHARD_HEADER_SIZE;
    if (offset > payload_size || len > payload_size - offset) {
        rv = CAIRN_ERANGE;
        goto err_close;
    }
    memcpy(out, shard.base + STOR_SHARD_HEADER_SIZE + offset, len);
err_close:
    cn_buf_close(&shard);
    return rv;
}

int stor_store_delete(struct stor_store *store, const struct stor_id *id, unsigned index)
{
    char path[PATH_MAX_LEN];

    CN_ASSERT(index < STOR_SHARD_COUNT_MAX);
    shard_path(store, id, index, path);
    if (faulted(store)) {
        return CAIRN_EIO;
    }
    if (unlink(path) != 0) {
        return errno == ENOENT ? CAIRN_ENOENT : cn_err_from_errno(errno);
    }
    return group_commit(store, id->bytes[0], -1);
}

int stor_store_quarantine(struct stor_store *store, const struct stor_id *id, unsigned index)
{
    char path[PATH_MAX_LEN];
    char target[PATH_MAX_LEN];
    char hex[2 * STOR_ID_SIZE + 1];
    struct timespec now;
    uint64_t seq;
    int rv;

    CN_ASSERT(index < STOR_SHARD_COUNT_MAX);
    pthread_mutex_lock(&store->mutex);
    rv = store->broken;
    seq = ++store->tmp_seq;
    pthread_mutex_unlock(&store->mutex);
    if (rv != 0) {
        return rv;
    }
    shard_path(store, id, index, path);
    cn_hex_encode(id->bytes, STOR_ID_SIZE, hex);
    clock_gettime(CLOCK_REALTIME, &now);
    /* Unique: the time in ns, and a sequence number within this open. */
    snprintf(target, sizeof(target), "%s/quarantine/%s.%u.q%llu%09ld.%llu", store->dir, hex, index,
             (unsigned long long)now.tv_sec, now.tv_nsec, (unsigned long long)seq);
    rv = disk_rename(store, path, target);
    if (rv != 0) {
        return rv;
    }
    return group_commit(store, id->bytes[0], QUARANTINE);
}

/* Lists one fan-out folder; with clean, removes the temporaries of interrupted puts. */
static int walk_folder(
    struct stor_store *store, unsigned folder, bool clean, stor_store_iterate_cb cb, void *data)
{
    char path[PATH_MAX_LEN];
    struct dirent *entry;
    struct stor_id id;
    struct stat st;
    unsigned index;
    DIR *dir;
    int rv = 0;

    folder_path(store, folder, path);
    dir = opendir(path);
    if (dir == NULL) {
        return cn_err_from_errno(errno);
    }
    while (rv == 0 && (entry = readdir(dir)) != NULL) {
        if (clean && strstr(entry->d_name, ".tmp.") != NULL) {
            unlinkat(dirfd(dir), entry->d_name, 0);
            continue;
        }
        if (cb == NULL || !parse_name(entry->d_name, &id, &index)) {
            continue;
        }
        if (fstatat(dirfd(dir), entry->d_name, &st, 0) != 0) {
            continue; /* Deleted while we walked. */
        }
        rv = cb(data, &id, index, (uint64_t)st.st_size);
    }
    closedir(dir);
    return rv;
}

int stor_store_iterate(struct stor_store *store, stor_store_iterate_cb cb, void *data)
{
    int rv;

    for (unsigned i = 0; i < FANOUT; i++) {
        rv = walk_folder(store, i, false, cb, data);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Ordering of listings: (chunk id, index). */
static int ref_compare(const struct stor_shard_ref *a, const struct stor_id *id, unsigned index)
{
    int order = memcmp(a->id.bytes, id->bytes, STOR_ID_SIZE);

    if (order != 0) {
        return order;
    }
    return (a->index > index) - (a->index < index);
}

static void ref_swap(struct stor_shard_ref *a, struct stor_shard_ref *b)
{
    struct stor_shard_ref tmp = *a;

    *a = *b;
    *b = tmp;
}

/* Restores the max-heap below heap[at]. */
static void heap_sift_down(struct stor_shard_ref *heap, size_t n, size_t at)
{
    for (;;) {
        size_t child = 2 * at + 1;

        if (child >= n) {
            return;
        }
        if (child + 1 < n &&
            ref_compare(&heap[child + 1], &heap[child].id, heap[child].index) > 0) {
            child++;
        }
        if (ref_compare(&heap[child], &heap[at].id, heap[at].index) <= 0) {
            return;
        }
        ref_swap(&heap[child], &heap[at]);
        at = child;
    }
}

static void heap_push(struct stor_shard_ref *heap,
                      size_t *n,
                      const struct stor_id *id,
                      unsigned index)
{
    size_t at = (*n)++;

    heap[at] = (struct stor_shard_ref){.id = *id, .index = index};
    while (at > 0) {
        size_t parent = (at - 1) / 2;

        if (ref_compare(&heap[parent], &heap[at].id, heap[at].index) >= 0) {
            break;
        }
        ref_swap(&heap[parent], &heap[at]);
        at = parent;
    }
}

/* A page being gathered: the cap smallest names after the cursor, in a max-heap. */
struct page_scan {
    const struct stor_shard_ref *cursor; /* NULL: from the start */
    struct stor_shard_ref *heap;
    size_t cap;
    size_t n;
    bool rejected; /* Some name after the cursor did not fit: the folder has more */
};

/* Reads one folder's names, keeping the scan's cap smallest after its cursor. */
static int scan_folder(struct stor_store *store, unsigned folder, struct page_scan *scan)
{
    char path[PATH_MAX_LEN];
    struct dirent *entry;
    struct stor_id id;
    unsigned index;
    DIR *dir;

    folder_path(store, folder, path);
    dir = opendir(path);
    if (dir == NULL) {
        return cn_err_from_errno(errno);
    }
    while ((entry = readdir(dir)) != NULL) {
        if (!parse_name(entry->d_name, &id, &index) ||
            (scan->cursor != NULL && ref_compare(scan->cursor, &id, index) >= 0)) {
            continue;
        }
        if (scan->n < scan->cap) {
            heap_push(scan->heap, &scan->n, &id, index);
            continue;
        }
        scan->rejected = true;
        if (ref_compare(&scan->heap[0], &id, index) > 0) {
            scan->heap[0] = (struct stor_shard_ref){.id = id, .index = index};
            heap_sift_down(scan->heap, scan->n, 0);
        }
    }
    closedir(dir);
    return 0;
}

/* Sorts the heap in place (ascending) and sets *last to its largest name; then fills
 * in sizes, dropping shards gone since. Returns how many are kept. */
static size_t finish_page(struct stor_store *store,
                          struct stor_shard_ref *refs,
                          size_t n,
                          struct stor_shard_ref *last)
{
    char path[PATH_MAX_LEN];
    struct stat st;
    size_t kept = 0;

    for (size_t end = n; end > 1; end--) {
        ref_swap(&refs[0], &refs[end - 1]);
        heap_sift_down(refs, end - 1, 0);
    }
    *last = refs[n - 1];
    for (size_t i = 0; i < n; i++) {
        shard_path(store, &refs[i].id, refs[i].index, path);
        if (stat(path, &st) != 0) {
            continue; /* Deleted while we listed. */
        }
        refs[kept] = refs[i];
        refs[kept++].size = (uint64_t)st.st_size;
    }
    return kept;
}

/* True if some folder from `folder` on holds a shard name. */
static int any_shard_from(struct stor_store *store, unsigned folder, bool *found)
{
    char path[PATH_MAX_LEN];
    struct dirent *entry;
    struct stor_id id;
    unsigned index;
    DIR *dir;

    *found = false;
    for (; folder < FANOUT && !*found; folder++) {
        folder_path(store, folder, path);
        dir = opendir(path);
        if (dir == NULL) {
            return cn_err_from_errno(errno);
        }
        while (!*found && (entry = readdir(dir)) != NULL) {
            *found = parse_name(entry->d_name, &id, &index);
        }
        closedir(dir);
    }
    return 0;
}

int stor_store_list(struct stor_store *store,
                    const struct stor_shard_ref *after,
                    struct stor_shard_ref *refs,
                    size_t limit,
                    size_t *count,
                    bool *more)
{
    struct stor_shard_ref cursor;
    struct page_scan scan = {0};
    unsigned folder = after != NULL ? after->id.bytes[0] : 0;
    int rv;

    *count = 0;
    *more = false;
    if (limit == 0) {
        return CAIRN_EINVAL;
    }
    if (after != NULL) {
        cursor = *after;
        scan.cursor = &cursor;
    }
    while (folder < FANOUT && *count < limit) {
        scan =
            (struct page_scan){.cursor = scan.cursor, .heap = refs + *count, .cap = limit - *count};
        rv = scan_folder(store, folder, &scan);
        if (rv != 0) {
            return rv;
        }
        if (scan.n > 0) {
            /* The largest name taken is the cursor for the rest of this folder. */
            *count += finish_page(store, scan.heap, scan.n, &cursor);
            scan.cursor = &cursor;
        }
        if (!scan.rejected) {
            folder++; /* This folder is done. */
        }
    }
    if (*count < limit) {
        return 0;
    }
    if (scan.rejected) {
        *more = true;
        return 0;
    }
    return any_shard_from(store, folder, more);
}

static int count_shard(void *data, const struct stor_id *id, unsigned index, uint64_t size)
{
    struct stor_store_usage *usage = data;

    (void)id;
    (void)index;
    usage->shard_count++;
    usage->shard_bytes += size;
    return 0;
}

/* Counts the files in the quarantine folder and their bytes. */
static int count_quarantined(struct stor_store *store, struct stor_store_usage *usage)
{
    char path[PATH_MAX_LEN];
    struct dirent *entry;
    struct stat st;
    DIR *dir;

    folder_path(store, QUARANTINE, path);
    dir = opendir(path);
    if (dir == NULL) {
        return cn_err_from_errno(errno);
    }
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.' ||
            fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        usage->quarantined_count++;
        usage->quarantined_bytes += (uint64_t)st.st_size;
    }
    closedir(dir);
    return 0;
}

int stor_store_usage(struct stor_store *store, struct stor_store_usage *usage)
{
    struct statvfs vfs;
    int rv;

    memset(usage, 0, sizeof(*usage));
    rv = stor_store_iterate(store, count_shard, usage);
    if (rv == 0) {
        rv = count_quarantined(store, usage);
    }
    if (rv != 0) {
        return rv;
    }
    if (statvfs(store->dir, &vfs) != 0) {
        return cn_err_from_errno(errno);
    }
    usage->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    usage->disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    return 0;
}

static int make_dir(const char *path, char *errmsg)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "mkdir(%s): %s", path, strerror(errno));
    }
    return 0;
}

/* Creates the folders, removes temporaries, and makes the folder tree durable. */
static int prepare_folders(struct stor_store *store, char *errmsg)
{
    char path[PATH_MAX_LEN];
    int rv;

    snprintf(path, sizeof(path), "%s/shards", store->dir);
    rv = make_dir(path, errmsg);
    for (unsigned i = 0; i < FANOUT && rv == 0; i++) {
        folder_path(store, i, path);
        rv = make_dir(path, errmsg);
        if (rv == 0) {
            rv = walk_folder(store, i, true, NULL, NULL);
        }
        if (rv == 0) {
            rv = fsync_path(path);
        }
    }
    if (rv == 0) {
        folder_path(store, QUARANTINE, path);
        rv = make_dir(path, errmsg);
    }
    if (rv == 0) {
        rv = fsync_path(path);
    }
    if (rv == 0) {
        snprintf(path, sizeof(path), "%s/shards", store->dir);
        rv = fsync_path(path);
    }
    if (rv == 0) {
        snprintf(path, sizeof(path), "%s", store->dir);
        rv = fsync_path(path);
    }
    if (rv != 0 && errmsg[0] == '\0') {
        cn_errmsgf(errmsg, rv, "%s: cleaning or syncing failed: %s", path, cairn_strerror(rv));
    }
    return rv;
}

static int lock_store(struct stor_store *store, char *errmsg)
{
    char path[PATH_MAX_LEN];

    snprintf(path, sizeof(path), "%s/LOCK", store->dir);
    store->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (store->lock_fd < 0) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "open(%s): %s", path, strerror(errno));
    }
    if (flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        close(store->lock_fd);
        return cn_errmsgf(errmsg, CAIRN_ELOCKED, "%s: another process has the store open", path);
    }
    return 0;
}

int stor_store_open(const char *dir, struct stor_store **out, char *errmsg)
{
    struct stor_store *store;
    int rv;

    if (strlen(dir) >= sizeof(store->dir)) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: path too long", dir);
    }
    errmsg[0] = '\0';
    store = calloc(1, sizeof(*store));
    if (store == NULL) {
        return CAIRN_ENOMEM;
    }
    snprintf(store->dir, sizeof(store->dir), "%s", dir);
    rv = make_dir(dir, errmsg);
    if (rv != 0) {
        goto err_free;
    }
    rv = lock_store(store, errmsg);
    if (rv != 0) {
        goto err_free;
    }
    rv = prepare_folders(store, errmsg);
    if (rv != 0) {
        goto err_unlock;
    }
    pthread_mutex_init(&store->mutex, NULL);
    pthread_cond_init(&store->synced_cond, NULL);
    *out = store;
    return 0;

err_unlock:
    close(store->lock_fd);
err_free:
    free(store);
    return rv;
}

void stor_store_close(struct stor_store *store)
{
    if (store == NULL) {
        return;
    }
    CN_ASSERT(!store->syncing);
    pthread_cond_destroy(&store->synced_cond);
    pthread_mutex_destroy(&store->mutex);
    close(store->lock_fd);
    free(store);
}
