/* Hex, CRC-32C, faults, the seeded generator, clocks and log lines. */
#include "test.h"

TEST(hex, round_trip_and_bad_input, NULL, NULL)
{
    uint8_t bytes[4] = {0x00, 0xab, 0x7f, 0xff};
    uint8_t back[4];
    char hex[9];

    cn_hex_encode(bytes, 4, hex);
    ASSERT_STR_EQ(hex, "00ab7fff");
    ASSERT_OK(cn_hex_decode(hex, back, 4));
    ASSERT_MEM_EQ(back, bytes, 4);
    ASSERT_ERR(cn_hex_decode("00ab7fzz", back, 4), CAIRN_EINVAL);
    ASSERT_ERR(cn_hex_decode("00ab7f", back, 4), CAIRN_EINVAL);
    ASSERT_ERR(cn_hex_decode("00ab7fff00", back, 4), CAIRN_EINVAL);
}

TEST(crc32c, known_vector_and_incremental, NULL, NULL)
{
    /* RFC 3720 B.4: CRC-32C of "123456789" is 0xe3069283. */
    ASSERT_EQ(cn_crc32c(0, "123456789", 9), 0xe3069283ll);
    ASSERT_EQ(cn_crc32c(cn_crc32c(0, "1234", 4), "56789", 5), 0xe3069283ll);
    ASSERT_EQ(cn_crc32c(0, "", 0), 0);
}

TEST(fault, countdown_and_repeat, NULL, NULL)
{
    struct cn_fault fault;

    cn_fault_init(&fault);
    ASSERT_FALSE(cn_fault_tick(&fault));
    cn_fault_arm(&fault, 3, 1);
    ASSERT_FALSE(cn_fault_tick(&fault));
    ASSERT_FALSE(cn_fault_tick(&fault));
    ASSERT_TRUE(cn_fault_tick(&fault));
    ASSERT_FALSE(cn_fault_tick(&fault));
    ASSERT_EQ(cn_fault_hits(&fault), 1);
    cn_fault_arm(&fault, 1, -1);
    for (int i = 0; i < 5; i++) {
        ASSERT_TRUE(cn_fault_tick(&fault));
    }
    ASSERT_EQ(cn_fault_hits(&fault), 5);
}

TEST(rand, deterministic_and_bounded, NULL, NULL)
{
    struct cn_rand a, b;
    uint64_t counts[3] = {0, 0, 0};

    cn_rand_seed(&a, 42);
    cn_rand_seed(&b, 42);
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(cn_rand_next(&a), cn_rand_next(&b));
    }
    for (int i = 0; i < 3000; i++) {
        uint64_t x = cn_rand_below(&a, 3);
        ASSERT_CMP(x, <, 3);
        counts[x]++;
    }
    for (int i = 0; i < 3; i++) {
        ASSERT_CMP(counts[i], >, 800);
    }
}

TEST(clock, manual_moves_only_when_told, NULL, NULL)
{
    struct cn_clock_manual manual;
    struct cn_clock *clock = &manual.clock;
    struct cn_clock *real = cn_clock_system();

    cn_clock_manual_init(&manual, 1000);
    ASSERT_EQ(clock->now_ms(clock), 0);
    cn_clock_manual_advance(&manual, 250);
    ASSERT_EQ(clock->now_ms(clock), 250);
    ASSERT_EQ(clock->wall_ms(clock), 1250);
    ASSERT_CMP(real->wall_ms(real), >, 1700000000000ll);
    ASSERT_CMP(real->now_ms(real), <=, real->now_ms(real));
}

struct capture {
    char line[512];
    int count;
};

static void capture_sink(void *data, const char *line, size_t len)
{
    struct capture *capture = data;

    snprintf(capture->line, sizeof(capture->line), "%.*s", (int)len, line);
    capture->count++;
}

static int formatted;
static int count_formatting(void)
{
    return ++formatted;
}

TEST(log, levels_and_fields, NULL, NULL)
{
    struct capture capture = {{0}, 0};
    enum cn_log_level level;

    cn_log_set_sink(capture_sink, &capture);
    cn_log_set_level(CN_WARN);
    CN_LOG(CN_INFO, "hidden", "n=%d", count_formatting());
    ASSERT_EQ(capture.count, 0);
    ASSERT_EQ(formatted, 0); /* arguments not evaluated below the level */
    CN_LOG(CN_WARN, "shard unreadable", "chunk=%s err=%s", "ab12", cairn_errname(CAIRN_EIO));
    ASSERT_EQ(capture.count, 1);
    ASSERT_TRUE(strstr(capture.line, "level=warn msg=\"shard unreadable\" chunk=ab12 "
                                     "err=CAIRN_EIO\n") != NULL);
    ASSERT_TRUE(strncmp(capture.line, "ts=", 3) == 0);
    ASSERT_OK(cn_log_level_parse("debug", &level));
    ASSERT_EQ(level, CN_DEBUG);
    ASSERT_ERR(cn_log_level_parse("loud", &level), CAIRN_EINVAL);
    cn_log_set_sink(NULL, NULL);
    cn_log_set_level(CN_INFO);
}
