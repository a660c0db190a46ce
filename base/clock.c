/*
 * Clocks: the real one reads CLOCK_MONOTONIC and CLOCK_REALTIME; the manual
 * one moves only when a test advances it.
 */
#include <time.h>

#include "cn.h"

static uint64_t read_clock(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t system_now_ms(struct cn_clock *clock)
{
    (void)clock;
    return read_clock(CLOCK_MONOTONIC);
}

static uint64_t system_wall_ms(struct cn_clock *clock)
{
    (void)clock;
    return read_clock(CLOCK_REALTIME);
}

static struct cn_clock system_clock = {system_now_ms, system_wall_ms};

struct cn_clock *cn_clock_system(void)
{
    return &system_clock;
}

static uint64_t manual_now_ms(struct cn_clock *clock)
{
    return CN_CONTAINER_OF(clock, struct cn_clock_manual, clock)->now_ms;
}

static uint64_t manual_wall_ms(struct cn_clock *clock)
{
    return CN_CONTAINER_OF(clock, struct cn_clock_manual, clock)->wall_ms;
}

void cn_clock_manual_init(struct cn_clock_manual *manual, uint64_t wall_ms)
{
    manual->clock.now_ms = manual_now_ms;
    manual->clock.wall_ms = manual_wall_ms;
    manual->now_ms = 0;
    manual->wall_ms = wall_ms;
}

void cn_clock_manual_advance(struct cn_clock_manual *manual, uint64_t ms)
{
    manual->now_ms += ms;
    manual->wall_ms += ms;
}
