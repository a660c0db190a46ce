/*
 * The daemon's ground: data directories, their identity, their stores.
 *
 * Each data directory holds a file IDENTITY ("cluster = <hex>", "node = N"),
 * written once by `cairn-node init` (or join) and checked at every start, so a
 * node never serves a directory of another cluster or another node. The shard
 * store of each directory is locked by stor_store_open(), so two processes
 * never share one. The shard stripe locks (struct node) live as long as the
 * stores.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "node.h"

#define IDENTITY_FILE "IDENTITY"

int node__parse_data_dir(const char *text, struct node_data_dir *dir)
{
    const char *colon = strrchr(text, ':');
    size_t len = colon != NULL ? (size_t)(colon - text) : strlen(text);

    dir->tier = NODE_TIER_HOT;
    if (colon != NULL && strcmp(colon + 1, "cold") == 0) {
        dir->tier = NODE_TIER_COLD;
    } else if (colon != NULL && strcmp(colon + 1, "hot") != 0) {
        return CAIRN_EINVAL;
    }
    if (len == 0 || len >= sizeof(dir->path)) {
        return CAIRN_EINVAL;
    }
    memcpy(dir->path, text, len);
    dir->path[len] = '\0';
    return 0;
}

static int write_identity(const char *dir,
                          const uint8_t cluster_id[NODE_CLUSTER_ID_SIZE],
                          uint64_t node_id,
                          char *errmsg)
{
    char path[600], text[128], hex[2 * NODE_CLUSTER_ID_SIZE + 1];
    int fd, len;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "mkdir(%s): %s", dir, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%s", dir, IDENTITY_FILE);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        return cn_errmsgf(
            errmsg, err == EEXIST ? CAIRN_EEXIST : cn_err_from_errno(err), "%s: %s", path,
            err == EEXIST ? "already initialised (belongs to a cluster)" : strerror(err));
    }
    cn_hex_encode(cluster_id, NODE_CLUSTER_ID_SIZE, hex);
    len = snprintf(text, sizeof(text), "cluster = %s\nnode = %llu\n", hex,
                   (unsigned long long)node_id);
    if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(path);
        return cn_errmsgf(errmsg, cn_err_from_errno(err), "write(%s): %s", path, strerror(err));
    }
    close(fd);
    return 0;
}

int node__identity_create(const struct node_config *config,
                          const uint8_t cluster_id[NODE_CLUSTER_ID_SIZE],
                          uint64_t node_id,
                          char *errmsg)
{
    for (unsigned i = 0; i < config->dir_count; i++) {
        int rv = write_identity(config->dirs[i].path, cluster_id, node_id, errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int read_identity(const char *dir,
                         uint8_t cluster_id[NODE_CLUSTER_ID_SIZE],
                         uint64_t *node_id,
                         char *errmsg)
{
    struct cn_config identity;
    char path[600];
    const char *cluster;
    int rv;

    snprintf(path, sizeof(path), "%s/%s", dir, IDENTITY_FILE);
    rv = cn_config_load(&identity, path, errmsg);
    if (rv == CAIRN_ENOENT) {
        return cn_errmsgf(errmsg, rv, "%s: not a Cairn data directory (run cairn-node init)", dir);
    }
    if (rv != 0) {
        return rv;
    }
    cluster = cn_config_get(&identity, "", "cluster");
    *node_id = 0;
    rv = cn_config_get_u64(&identity, "", "node", node_id, errmsg);
    if (rv == 0 &&
        (cluster == NULL || cn_hex_decode(cluster, cluster_id, NODE_CLUSTER_ID_SIZE) != 0 ||
         *node_id == 0)) {
        rv = cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: bad identity file", path);
    }
    cn_config_close(&identity);
    return rv;
}

int node__identity_load(struct node *node, char *errmsg)
{
    for (unsigned i = 0; i < node->config.dir_count; i++) {
        uint8_t cluster_id[NODE_CLUSTER_ID_SIZE];
        uint64_t node_id;
        int rv = read_identity(node->config.dirs[i].path, cluster_id, &node_id, errmsg);

        if (rv != 0) {
            return rv;
        }
        if (i == 0) {
            memcpy(node->cluster_id, cluster_id, sizeof(cluster_id));
            node->node_id = node_id;
        } else if (memcmp(cluster_id, node->cluster_id, sizeof(cluster_id)) != 0 ||
                   node_id != node->node_id) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s belongs to another cluster or node than %s",
                              node->config.dirs[i].path, node->config.dirs[0].path);
        }
    }
    return 0;
}

int node__stores_open(struct node *node, char *errmsg)
{
    for (unsigned i = 0; i < NODE_SHARD_LOCKS; i++) {
        CN_ASSERT(uv_mutex_init(&node->shard_locks[i]) == 0);
    }
    for (unsigned i = 0; i < node->config.dir_count; i++) {
        char path[600];
        int rv;

        snprintf(path, sizeof(path), "%s/shards", node->config.dirs[i].path);
        rv = stor_store_open(path, &node->config.dirs[i].store, errmsg);
        if (rv != 0) {
            node__stores_close(node);
            return rv;
        }
    }
    return 0;
}

void node__stores_close(struct node *node)
{
    for (unsigned i = 0; i < node->config.dir_count; i++) {
        if (node->config.dirs[i].store != NULL) {
            stor_store_close(node->config.dirs[i].store);
            node->config.dirs[i].store = NULL;
        }
    }
    for (unsigned i = 0; i < NODE_SHARD_LOCKS; i++) {
        uv_mutex_destroy(&node->shard_locks[i]);
    }
}

uint64_t node__reserve_auto(uint64_t disk_total)
{
    uint64_t reserve = disk_total / 100;

    reserve = reserve < (256ull << 20) ? 256ull << 20 : reserve;
    reserve = reserve > (4ull << 30) ? 4ull << 30 : reserve;
    return reserve > disk_total / 10 ? disk_total / 10 : reserve;
}

int node__reserve_check(struct node *node, const struct node_data_dir *dir, size_t len)
{
    struct statvfs vfs;
    uint64_t free_bytes, reserve;

    if (node->config.reserve_set && node->config.reserve == 0) {
        return 0; /* --reserve 0: none */
    }
    if (statvfs(dir->path, &vfs) != 0) {
        return cn_err_from_errno(errno);
    }
    free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    reserve = node->config.reserve_set ? node->config.reserve
                                       : node__reserve_auto((uint64_t)vfs.f_blocks * vfs.f_frsize);
    return free_bytes < reserve || free_bytes - reserve < len ? CAIRN_ENOSPACE : 0;
}
