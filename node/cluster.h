/* Internal to node/: the Raft groups a node hosts, their transport over the
 * node port (raft_link.c), the metadata RPCs (cluster.c) and the system
 * group's leader duties (driver.c). */
#ifndef NODE_CLUSTER_H
#define NODE_CLUSTER_H

#include <raft/uv.h>

#include "chunks.h"
#include "conn.h"
#include "meta.h"
#include "node.h"

#define NODE_GROUPS_MAX          256u /* groups 0..S on one node */
#define NODE_DATA_GROUPS_DEFAULT 4u
#define NODE_MEMBERS_MAX         256u
#define NODE_SEEDS_MAX           16u
#define NODE_REPLICAS            3u
#define NODE_SUSPECT_AFTER_MS    5000u
#define NODE_DOWN_AFTER_MS       30000u
#define NODE_REPLICAS_REPORTED   64u /* replicas a heartbeat reports the applied index of */

/* One hosted replica. */
struct node_group {
    struct node_cluster *cluster;
    uint64_t id;
    struct meta_sm *sm;
    struct meta_group *group;
    struct raft_uv_transport transport;
    char dir[600];
    bool closing;
    bool dropping; /* GroupHost{drop}: closing, then its folder is set aside */
    struct node_group *next;
};

/* A node as the system group's leader knows it (heartbeats, in memory). */
struct node_map_member {
    uint64_t id;
    char address[64];
    char domain[64];
    Cairn__Wire__NodeState state;
    uint64_t last_heartbeat_ms; /* loop time; 0 = never heard */
    uint64_t bytes_used;
    uint64_t bytes_free;
    uint8_t hosted[NODE_GROUPS_MAX / 8]; /* groups it hosts, from its last heartbeat */
    /* For `cairn admin status` (from its last heartbeat): repair progress and
     * how far each of its replicas has applied. */
    struct node_repair_progress repair;
    struct {
        uint64_t group;
        uint64_t applied;
    } replicas[NODE_REPLICAS_REPORTED];
    unsigned replica_count;
};

/* What the system leader knows of one group (from its leader's heartbeat). */
struct node_group_view {
    uint64_t leader;
    uint64_t voters[8];
    unsigned voter_count;
    uint64_t others[8];
    unsigned other_count;
    uint64_t commit_index;
    uint64_t term;
    uint64_t seen_ms;
    uint64_t busy_until_ms; /* a change driven for it is in flight */
};

/* A reused RPC client per peer address. */
struct node_peer {
    char address[64];
    struct node_client *client;
    struct node_peer *next;
};

struct node_link;

struct node_cluster {
    struct node *node;
    char address[64]; /* advertised "ip:port": the Raft address of this node */
    struct meta_store *store;
    struct meta_mux *mux;
    struct meta_mux_connector connector;
    struct node_group *groups;
    struct node_link *links;
    struct node_peer *peers;
    struct node_call_link *retrying; /* calls waiting to route again (cluster.c) */
    unsigned retrying_count;
    uint32_t data_groups; /* S (0 until known) */
    uv_timer_t tick;      /* heartbeats and, on the system leader, the driver */
    bool stopping;
    unsigned groups_closing;
    void (*stopped_cb)(struct node *node);
    /* The system group's leader's view (valid while it leads group 0). */
    struct node_map_member members[NODE_MEMBERS_MAX];
    unsigned member_count;
    uint64_t epoch;
    struct node_group_view views[NODE_GROUPS_MAX];
    uint64_t lead_since_ms; /* when this node became leader of group 0; 0 = not */
    /* The last cluster map this node got (from a heartbeat's reply). */
    Cairn__Wire__ClusterMap *map;
    uint64_t heartbeat_ms;
    uint64_t suspect_after_ms;
    uint64_t down_after_ms;
    char seeds[NODE_SEEDS_MAX][64]; /* members to ask before any map is known (join) */
    unsigned seed_count;
    bool tick_started;
    bool tick_closing;  /* stopping: uv_close() called on the tick, not yet done */
    bool groups_closed; /* stopping: every group closed; links may remain */
    bool init_pending;  /* ClusterInit not committed yet (after init) */
    bool init_proposing;
    struct meta_propose init_req;
    bool heartbeat_in_flight;
    bool heartbeat_failed;         /* the last one: try another node next time */
    unsigned heartbeat_next;       /* round-robin over the map's nodes */
    bool driving;                  /* a replica change is in flight (one at a time) */
    struct node_chunks *chunks;    /* repair and rebalance (NULL when disabled) */
    bool pumping[NODE_GROUPS_MAX]; /* an outbox entry of this group is on its way */
    uint64_t delivered;            /* outbox entries delivered and acked */
    unsigned drops_pending;        /* replicas closing after GroupHost{drop} */
};

/* ---- cluster.c ---- */

/* Opens the store under the first data dir, the mux, and every group with a
 * folder under DATA/raft. CAIRN_EIO with errmsg. */
int node__cluster_start(struct node *node, char *errmsg);
/* Closes every group, the links and the store; cb(node) when done. */
void node__cluster_stop(struct node *node, void (*cb)(struct node *node));
/* Fills at most max entries of out with the hosted groups' Raft state (for
 * /metrics); returns how many. 0 without a cluster. */
unsigned node__cluster_metrics(struct node *node, struct node_group_metrics *out, unsigned max);
/* Stopping: frees the cluster once groups and links are all closed. */
void node__cluster_maybe_free(struct node_cluster *cluster);
/* Handles a cluster or metadata RPC; false if the type is not one. */
bool node__cluster_handle(struct node *node,
                          struct node_conn *conn,
                          const struct proto_frame_header *header,
                          const uint8_t *payload);
struct node_group *node__group_find(struct node_cluster *cluster, uint64_t id);
/* Starts hosting group id (a new, empty replica unless bootstrap). */
int node__group_host(struct node_cluster *cluster, uint64_t id, bool bootstrap, char *errmsg);
/* The RPC client of a peer address (created on first use). */
struct node_client *node__peer(struct node_cluster *cluster, const char *address);
/* Creates the store and bootstraps groups 0..data_groups on node 1 (init). */
int node__cluster_init(const struct node_config *config,
                       const char *address,
                       uint32_t data_groups,
                       char *errmsg);

/* The leader of group (0 if unknown) and its address (borrowed, valid until
 * the next loop turn), from libraft for hosted groups, else the map. */
uint64_t node__group_leader(struct node_cluster *cluster, uint64_t group, const char **address);
/* Fills a command header as the system (actor 0): a random request id in
 * request_id (caller's buffer), the wall clock. */
void node__command_header(struct node_cluster *cluster,
                          Cairn__Cmd__Header *header,
                          uint8_t request_id[META_REQUEST_ID_SIZE]);
/* Writes DATA/raft/SEED: members' addresses (one a line, at most
 * NODE_SEEDS_MAX), asked in turn until a map is known. */
int node__seed_save(const struct node_config *config,
                    const char *const *addresses,
                    unsigned count,
                    char *errmsg);

/* ---- meta_query.c ---- */

/* Answers a MetaRead from sm into reply (outcome in reply->rv), checking the
 * actor's rights. Returns CAIRN_EIO only when the store fails. Free the
 * reply's pieces with node__meta_query_free(). */
int node__meta_query(struct meta_sm *sm,
                     const Cairn__Wire__MetaRead *query,
                     Cairn__Wire__MetaReadReply *reply);
void node__meta_query_free(Cairn__Wire__MetaReadReply *reply);

/* ---- outbox.c ---- */

/* On each data group this node leads: deliver its outbox (ShareDeliver to
 * the grantee's group), then OutboxAck. */
void node__outbox_tick(struct node_cluster *cluster);

/* ---- raft_link.c ---- */

void node__link_connector_init(struct node_cluster *cluster);
/* A MSG_HELLO on the node port: a Raft stream for a hosted group. Answers,
 * switches conn to raw bytes and hands libraft its end. */
void node__link_accept(struct node_cluster *cluster,
                       struct node_conn *conn,
                       const struct proto_frame_header *header,
                       const uint8_t *payload);
/* Closes every link (shutdown). */
void node__links_close(struct node_cluster *cluster);

/* ---- driver.c (the system group's leader) ---- */

void node__driver_tick(struct node_cluster *cluster);
/* Fills out with a hosted group's libraft state (leader, voters, others,
 * term, commit); free its arrays with node__group_fill_free(). */
void node__group_fill(struct node_cluster *cluster,
                      struct node_group *g,
                      Cairn__Wire__MapGroup *out);
void node__group_fill_free(Cairn__Wire__MapGroup *group);
/* Records a heartbeat; fills map with the current cluster map. */
void node__driver_heartbeat(struct node_cluster *cluster, const Cairn__Wire__Heartbeat *beat);
/* The cluster map as this node knows it (allocated pieces freed by _free). */
Cairn__Wire__ClusterMap *node__map_build(struct node_cluster *cluster);
void node__map_free(Cairn__Wire__ClusterMap *map);
/* A NodeAdd committed: the new member counts as heard from now. */
void node__driver_joined(struct node_cluster *cluster,
                         const Cairn__Wire__NodeJoin *join,
                         uint64_t node_id);
/* Sends this node's heartbeat to the system group's leader (one in flight). */
void node__heartbeat_send(struct node_cluster *cluster);

#endif /* NODE_CLUSTER_H */
