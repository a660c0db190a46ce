/* Internal to node/: the daemon's state, shared by main.c, daemon.c and blocks.c. */
#ifndef NODE_NODE_H
#define NODE_NODE_H

#include "node_rpc.h"
#include "storage.h"
#include "wire.pb-c.h"

#define NODE_DATA_DIRS_MAX   16
#define NODE_CLUSTER_ID_SIZE 16

enum node_tier {
    NODE_TIER_HOT,
    NODE_TIER_COLD
};

struct node_data_dir {
    char path[512];
    enum node_tier tier;
    struct stor_store *store;
};

/* Everything `cairn-node run` reads from flags and its config file. */
struct node_config {
    char listen[64];
    char secret_path[512];
    char failure_domain[64];
    struct node_data_dir dirs[NODE_DATA_DIRS_MAX];
    unsigned dir_count;
    enum cn_log_level log_level;
};

/* The daemon. One per process, passed explicitly (STYLE §11). */
struct node {
    uv_loop_t *loop;
    struct node_config config;
    uint8_t secret[NODE_SECRET_SIZE];
    uint8_t cluster_id[NODE_CLUSTER_ID_SIZE];
    uint64_t node_id;
    struct node_server *server;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    unsigned work_in_flight; /* block operations on the thread pool */
    bool stopping;
};

/* Parses "PATH" or "PATH:hot" / "PATH:cold" into dir. CAIRN_EINVAL. */
int node__parse_data_dir(const char *text, struct node_data_dir *dir);

/* Writes the identity files of a new node into each data directory.
 * CAIRN_EEXIST if one already belongs to a cluster. */
int node__identity_create(const struct node_config *config,
                          const uint8_t cluster_id[NODE_CLUSTER_ID_SIZE],
                          uint64_t node_id,
                          char *errmsg);
/* Reads and cross-checks the identity of every data directory. CAIRN_ENOENT
 * (not initialised), CAIRN_EINVAL (directories of different clusters or nodes). */
int node__identity_load(struct node *node, char *errmsg);

/* Opens each data directory's shard store (locking it). */
int node__stores_open(struct node *node, char *errmsg);
void node__stores_close(struct node *node);

/* Handles a block RPC frame (MSG_SHARD_*); false if the type is not one. */
bool node__blocks_handle(struct node *node,
                         struct node_conn *conn,
                         const struct proto_frame_header *header,
                         const uint8_t *payload);

#endif /* NODE_NODE_H */
