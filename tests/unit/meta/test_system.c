/* The system group: cluster init, nodes joining, node states. */
#include "fixture.h"

static uint8_t cluster_id[16] = {0xc1, 0x05, 0x7e};

/* A fixture on group 0, acting as the system. */
static void *system_setup(void)
{
    struct fixture *f = fixture_setup();

    fixture_close(f);
    f->group = 0;
    fixture_open(f);
    f->actor = 0;
    return f;
}

static int cluster_init(struct fixture *f, uint32_t data_groups, const char *address)
{
    Cairn__Cmd__ClusterInit op = CAIRN__CMD__CLUSTER_INIT__INIT;

    op.cluster_id.data = cluster_id;
    op.cluster_id.len = sizeof(cluster_id);
    op.data_groups = data_groups;
    op.address = (char *)address;
    op.failure_domain = "rack-a";
    return OP(f, cluster_init, CLUSTER_INIT, &op);
}

static int node_add(struct fixture *f, const char *address, const char *domain)
{
    Cairn__Cmd__NodeAdd op = CAIRN__CMD__NODE_ADD__INIT;

    op.address = (char *)address;
    op.failure_domain = (char *)domain;
    return OP(f, node_add, NODE_ADD, &op);
}

static int node_set_state(struct fixture *f, uint64_t id, Cairn__Cmd__NodeState state)
{
    Cairn__Cmd__NodeSetState op = CAIRN__CMD__NODE_SET_STATE__INIT;

    op.node_id = id;
    op.state = state;
    return OP(f, node_set_state, NODE_SET_STATE, &op);
}

struct nodes {
    uint64_t ids[8];
    Cairn__Cmd__NodeState states[8];
    char addresses[8][32];
    int count;
};

static int collect_node(void *data, const Cairn__Cmd__Node *node)
{
    struct nodes *nodes = data;

    ASSERT_TRUE(nodes->count < 8);
    nodes->ids[nodes->count] = node->id;
    nodes->states[nodes->count] = node->state;
    snprintf(nodes->addresses[nodes->count], sizeof(nodes->addresses[0]), "%s", node->address);
    nodes->count++;
    return 0;
}

static uint64_t epoch(struct fixture *f)
{
    Cairn__Cmd__Cluster *cluster;
    uint64_t value;

    ASSERT_OK(meta_get_cluster(f->sm, &cluster));
    value = cluster->epoch;
    meta_record_free(cluster);
    return value;
}

TEST(system, init_adds_node_one, system_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Cluster *cluster;
    Cairn__Cmd__Node *node;

    ASSERT_ERR(meta_get_cluster(f->sm, &cluster), CAIRN_ENOENT);
    ASSERT_OK(cluster_init(f, 4, "10.0.0.1:7000"));
    ASSERT_EQ(f->result.value, 1);
    ASSERT_OK(meta_get_cluster(f->sm, &cluster));
    ASSERT_EQ(cluster->data_groups, 4);
    ASSERT_EQ(cluster->next_node_id, 2);
    ASSERT_EQ(cluster->epoch, 1);
    ASSERT_EQ(cluster->created_ms, T0);
    ASSERT_EQ(cluster->cluster_id.len, sizeof(cluster_id));
    ASSERT_MEM_EQ(cluster->cluster_id.data, cluster_id, sizeof(cluster_id));
    meta_record_free(cluster);
    ASSERT_OK(meta_get_node(f->sm, 1, &node));
    ASSERT_STR_EQ(node->address, "10.0.0.1:7000");
    ASSERT_STR_EQ(node->failure_domain, "rack-a");
    ASSERT_EQ(node->state, CAIRN__CMD__NODE_STATE__NODE_UP);
    ASSERT_EQ(node->added_ms, T0);
    meta_record_free(node);
    ASSERT_ERR(cluster_init(f, 4, "10.0.0.9:7000"), CAIRN_EEXIST); /* once */
    ASSERT_ERR(meta_get_node(f->sm, 2, &node), CAIRN_ENOENT);
}

TEST(system, init_errors, system_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ClusterInit op = CAIRN__CMD__CLUSTER_INIT__INIT;
    char long_address[META_ADDRESS_MAX + 1];
    char long_domain[70];

    ASSERT_ERR(cluster_init(f, 0, "a:1"), CAIRN_EINVAL);
    ASSERT_ERR(cluster_init(f, 256, "a:1"), CAIRN_EINVAL);
    ASSERT_ERR(cluster_init(f, 4, ""), CAIRN_EINVAL);
    memset(long_address, 'a', sizeof(long_address) - 1);
    long_address[sizeof(long_address) - 1] = '\0';
    ASSERT_ERR(cluster_init(f, 4, long_address), CAIRN_EINVAL);
    op.data_groups = 4;
    op.address = "a:1";
    op.failure_domain = "";
    ASSERT_ERR(OP(f, cluster_init, CLUSTER_INIT, &op), CAIRN_EINVAL); /* no cluster id */
    op.cluster_id.data = cluster_id;
    op.cluster_id.len = sizeof(cluster_id);
    memset(long_domain, 'd', sizeof(long_domain) - 1);
    long_domain[sizeof(long_domain) - 1] = '\0';
    op.failure_domain = long_domain;
    ASSERT_ERR(OP(f, cluster_init, CLUSTER_INIT, &op), CAIRN_EINVAL);
    f->actor = OWNER;
    ASSERT_ERR(cluster_init(f, 4, "a:1"), CAIRN_EPERM); /* the system only */
    f->actor = 0;
    ASSERT_OK(cluster_init(f, 255, "a:1"));
}

TEST(system, only_in_group_zero, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;

    f->actor = 0;
    ASSERT_ERR(cluster_init(f, 4, "a:1"), CAIRN_EINVAL);
    ASSERT_ERR(node_add(f, "b:1", ""), CAIRN_EINVAL);
    ASSERT_ERR(node_set_state(f, 1, CAIRN__CMD__NODE_STATE__NODE_DOWN), CAIRN_EINVAL);
}

TEST(system, nodes_join_with_the_next_id, system_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct nodes nodes = {0};
    Cairn__Cmd__Node *node;

    ASSERT_ERR(node_add(f, "10.0.0.2:7000", "rack-b"), CAIRN_ENOENT); /* no cluster yet */
    ASSERT_OK(cluster_init(f, 4, "10.0.0.1:7000"));
    ASSERT_OK(node_add(f, "10.0.0.2:7000", "rack-b"));
    ASSERT_EQ(f->result.value, 2);
    ASSERT_OK(node_add(f, "10.0.0.3:7000", "rack-c"));
    ASSERT_EQ(f->result.value, 3);
    ASSERT_EQ(epoch(f), 3);
    ASSERT_ERR(node_add(f, "10.0.0.2:7000", "rack-x"), CAIRN_EEXIST);
    ASSERT_ERR(node_add(f, "10.0.0.1:7000", "rack-x"), CAIRN_EEXIST);
    ASSERT_ERR(node_add(f, "", "rack-x"), CAIRN_EINVAL);
    f->actor = OWNER;
    ASSERT_ERR(node_add(f, "10.0.0.4:7000", ""), CAIRN_EPERM);
    f->actor = 0;
    ASSERT_OK(meta_list_nodes(f->sm, collect_node, &nodes));
    ASSERT_EQ(nodes.count, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(nodes.ids[i], i + 1);
        ASSERT_EQ(nodes.states[i], CAIRN__CMD__NODE_STATE__NODE_UP);
    }
    ASSERT_STR_EQ(nodes.addresses[2], "10.0.0.3:7000");
    ASSERT_OK(meta_get_node(f->sm, 2, &node));
    ASSERT_STR_EQ(node->failure_domain, "rack-b");
    meta_record_free(node);
}

TEST(system, node_states, system_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Node *node;
    uint64_t before;

    ASSERT_ERR(node_set_state(f, 1, CAIRN__CMD__NODE_STATE__NODE_DOWN), CAIRN_ENOENT);
    ASSERT_OK(cluster_init(f, 4, "10.0.0.1:7000"));
    ASSERT_OK(node_add(f, "10.0.0.2:7000", ""));
    before = epoch(f);
    f->time_ms += 5000;
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_SUSPECT));
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_DOWN));
    ASSERT_EQ(epoch(f), before + 2);
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_DOWN)); /* no change */
    ASSERT_EQ(epoch(f), before + 2);
    ASSERT_OK(meta_get_node(f->sm, 2, &node));
    ASSERT_EQ(node->state, CAIRN__CMD__NODE_STATE__NODE_DOWN);
    ASSERT_EQ(node->state_ms, T0 + 5000);
    ASSERT_EQ(node->added_ms, T0);
    meta_record_free(node);
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_UP));
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_DRAINING));
    ASSERT_ERR(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_STATE_NONE), CAIRN_EINVAL);
    ASSERT_ERR(node_set_state(f, 2, (Cairn__Cmd__NodeState)6), CAIRN_EINVAL);
    ASSERT_ERR(node_set_state(f, 9, CAIRN__CMD__NODE_STATE__NODE_UP), CAIRN_ENOENT);
    f->actor = OTHER;
    ASSERT_ERR(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_UP), CAIRN_EPERM);
    f->actor = 0;
    ASSERT_OK(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_REMOVED));
    ASSERT_ERR(node_set_state(f, 2, CAIRN__CMD__NODE_STATE__NODE_UP), CAIRN_EINVAL); /* final */
    /* A removed node's address may join again, as a new node. */
    ASSERT_OK(node_add(f, "10.0.0.2:7000", ""));
    ASSERT_EQ(f->result.value, 3);
    ASSERT_OK(meta_get_node(f->sm, 2, &node));
    ASSERT_EQ(node->state, CAIRN__CMD__NODE_STATE__NODE_REMOVED);
    meta_record_free(node);
    ASSERT_ERR(node_add(f, "10.0.0.2:7000", ""), CAIRN_EEXIST);
}

TEST(system, store_failures_leave_nothing_half_done, system_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__NodeAdd add = CAIRN__CMD__NODE_ADD__INIT;
    Cairn__Cmd__NodeSetState set = CAIRN__CMD__NODE_SET_STATE__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Cluster *cluster;

    ASSERT_OK(cluster_init(f, 4, "10.0.0.1:7000"));
    header.time_ms = f->time_ms;
    cmd.header = &header;
    add.address = "10.0.0.3:7000";
    add.failure_domain = "";
    cmd.op_case = CAIRN__CMD__COMMAND__OP_NODE_ADD;
    cmd.node_add = &add;
    assert_atomic_under_faults(f, &cmd);
    set.node_id = 2;
    set.state = CAIRN__CMD__NODE_STATE__NODE_REMOVED;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_NODE_SET_STATE;
    cmd.node_set_state = &set;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_OK(meta_get_cluster(f->sm, &cluster));
    ASSERT_EQ(cluster->next_node_id, 3);
    ASSERT_EQ(cluster->epoch, 3);
    meta_record_free(cluster);
}
