/*
 * cairn-meta: the metadata RPCs by hand, through node_meta (node_meta.h) —
 * for operators looking at a cluster and for process tests.
 *
 *   cairn-meta --secret FILE --node ADDR [--node ADDR]... [--timeout MS] [--actor U]
 *              [--request-id HEX32] COMMAND ARGS
 *   map                               the cluster map, as one JSON object
 *   ns-create NS OWNER ROOT NAME      NamespaceCreate in group NS >> 56
 *   mkdir NS PARENT NAME INODE        Mkdir
 *   user-create ID NAME               UserCreate in group 0 (no password)
 *   grant NS INODE USER ROLE GRANTEE_NS  AclGrant (ROLE 1 viewer, 2 editor)
 *   node-state NODE up|draining|removed  NodeSetState in group 0: drain a node
 *                                     (its shards move away; it is never placed
 *                                     on) or take it back
 *   mkdir-many NS PARENT PREFIX FIRST_INODE COUNT
 *                                     COUNT Mkdirs, MANY_IN_FLIGHT at a time; prints
 *                                     "ok=N failed=M ms=ELAPSED"
 *   propose-raw GROUP HEX             MSG_META_PROPOSE with these command bytes
 *   read-ns NS | resolve NS PATH | list NS PARENT | user ID | shared-with DRIVE_NS
 *   watch NS CURSOR TIMEOUT_MS        prints "seq=N ms=ELAPSED"
 *   info                              the first --node's hosted replicas, as JSON
 *                                     (applied index and digest of each)
 *
 * Proposals print "rv=<CAIRN_E* or 0> value=N duplicate=0|1"; reads print
 * "rv=..." and the record's main fields as key=value. Exit codes: 0 the call
 * went through (whatever the outcome), 1 the call failed (its error is
 * printed), 2 bad usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "node_meta.h"

struct tool {
    uv_loop_t loop;
    struct node_meta *meta;
    uint64_t timeout_ms;
    uint64_t actor;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    uint64_t started_ms;
    bool done;
    int rv;
    /* mkdir-many: the next to send, how many answered, how many failed */
    uint64_t many_ns, many_parent, many_first, many_count, many_next, many_answered;
    uint64_t many_failed;
    const char *many_prefix;
};

static int usage_error(const char *what)
{
    fprintf(stderr, "cairn-meta: %s\n", what);
    return 2;
}

static uint64_t num(const char *text)
{
    return strtoull(text, NULL, 0);
}

static const char *errname(int rv)
{
    return rv == 0 ? "0" : cairn_errname(rv);
}

static void call_failed(struct tool *tool, int rv)
{
    fprintf(stderr, "cairn-meta: call failed: %s (%s)\n", cairn_strerror(rv), cairn_errname(rv));
    tool->rv = 1;
}

/* ---- Proposals ---- */

static void propose_cb(void *data, int rv, const Cairn__Wire__MetaProposeReply *reply)
{
    struct tool *tool = data;

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    printf("rv=%s value=%llu duplicate=%d\n", errname(reply->rv), (unsigned long long)reply->value,
           reply->duplicate);
}

static int propose(struct tool *tool, uint64_t group, Cairn__Cmd__Command *cmd)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uv_timeval64_t now;
    int rv;

    uv_gettimeofday(&now);
    header.request_id.data = tool->request_id;
    header.request_id.len = sizeof(tool->request_id);
    header.time_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_usec / 1000;
    header.actor_user = tool->actor;
    cmd->header = &header;
    rv = node_meta_propose(tool->meta, group, cmd, tool->timeout_ms, propose_cb, tool);
    cmd->header = NULL; /* packed by now: the header dies with this frame */
    return rv;
}

#define MANY_IN_FLIGHT 32

static int many_send(struct tool *tool);

static void many_cb(void *data, int rv, const Cairn__Wire__MetaProposeReply *reply)
{
    struct tool *tool = data;

    tool->many_answered++;
    if (rv != 0 || (reply->rv != 0 && reply->rv != CAIRN_EEXIST)) {
        tool->many_failed++;
        fprintf(stderr, "cairn-meta: mkdir: %s\n", cairn_errname(rv != 0 ? rv : reply->rv));
    }
    if (tool->many_next < tool->many_count && many_send(tool) != 0) {
        tool->many_answered++; /* counted as failed: the loop still ends */
        tool->many_failed++;
    }
    if (tool->many_answered == tool->many_count) {
        tool->done = true;
        printf("ok=%llu failed=%llu ms=%llu\n",
               (unsigned long long)(tool->many_count - tool->many_failed),
               (unsigned long long)tool->many_failed,
               (unsigned long long)(uv_now(&tool->loop) - tool->started_ms));
        tool->rv = tool->many_failed > 0 ? 1 : 0;
    }
}

/* Sends the next Mkdir of a mkdir-many, with its own request id. */
static int many_send(struct tool *tool)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    char name[META_NAME_MAX + 1];
    uv_timeval64_t now;
    uint64_t i = tool->many_next++;

    randombytes_buf(request_id, sizeof(request_id));
    uv_gettimeofday(&now);
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    header.time_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_usec / 1000;
    header.actor_user = tool->actor;
    snprintf(name, sizeof(name), "%s%llu", tool->many_prefix, (unsigned long long)i);
    op.ns = tool->many_ns;
    op.parent = tool->many_parent;
    op.name = name;
    op.inode = tool->many_first + i;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    return node_meta_propose(tool->meta, node_ns_group(op.ns), &cmd, tool->timeout_ms, many_cb,
                             tool);
}

static int mkdir_many(struct tool *tool, char **argv)
{
    int rv = 0;

    tool->many_ns = num(argv[1]);
    tool->many_parent = num(argv[2]);
    tool->many_prefix = argv[3];
    tool->many_first = num(argv[4]);
    tool->many_count = num(argv[5]);
    if (tool->many_count == 0) {
        return CAIRN_EINVAL;
    }
    tool->started_ms = uv_now(&tool->loop);
    for (unsigned k = 0; k < MANY_IN_FLIGHT && tool->many_next < tool->many_count && rv == 0; k++) {
        rv = many_send(tool);
    }
    return rv;
}

static void raw_cb(void *data, int rv, const struct proto_frame_header *h, const uint8_t *payload)
{
    struct tool *tool = data;
    Cairn__Wire__MetaProposeReply *reply;

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    reply = cairn__wire__meta_propose_reply__unpack(NULL, h->length, payload);
    if (reply == NULL) {
        call_failed(tool, CAIRN_EPROTO);
        return;
    }
    printf("rv=%s value=%llu duplicate=%d\n", errname(reply->rv), (unsigned long long)reply->value,
           reply->duplicate);
    cairn__wire__meta_propose_reply__free_unpacked(reply, NULL);
}

/* Sends bytes as a command, bypassing the encoder: a node must refuse junk. */
static int propose_raw(struct tool *tool,
                       const char *address,
                       const uint8_t *secret,
                       uint64_t group,
                       const char *hex,
                       struct node_client **client)
{
    Cairn__Wire__MetaPropose req = CAIRN__WIRE__META_PROPOSE__INIT;
    struct node_rpc_options options;
    size_t len = strlen(hex) / 2;
    uint8_t *bytes = cn_xmalloc(len + 1), packed[4096];
    size_t packed_len;
    int rv;

    for (size_t i = 0; i < len; i++) {
        int hi = cn_hex_value(hex[2 * i]), lo = cn_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(bytes);
            return CAIRN_EINVAL;
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    if (len > 2048) {
        free(bytes);
        return CAIRN_EINVAL;
    }
    req.group = group;
    req.command.data = bytes;
    req.command.len = len;
    packed_len = cairn__wire__meta_propose__pack(&req, packed);
    free(bytes);
    node_rpc_options_init(&options);
    *client = node_client_new(&tool->loop, address, secret, &options);
    rv = node_client_call(*client, CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE, packed, packed_len,
                          tool->timeout_ms, raw_cb, tool);
    return rv;
}

/* ---- Reads ---- */

static void print_inode(const char *prefix, const Cairn__Cmd__Inode *inode)
{
    if (inode != NULL) {
        printf(" %s=%llu %s_name=%s %s_parent=%llu %s_version=%llu", prefix,
               (unsigned long long)inode->id, prefix, inode->name, prefix,
               (unsigned long long)inode->parent, prefix, (unsigned long long)inode->version);
    }
}

static void read_cb(void *data, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct tool *tool = data;

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    printf("rv=%s journal_seq=%llu", errname(reply->rv), (unsigned long long)reply->journal_seq);
    if (reply->namespace_ != NULL) {
        printf(" ns=%llu owner=%llu root=%llu name=%s", (unsigned long long)reply->namespace_->id,
               (unsigned long long)reply->namespace_->owner,
               (unsigned long long)reply->namespace_->root_inode, reply->namespace_->name);
    }
    if (reply->user != NULL) {
        printf(" user=%llu name=%s", (unsigned long long)reply->user->id, reply->user->name);
    }
    print_inode("inode", reply->inode);
    print_inode("parent", reply->parent);
    for (size_t i = 0; i < reply->n_shares; i++) {
        printf(" share%zu=%llu/%llu/%s/%d", i, (unsigned long long)reply->shares[i]->ns,
               (unsigned long long)reply->shares[i]->inode, reply->shares[i]->name,
               reply->shares[i]->role);
    }
    if (reply->n_entries > 0 || reply->more) {
        printf(" entries=");
        for (size_t i = 0; i < reply->n_entries; i++) {
            printf("%s%s", i > 0 ? "," : "", reply->entries[i]->name);
        }
        printf(" more=%d", reply->more);
    }
    printf("\n");
}

static int read_query(struct tool *tool, int argc, char **argv)
{
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__PathQuery path = CAIRN__WIRE__PATH_QUERY__INIT;
    Cairn__Wire__ListQuery list = CAIRN__WIRE__LIST_QUERY__INIT;
    const char *what = argv[0];

    q.actor = tool->actor;
    if (strcmp(what, "read-ns") == 0 && argc == 2) {
        q.query_case = CAIRN__WIRE__META_READ__QUERY_NS;
        q.ns = num(argv[1]);
        q.group = node_ns_group(q.ns);
    } else if (strcmp(what, "resolve") == 0 && argc == 3) {
        path.ns = num(argv[1]);
        path.path = argv[2];
        q.query_case = CAIRN__WIRE__META_READ__QUERY_RESOLVE;
        q.resolve = &path;
        q.group = node_ns_group(path.ns);
    } else if (strcmp(what, "list") == 0 && argc == 3) {
        list.ns = num(argv[1]);
        list.parent = num(argv[2]);
        q.query_case = CAIRN__WIRE__META_READ__QUERY_LIST;
        q.list = &list;
        q.group = node_ns_group(list.ns);
    } else if (strcmp(what, "shared-with") == 0 && argc == 2) {
        q.query_case = CAIRN__WIRE__META_READ__QUERY_SHARED_WITH;
        q.shared_with = num(argv[1]);
        q.group = node_ns_group(q.shared_with);
    } else if (strcmp(what, "user") == 0 && argc == 2) {
        q.query_case = CAIRN__WIRE__META_READ__QUERY_USER;
        q.user = num(argv[1]);
        q.group = 0;
    } else {
        return CAIRN_EINVAL;
    }
    return node_meta_read(tool->meta, &q, tool->timeout_ms, read_cb, tool);
}

static void watch_cb(void *data, int rv, uint64_t seq)
{
    struct tool *tool = data;

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    printf("seq=%llu ms=%llu\n", (unsigned long long)seq,
           (unsigned long long)(uv_now(&tool->loop) - tool->started_ms));
}

static void print_ids(const char *key, const uint64_t *ids, size_t n);

static void info_cb(void *data, int rv, const struct proto_frame_header *h, const uint8_t *payload)
{
    struct tool *tool = data;
    Cairn__Wire__NodeInfo *info;
    char hex[2 * META_DIGEST_SIZE + 1];

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    info = cairn__wire__node_info__unpack(NULL, h->length, payload);
    if (info == NULL) {
        call_failed(tool, CAIRN_EPROTO);
        return;
    }
    printf("{\"node_id\":%llu,\"groups\":[", (unsigned long long)info->node_id);
    for (size_t i = 0; i < info->n_groups; i++) {
        const Cairn__Wire__MapGroup *g = info->groups[i];
        hex[0] = '\0';
        if (g->digest.len == META_DIGEST_SIZE) {
            cn_hex_encode(g->digest.data, g->digest.len, hex);
        }
        printf("%s{\"id\":%llu,\"leader\":%llu,\"applied_index\":%llu,\"commit_index\":%llu,"
               "\"digest\":\"%s\",",
               i > 0 ? "," : "", (unsigned long long)g->id, (unsigned long long)g->leader,
               (unsigned long long)g->applied_index, (unsigned long long)g->commit_index, hex);
        print_ids("voters", g->voters, g->n_voters);
        printf("}");
    }
    printf("]}\n");
    cairn__wire__node_info__free_unpacked(info, NULL);
}

/* ---- The map ---- */

static void print_ids(const char *key, const uint64_t *ids, size_t n)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        printf("%s%llu", i > 0 ? "," : "", (unsigned long long)ids[i]);
    }
    printf("]");
}

static void map_cb(void *data, int rv, const Cairn__Wire__ClusterMap *map)
{
    struct tool *tool = data;

    tool->done = true;
    if (rv != 0) {
        call_failed(tool, rv);
        return;
    }
    printf("{\"epoch\":%llu,\"data_groups\":%u,\"nodes\":[", (unsigned long long)map->epoch,
           map->data_groups);
    for (size_t i = 0; i < map->n_nodes; i++) {
        printf("%s{\"id\":%llu,\"address\":\"%s\",\"state\":%d}", i > 0 ? "," : "",
               (unsigned long long)map->nodes[i]->id, map->nodes[i]->address, map->nodes[i]->state);
    }
    printf("],\"groups\":[");
    for (size_t i = 0; i < map->n_groups; i++) {
        const Cairn__Wire__MapGroup *g = map->groups[i];
        printf("%s{\"id\":%llu,\"leader\":%llu,\"term\":%llu,\"commit_index\":%llu,",
               i > 0 ? "," : "", (unsigned long long)g->id, (unsigned long long)g->leader,
               (unsigned long long)g->term, (unsigned long long)g->commit_index);
        print_ids("voters", g->voters, g->n_voters);
        printf(",");
        print_ids("others", g->others, g->n_others);
        printf("}");
    }
    printf("]}\n");
}

/* ---- Commands ---- */

static int command(struct tool *tool, int argc, char **argv)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__NamespaceCreate ns = CAIRN__CMD__NAMESPACE_CREATE__INIT;
    Cairn__Cmd__Mkdir mkdir = CAIRN__CMD__MKDIR__INIT;
    Cairn__Cmd__UserCreate user = CAIRN__CMD__USER_CREATE__INIT;
    Cairn__Cmd__AclGrant grant = CAIRN__CMD__ACL_GRANT__INIT;
    Cairn__Cmd__NodeSetState state = CAIRN__CMD__NODE_SET_STATE__INIT;
    Cairn__Wire__MetaWatch watch = CAIRN__WIRE__META_WATCH__INIT;
    const char *what = argv[0];

    if (strcmp(what, "map") == 0 && argc == 1) {
        return node_meta_cluster_map(tool->meta, tool->timeout_ms, map_cb, tool);
    }
    if (strcmp(what, "ns-create") == 0 && argc == 5) {
        ns.ns = num(argv[1]);
        ns.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
        ns.owner = num(argv[2]);
        ns.root_inode = num(argv[3]);
        ns.name = argv[4];
        cmd.op_case = CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE;
        cmd.namespace_create = &ns;
        return propose(tool, node_ns_group(ns.ns), &cmd);
    }
    if (strcmp(what, "mkdir") == 0 && argc == 5) {
        mkdir.ns = num(argv[1]);
        mkdir.parent = num(argv[2]);
        mkdir.name = argv[3];
        mkdir.inode = num(argv[4]);
        cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
        cmd.mkdir = &mkdir;
        return propose(tool, node_ns_group(mkdir.ns), &cmd);
    }
    if (strcmp(what, "user-create") == 0 && argc == 3) {
        user.user_id = num(argv[1]);
        user.name = argv[2];
        cmd.op_case = CAIRN__CMD__COMMAND__OP_USER_CREATE;
        cmd.user_create = &user;
        return propose(tool, 0, &cmd);
    }
    if (strcmp(what, "mkdir-many") == 0 && argc == 6) {
        return mkdir_many(tool, argv);
    }
    if (strcmp(what, "grant") == 0 && argc == 6) {
        grant.ns = num(argv[1]);
        grant.inode = num(argv[2]);
        grant.user = num(argv[3]);
        grant.role = (Cairn__Cmd__Role)num(argv[4]);
        grant.grantee_ns = num(argv[5]);
        cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_GRANT;
        cmd.acl_grant = &grant;
        return propose(tool, node_ns_group(grant.ns), &cmd);
    }
    if (strcmp(what, "node-state") == 0 && argc == 3) {
        static const struct {
            const char *name;
            Cairn__Cmd__NodeState state;
        } states[] = {{"up", CAIRN__CMD__NODE_STATE__NODE_UP},
                      {"draining", CAIRN__CMD__NODE_STATE__NODE_DRAINING},
                      {"removed", CAIRN__CMD__NODE_STATE__NODE_REMOVED}};
        state.node_id = num(argv[1]);
        for (size_t i = 0; i < CN_ARRAY_SIZE(states); i++) {
            if (strcmp(argv[2], states[i].name) == 0) {
                state.state = states[i].state;
            }
        }
        if (state.state == CAIRN__CMD__NODE_STATE__NODE_STATE_NONE) {
            fprintf(stderr, "cairn-meta: node-state wants up, draining or removed\n");
            return CAIRN_EINVAL;
        }
        cmd.op_case = CAIRN__CMD__COMMAND__OP_NODE_SET_STATE;
        cmd.node_set_state = &state;
        return propose(tool, 0, &cmd);
    }
    if (strcmp(what, "watch") == 0 && argc == 4) {
        watch.ns = num(argv[1]);
        watch.group = node_ns_group(watch.ns);
        watch.actor = tool->actor;
        watch.cursor = num(argv[2]);
        watch.timeout_ms = (uint32_t)num(argv[3]);
        tool->started_ms = uv_now(&tool->loop);
        return node_meta_watch(tool->meta, &watch, watch_cb, tool);
    }
    return read_query(tool, argc, argv);
}

static int parse_request_id(struct tool *tool, const char *hex)
{
    if (strlen(hex) != 2 * META_REQUEST_ID_SIZE) {
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < META_REQUEST_ID_SIZE; i++) {
        int hi = cn_hex_value(hex[2 * i]), lo = cn_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return CAIRN_EINVAL;
        }
        tool->request_id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"secret", required_argument, NULL, 's'},     {"node", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},    {"actor", required_argument, NULL, 'a'},
        {"request-id", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0},
    };
    struct tool tool = {.timeout_ms = 10000};
    const char *nodes[16], *secret_path = NULL;
    unsigned node_count = 0;
    uint8_t secret[NODE_SECRET_SIZE];
    char errmsg[CN_ERRMSG_SIZE];
    struct node_client *raw_client = NULL;
    int opt, rv;

    signal(SIGPIPE, SIG_IGN);
    randombytes_buf(tool.request_id, sizeof(tool.request_id));
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 's') {
            secret_path = optarg;
        } else if (opt == 'n' && node_count < 16) {
            nodes[node_count++] = optarg;
        } else if (opt == 't') {
            tool.timeout_ms = num(optarg);
        } else if (opt == 'a') {
            tool.actor = num(optarg);
        } else if (opt == 'r' && parse_request_id(&tool, optarg) == 0) {
            continue;
        } else {
            return usage_error("bad option (see the header of node/meta_tool.c)");
        }
    }
    if (secret_path == NULL || node_count == 0 || optind >= argc) {
        return usage_error("want --secret FILE --node ADDR COMMAND ...");
    }
    rv = node_secret_load(secret_path, secret, errmsg);
    if (rv != 0) {
        return usage_error(errmsg);
    }
    uv_loop_init(&tool.loop);
    tool.meta = node_meta_new(&tool.loop, secret, nodes, node_count, NULL);
    if (strcmp(argv[optind], "info") == 0 && argc - optind == 1) {
        struct node_rpc_options rpc_options;
        node_rpc_options_init(&rpc_options);
        raw_client = node_client_new(&tool.loop, nodes[0], secret, &rpc_options);
        rv = node_client_call(raw_client, CAIRN__WIRE__MSG_TYPE__MSG_NODE_INFO, NULL, 0,
                              tool.timeout_ms, info_cb, &tool);
    } else if (strcmp(argv[optind], "propose-raw") == 0 && argc - optind == 3) {
        rv = propose_raw(&tool, nodes[0], secret, num(argv[optind + 1]), argv[optind + 2],
                         &raw_client);
    } else {
        rv = command(&tool, argc - optind, argv + optind);
    }
    if (rv == CAIRN_EINVAL) {
        fprintf(stderr, "cairn-meta: bad command or arguments\n");
        tool.rv = 2;
    } else if (rv != 0) {
        call_failed(&tool, rv);
    }
    while (rv == 0 && !tool.done) {
        uv_run(&tool.loop, UV_RUN_ONCE);
    }
    if (raw_client != NULL) {
        node_client_free(raw_client);
    }
    node_meta_free(tool.meta);
    uv_run(&tool.loop, UV_RUN_DEFAULT);
    uv_loop_close(&tool.loop);
    return tool.rv;
}
