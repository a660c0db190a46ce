/* Many groups in one process per server, over one port per server: three
 * servers, each with one RocksDB, one mux (plain-TCP Hello handshake) and
 * two groups whose replicas talk through it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft/uv.h>
#include <uv.h>

#include "fixture.h"

#define SERVERS 3
#define GROUPS  2

struct replica {
    char raft_dir[512];
    struct meta_sm *sm;
    struct raft_uv_transport transport;
    struct meta_group *group;
    bool running;
};

struct server {
    char *dir;
    char address[32];
    struct meta_store *store;
    struct meta_mux *mux;
    struct replica replicas[GROUPS];
};

struct cluster {
    uv_loop_t loop;
    uv_timer_t tick;
    struct meta_mux_connector connector;
    struct server servers[SERVERS];
    struct meta_server config[SERVERS];
    unsigned done;
    unsigned failed;
};

static void free_port(char *address, size_t size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CN_ASSERT(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CN_ASSERT(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    CN_ASSERT(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    snprintf(address, size, "127.0.0.1:%u", ntohs(addr.sin_port));
    close(fd);
}

static void tick_cb(uv_timer_t *timer)
{
    (void)timer;
}

static void replica_start(struct cluster *c, unsigned i, unsigned g)
{
    struct server *s = &c->servers[i];
    struct replica *r = &s->replicas[g];
    struct meta_group_config config = {0};
    char errmsg[CN_ERRMSG_SIZE] = "";
    int rv;

    snprintf(r->raft_dir, sizeof(r->raft_dir), "%s/raft-%u", s->dir, g + 1);
    CN_ASSERT(mkdir(r->raft_dir, 0700) == 0);
    ASSERT_OK(meta_sm_new(s->store, g + 1, NULL, &r->sm));
    ASSERT_OK(meta_mux_transport_init(s->mux, g + 1, &r->transport));
    config.id = i + 1;
    config.address = s->address;
    config.dir = r->raft_dir;
    config.transport = &r->transport;
    config.election_timeout_ms = 150;
    config.heartbeat_timeout_ms = 15;
    if (meta_group_new(&c->loop, r->sm, &config, &r->group, errmsg) != 0) {
        cn_test_fail(__FILE__, __LINE__, "group: %s", errmsg);
    }
    rv = meta_group_bootstrap(r->group, c->config, SERVERS, errmsg);
    if (rv != 0) {
        cn_test_fail(__FILE__, __LINE__, "bootstrap: %s", errmsg);
    }
    if (meta_group_start(r->group, errmsg) != 0) {
        cn_test_fail(__FILE__, __LINE__, "start: %s", errmsg);
    }
    r->running = true;
}

static void *cluster_setup(void)
{
    struct cluster *c = cn_xcalloc(1, sizeof(*c));
    char errmsg[CN_ERRMSG_SIZE];

    signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(uv_loop_init(&c->loop), 0);
    ASSERT_EQ(uv_timer_init(&c->loop, &c->tick), 0);
    ASSERT_EQ(uv_timer_start(&c->tick, tick_cb, 5, 5), 0);
    meta_tcp_connector_init(&c->connector);
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &c->servers[i];
        s->dir = cn_test_tmpdir();
        free_port(s->address, sizeof(s->address));
        c->config[i].id = i + 1;
        c->config[i].address = s->address;
        if (meta_store_open(s->dir, &s->store, errmsg) != 0) {
            cn_test_fail(__FILE__, __LINE__, "store: %s", errmsg);
        }
        ASSERT_OK(meta_mux_new(&c->loop, i + 1, s->address, &c->connector, &s->mux));
        if (meta_mux_listen_tcp(s->mux, errmsg) != 0) {
            cn_test_fail(__FILE__, __LINE__, "listen: %s", errmsg);
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        for (unsigned g = 0; g < GROUPS; g++) {
            replica_start(c, i, g);
        }
    }
    return c;
}

static void replica_closed_cb(void *data)
{
    struct replica *r = data;

    r->running = false;
}

static void close_walk_cb(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle)) {
        uv_close(handle, NULL);
    }
}

static void cluster_teardown(void *data)
{
    struct cluster *c = data;

    for (unsigned i = 0; i < SERVERS; i++) {
        for (unsigned g = 0; g < GROUPS; g++) {
            struct replica *r = &c->servers[i].replicas[g];
            if (r->running) {
                meta_group_close(r->group, replica_closed_cb, r);
            }
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        for (unsigned g = 0; g < GROUPS; g++) {
            while (c->servers[i].replicas[g].running) {
                uv_run(&c->loop, UV_RUN_ONCE);
            }
            meta_sm_free(c->servers[i].replicas[g].sm);
        }
        meta_mux_free(c->servers[i].mux);
        meta_store_close(c->servers[i].store);
    }
    uv_walk(&c->loop, close_walk_cb, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    CN_ASSERT(uv_loop_close(&c->loop) == 0);
    for (unsigned i = 0; i < SERVERS; i++) {
        cn_test_rmdir(c->servers[i].dir);
        free(c->servers[i].dir);
    }
    free(c);
}

static unsigned wait_leader(struct cluster *c, unsigned g)
{
    uint64_t deadline = uv_now(&c->loop) + 10000;

    while (uv_now(&c->loop) < deadline) {
        for (unsigned i = 0; i < SERVERS; i++) {
            if (meta_group_is_leader(c->servers[i].replicas[g].group)) {
                return i;
            }
        }
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    cn_test_fail(__FILE__, __LINE__, "group %u: no leader within 10 s", g + 1);
}

static void propose_done_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct cluster *c = req->data;

    c->done++;
    c->failed += result->rv != 0;
    free(req);
}

static void propose(struct cluster *c, unsigned g, Cairn__Cmd__Command *cmd)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    struct meta_propose *req = cn_xcalloc(1, sizeof(*req));
    unsigned leader = wait_leader(c, g);

    header.time_ms = T0;
    cmd->header = &header;
    req->data = c;
    ASSERT_OK(meta_group_propose(c->servers[leader].replicas[g].group, req, cmd, propose_done_cb));
    cmd->header = NULL;
}

TEST(mux, two_groups_share_one_port_per_server, cluster_setup, cluster_teardown)
{
    struct cluster *c = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__NamespaceCreate ns = ns_create_msg(NS, OWNER, ROOT);
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    uint8_t first[META_DIGEST_SIZE], digest[META_DIGEST_SIZE];
    uint64_t deadline, inode;
    unsigned expected = 0;
    char name[16];

    for (unsigned g = 0; g < GROUPS; g++) {
        cmd.op_case = CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE;
        cmd.namespace_create = &ns;
        propose(c, g, &cmd);
        cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
        cmd.mkdir = &op;
        op.ns = NS;
        op.parent = ROOT;
        op.name = name;
        for (unsigned i = 0; i < 10 * (g + 1); i++) { /* different work per group */
            snprintf(name, sizeof(name), "g%u-%u", g + 1, i);
            op.inode = 2 + i;
            propose(c, g, &cmd);
        }
        expected += 1 + 10 * (g + 1);
    }
    deadline = uv_now(&c->loop) + 10000;
    while (c->done < expected && uv_now(&c->loop) < deadline) {
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    ASSERT_EQ(c->done, expected);
    ASSERT_EQ(c->failed, 0);
    for (unsigned g = 0; g < GROUPS; g++) {
        unsigned leader = wait_leader(c, g);
        meta_index last = meta_sm_applied(c->servers[leader].replicas[g].sm);
        deadline = uv_now(&c->loop) + 10000;
        for (unsigned i = 0; i < SERVERS; i++) {
            while (meta_sm_applied(c->servers[i].replicas[g].sm) < last &&
                   uv_now(&c->loop) < deadline) {
                uv_run(&c->loop, UV_RUN_ONCE);
            }
            ASSERT_OK(meta_sm_digest(c->servers[i].replicas[g].sm, i == 0 ? first : digest));
            if (i > 0) {
                ASSERT_MEM_EQ(first, digest, META_DIGEST_SIZE);
            }
        }
        /* Each group holds its own names only, in the same RocksDB. */
        snprintf(name, sizeof(name), "g%u-%u", g + 1, 9);
        ASSERT_OK(meta_lookup(c->servers[2].replicas[g].sm, NS, ROOT, name, &inode));
        snprintf(name, sizeof(name), "g%u-%u", 2 - g, 0);
        ASSERT_ERR(meta_lookup(c->servers[2].replicas[g].sm, NS, ROOT, name, &inode), CAIRN_ENOENT);
    }
}

struct probe {
    bool done;
    int rv;
};

static void probe_close_cb(uv_handle_t *handle)
{
    raft_free(handle);
}

static void probe_done(void *data, struct uv_stream_s *stream, int rv)
{
    struct probe *probe = data;

    probe->done = true;
    probe->rv = rv;
    if (stream != NULL) {
        uv_close((uv_handle_t *)stream, probe_close_cb);
    }
}

static void probe(struct cluster *c, const char *address, uint64_t group_id, struct probe *out)
{
    uint64_t deadline = uv_now(&c->loop) + 5000;

    *out = (struct probe){0};
    ASSERT_OK(
        c->connector.connect(&c->connector, c->servers[1].mux, group_id, address, probe_done, out));
    while (!out->done && uv_now(&c->loop) < deadline) {
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    ASSERT_TRUE(out->done);
}

TEST(mux, the_handshake_admits_hosted_groups_only, cluster_setup, cluster_teardown)
{
    struct cluster *c = data;
    char closed_port[32];
    struct probe result;

    probe(c, c->servers[0].address, 1, &result);
    ASSERT_OK(result.rv); /* group 1 is hosted: the acceptor answered */
    probe(c, c->servers[0].address, 99, &result);
    ASSERT_ERR(result.rv, CAIRN_EIO); /* not hosted: closed without an answer */
    free_port(closed_port, sizeof(closed_port));
    probe(c, closed_port, 1, &result);
    ASSERT_ERR(result.rv, CAIRN_EIO); /* nobody listens */
    ASSERT_ERR(
        c->connector.connect(&c->connector, c->servers[1].mux, 1, "no-port", probe_done, &result),
        CAIRN_EINVAL);
}
