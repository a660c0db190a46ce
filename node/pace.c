/*
 * Scrub pacing: a token bucket in bytes, on an injected clock's milliseconds.
 *
 * The scrub thread reads a shard, charges its size here, and sleeps for the
 * time this returns. Charging after the read (rather than asking before it)
 * lets a shard larger than the burst go through: the bucket goes into debt
 * and the next read waits until the debt is paid, so the long-run rate holds
 * whatever the shard sizes.
 *
 * Refill keeps its fractions (millibytes), so many short intervals add up to
 * exactly what one long interval would. A clock that jumps far ahead (a
 * suspended machine) refills at most NODE_PACE_ELAPSED_MAX ms, which the
 * burst cap swallows anyway; this also bounds the product elapsed * rate.
 */
#include "obs.h"

void node__pace_init(struct node_pace *pace, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
    CN_ASSERT(rate >= 1 && rate <= NODE_SCRUB_RATE_MAX);
    CN_ASSERT(burst >= 1 && burst <= INT64_MAX);
    pace->rate = rate;
    pace->burst = burst;
    pace->tokens = (int64_t)burst;
    pace->last_ms = now_ms;
    pace->millibytes = 0;
}

static void refill(struct node_pace *pace, uint64_t now_ms)
{
    uint64_t elapsed_ms, millibytes, bytes;

    CN_ASSERT(now_ms >= pace->last_ms);
    elapsed_ms = CN_MIN(now_ms - pace->last_ms, NODE_PACE_ELAPSED_MAX);
    pace->last_ms = now_ms;
    millibytes = elapsed_ms * pace->rate + pace->millibytes;
    bytes = millibytes / 1000;
    pace->millibytes = millibytes % 1000;
    if (pace->tokens >= 0 && (uint64_t)pace->tokens >= pace->burst) {
        pace->millibytes = 0; /* full: nothing accrues */
        return;
    }
    if (bytes >= pace->burst + (uint64_t)(pace->tokens < 0 ? -pace->tokens : 0)) {
        pace->tokens = (int64_t)pace->burst;
        pace->millibytes = 0;
        return;
    }
    pace->tokens += (int64_t)bytes;
    if (pace->tokens >= (int64_t)pace->burst) {
        pace->tokens = (int64_t)pace->burst;
        pace->millibytes = 0;
    }
}

uint64_t node__pace_wait_ms(struct node_pace *pace, uint64_t now_ms)
{
    uint64_t debt_millibytes;

    refill(pace, now_ms);
    if (pace->tokens >= 0) {
        return 0;
    }
    /* Round up: after this many ms the refill covers the debt. */
    debt_millibytes = (uint64_t)(-pace->tokens) * 1000 - pace->millibytes;
    return (debt_millibytes + pace->rate - 1) / pace->rate;
}

uint64_t node__pace_charge(struct node_pace *pace, uint64_t bytes, uint64_t now_ms)
{
    CN_ASSERT(bytes <= NODE_PACE_CHARGE_MAX);
    refill(pace, now_ms);
    pace->tokens -= (int64_t)bytes;
    /* The caller waits after each charge, so debt stays below two charges;
     * this bound also keeps debt * 1000 within a u64 in node__pace_wait_ms(). */
    CN_ASSERT(pace->tokens > -(int64_t)(1ull << 52));
    return node__pace_wait_ms(pace, now_ms);
}
