/* Byte buffers and little-endian helpers. */
#include "test.h"

TEST(buf, append_grows_and_keeps_bytes, NULL, NULL)
{
    struct cn_buf buf;
    uint8_t expect[10000];

    cn_buf_init(&buf);
    for (size_t i = 0; i < sizeof(expect); i++) {
        uint8_t byte = (uint8_t)(i * 7);
        expect[i] = byte;
        ASSERT_OK(cn_buf_append(&buf, &byte, 1));
    }
    ASSERT_EQ(buf.len, sizeof(expect));
    ASSERT_CMP(buf.cap, >=, buf.len);
    ASSERT_MEM_EQ(buf.base, expect, sizeof(expect));
    cn_buf_consume(&buf, 9990);
    ASSERT_EQ(buf.len, 10);
    ASSERT_MEM_EQ(buf.base, expect + 9990, 10);
    cn_buf_close(&buf);
    ASSERT_TRUE(buf.base == NULL);
}

TEST(buf, reserve_overflow_is_refused, NULL, NULL)
{
    struct cn_buf buf;

    cn_buf_init(&buf);
    ASSERT_OK(cn_buf_append(&buf, "abc", 3));
    ASSERT_ERR(cn_buf_reserve(&buf, SIZE_MAX - 1), CAIRN_ETOOBIG);
    ASSERT_EQ(buf.len, 3); /* untouched */
    ASSERT_MEM_EQ(buf.base, "abc", 3);
    cn_buf_close(&buf);
}

TEST(buf, printf_appends, NULL, NULL)
{
    struct cn_buf buf;

    cn_buf_init(&buf);
    ASSERT_OK(cn_buf_printf(&buf, "a=%d", 1));
    ASSERT_OK(cn_buf_printf(&buf, " b=%s", "two"));
    ASSERT_EQ(buf.len, 9);
    ASSERT_MEM_EQ(buf.base, "a=1 b=two", 9);
    cn_buf_close(&buf);
}

TEST(buf, little_endian_round_trip, NULL, NULL)
{
    uint8_t bytes[8];

    cn_put_u64(bytes, 0x0102030405060708ull);
    ASSERT_EQ(bytes[0], 0x08);
    ASSERT_EQ(bytes[7], 0x01);
    ASSERT_EQ(cn_get_u64(bytes), 0x0102030405060708ll);
    cn_put_u32(bytes, 0xdeadbeef);
    ASSERT_EQ(cn_get_u32(bytes), 0xdeadbeefll);
    cn_put_u16(bytes, 0xbeef);
    ASSERT_EQ(cn_get_u16(bytes), 0xbeef);
}
