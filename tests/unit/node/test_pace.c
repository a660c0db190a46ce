/* Scrub pacing: a token bucket on a manual clock. Proves the long-run rate
 * holds whatever the shard sizes, that a burst goes through at once, that
 * fractions of a byte are not lost over many short intervals, and that an
 * idle stretch refills no more than the burst. */
#include "obs.h"
#include "test.h"

#define MIB (1ull << 20)

struct fixture {
    struct cn_clock_manual clock;
    struct node_pace pace;
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    cn_clock_manual_init(&f->clock, 0);
    return f;
}

static void teardown(void *data)
{
    free(data);
}

#define NOW(f)         ((f)->clock.clock.now_ms(&(f)->clock.clock))
#define ADVANCE(f, ms) cn_clock_manual_advance(&(f)->clock, (ms))
#define CHARGE(f, n)   node__pace_charge(&(f)->pace, (n), NOW(f))
#define WAIT_MS(f)     node__pace_wait_ms(&(f)->pace, NOW(f))

/* Reads shards of size bytes as fast as the pacer allows, for duration_ms;
 * returns the bytes read. */
static uint64_t run_reader(struct fixture *f, uint64_t size, uint64_t duration_ms)
{
    uint64_t start = NOW(f), bytes = 0;

    while (NOW(f) - start < duration_ms) {
        uint64_t wait = CHARGE(f, size);
        bytes += size;
        ADVANCE(f, wait > 0 ? wait : 0);
        while ((wait = WAIT_MS(f)) > 0) {
            ADVANCE(f, wait);
        }
    }
    return bytes;
}

TEST(pace, burst_then_rate, setup, teardown)
{
    struct fixture *f = data;

    node__pace_init(&f->pace, 64 * MIB, 4 * MIB, NOW(f));
    /* The burst goes through without waiting... */
    ASSERT_EQ(CHARGE(f, 2 * MIB), 0);
    ASSERT_EQ(CHARGE(f, 2 * MIB), 0);
    /* ...and one more MiB costs 1/64 s: 16 ms (rounded up to whole ms). */
    ASSERT_EQ(CHARGE(f, MIB), 16);
    ADVANCE(f, 15);
    ASSERT_EQ(WAIT_MS(f), 1);
    ADVANCE(f, 1);
    ASSERT_EQ(WAIT_MS(f), 0);
}

TEST(pace, long_run_rate_holds_for_any_shard_size, setup, teardown)
{
    static const uint64_t sizes[] = {1, 4096, 300000, MIB, 5 * MIB};
    struct fixture *f = data;

    for (size_t i = 0; i < CN_ARRAY_SIZE(sizes); i++) {
        /* 10 MiB/s, 1 MiB burst, for 60 simulated seconds. */
        node__pace_init(&f->pace, 10 * MIB, MIB, NOW(f));
        uint64_t bytes = run_reader(f, sizes[i], 60000);
        uint64_t budget = 10 * MIB * 60 + MIB + sizes[i]; /* rate * time + burst + one read */
        ASSERT_CMP(bytes, <=, budget);
        ASSERT_CMP(bytes, >=, 10 * MIB * 59); /* and it does not run slow either */
    }
}

TEST(pace, fractions_of_a_byte_add_up, setup, teardown)
{
    struct fixture *f = data;

    /* 3 bytes per second: a 1 ms step refills 0.003 bytes. A debt of three
     * bytes is paid after exactly 1000 steps of 1 ms, as after one 1 s step. */
    node__pace_init(&f->pace, 3, 3, NOW(f));
    ASSERT_EQ(CHARGE(f, 6), 1000);
    for (int i = 0; i < 999; i++) {
        ADVANCE(f, 1);
        ASSERT_CMP(WAIT_MS(f), >, 0);
    }
    ADVANCE(f, 1);
    ASSERT_EQ(WAIT_MS(f), 0);
    ASSERT_EQ(f->pace.tokens, 0);
    for (int i = 0; i < 2000; i++) {
        ADVANCE(f, 1);
        ASSERT_EQ(WAIT_MS(f), 0);
    }
    ASSERT_EQ(f->pace.tokens, 3); /* full, not more */
}

TEST(pace, idle_refills_at_most_the_burst, setup, teardown)
{
    struct fixture *f = data;

    node__pace_init(&f->pace, MIB, MIB, NOW(f));
    ASSERT_EQ(CHARGE(f, MIB), 0);
    ADVANCE(f, 3600 * 1000); /* an hour idle, or a suspended machine */
    ASSERT_EQ(WAIT_MS(f), 0);
    ASSERT_EQ(f->pace.tokens, (int64_t)MIB);
    /* Only the burst is free: the next MiB after it waits a full second. */
    ASSERT_EQ(CHARGE(f, MIB), 0);
    ASSERT_EQ(CHARGE(f, MIB), 1000);
}

TEST(pace, large_shard_goes_into_debt, setup, teardown)
{
    struct fixture *f = data;

    /* A shard eight times the burst is read, then paid for. */
    node__pace_init(&f->pace, MIB, MIB / 2, NOW(f));
    ASSERT_EQ(CHARGE(f, 4 * MIB), 3500); /* debt of 3.5 MiB at 1 MiB/s */
    ASSERT_EQ(f->pace.tokens, -(int64_t)(7 * MIB / 2));
    ADVANCE(f, 3500);
    ASSERT_EQ(WAIT_MS(f), 0);
}

TEST(pace, fastest_rate_does_not_overflow, setup, teardown)
{
    struct fixture *f = data;

    node__pace_init(&f->pace, NODE_SCRUB_RATE_MAX, NODE_SCRUB_RATE_MAX, NOW(f));
    ASSERT_EQ(CHARGE(f, NODE_PACE_CHARGE_MAX), 0);
    ASSERT_EQ(CHARGE(f, NODE_PACE_CHARGE_MAX), 1000);
    ADVANCE(f, 10 * NODE_PACE_ELAPSED_MAX);
    ASSERT_EQ(WAIT_MS(f), 0);
    ASSERT_EQ(f->pace.tokens, (int64_t)NODE_SCRUB_RATE_MAX);
}
