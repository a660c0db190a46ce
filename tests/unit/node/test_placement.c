/* Placement: deterministic, distinct nodes, failure domains first, minimal movement. */
#include "node_rpc.h"
#include "test.h"

static void chunk(struct cn_rand *rand, uint8_t id[32])
{
    cn_rand_fill(rand, id, 32);
}

TEST(placement, deterministic_and_distinct, NULL, NULL)
{
    struct node_candidate nodes[7];
    unsigned a[6], b[6];
    uint8_t id[32];
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned i = 0; i < 7; i++) {
        nodes[i] = (struct node_candidate){.node_id = i + 1, .domain = i};
    }
    for (int trial = 0; trial < 200; trial++) {
        chunk(&rand, id);
        ASSERT_OK(node_place(id, nodes, 7, 6, a));
        ASSERT_OK(node_place(id, nodes, 7, 6, b));
        ASSERT_MEM_EQ(a, b, sizeof(a));
        for (unsigned i = 0; i < 6; i++) {
            ASSERT_CMP(a[i], <, 7);
            for (unsigned j = 0; j < i; j++) {
                ASSERT_NE(a[i], a[j]);
            }
        }
    }
}

TEST(placement, failure_domains_first, NULL, NULL)
{
    /* 6 nodes in 3 racks of 2: a 2+1 chunk gets one shard per rack. */
    struct node_candidate nodes[6];
    unsigned out[6];
    uint8_t id[32];
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned i = 0; i < 6; i++) {
        nodes[i] = (struct node_candidate){.node_id = 100 + i, .domain = i / 2};
    }
    for (int trial = 0; trial < 200; trial++) {
        chunk(&rand, id);
        ASSERT_OK(node_place(id, nodes, 6, 3, out));
        ASSERT_NE(nodes[out[0]].domain, nodes[out[1]].domain);
        ASSERT_NE(nodes[out[0]].domain, nodes[out[2]].domain);
        ASSERT_NE(nodes[out[1]].domain, nodes[out[2]].domain);
        /* More shards than racks: still distinct nodes, every rack used. */
        ASSERT_OK(node_place(id, nodes, 6, 5, out));
        for (unsigned i = 0; i < 5; i++) {
            for (unsigned j = 0; j < i; j++) {
                ASSERT_NE(out[i], out[j]);
            }
        }
    }
}

TEST(placement, spreads_evenly, NULL, NULL)
{
    struct node_candidate nodes[5];
    unsigned counts[5] = {0}, out[3];
    uint8_t id[32];
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned i = 0; i < 5; i++) {
        nodes[i] = (struct node_candidate){.node_id = i + 1, .domain = i};
    }
    for (int trial = 0; trial < 5000; trial++) {
        chunk(&rand, id);
        ASSERT_OK(node_place(id, nodes, 5, 3, out));
        for (unsigned i = 0; i < 3; i++) {
            counts[out[i]]++;
        }
    }
    /* 15000 shards over 5 nodes: 3000 each, give or take a few percent. */
    for (unsigned i = 0; i < 5; i++) {
        ASSERT_CMP(counts[i], >, 2700);
        ASSERT_CMP(counts[i], <, 3300);
    }
}

static bool contains(const unsigned *set, unsigned count, unsigned x)
{
    for (unsigned i = 0; i < count; i++) {
        if (set[i] == x) {
            return true;
        }
    }
    return false;
}

/* Rebalance compares node sets, not shard positions: a chunk's shards move
 * only off nodes that left its set. Adding a node changes a chunk's set by at
 * most one node (which is then the new one), and for about shards/nodes of
 * the chunks. */
TEST(placement, adding_a_node_moves_few_shards, NULL, NULL)
{
    struct node_candidate nodes[7];
    unsigned before[3], after[3], changed_chunks = 0;
    uint8_t id[32];
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned i = 0; i < 7; i++) {
        nodes[i] = (struct node_candidate){.node_id = i + 1, .domain = i};
    }
    for (int trial = 0; trial < 3000; trial++) {
        unsigned left = 0;

        chunk(&rand, id);
        ASSERT_OK(node_place(id, nodes, 6, 3, before));
        ASSERT_OK(node_place(id, nodes, 7, 3, after));
        for (unsigned i = 0; i < 3; i++) {
            left += !contains(after, 3, before[i]);
        }
        ASSERT_CMP(left, <=, 1);
        if (left == 1) {
            ASSERT_TRUE(contains(after, 3, 6)); /* replaced by the new node */
            changed_chunks++;
        } else {
            ASSERT_FALSE(contains(after, 3, 6));
        }
    }
    /* Expected 3/7 of 3000 = 1286. */
    ASSERT_CMP(changed_chunks, >, 1100);
    ASSERT_CMP(changed_chunks, <, 1470);
}

TEST(placement, too_few_nodes_and_duplicates, NULL, NULL)
{
    struct node_candidate nodes[3] = {{1, 1}, {2, 2}, {2, 3}};
    unsigned out[4];
    uint8_t id[32] = {7};

    ASSERT_ERR(node_place(id, nodes, 2, 3, out), CAIRN_EUNAVAIL);
    ASSERT_ERR(node_place(id, nodes, 3, 3, out), CAIRN_EINVAL);
    ASSERT_OK(node_place(id, nodes, 2, 2, out));
    ASSERT_OK(node_place(id, nodes, 2, 0, out));
}
