/*
 * Fuzzes the node channel's server side with a fixed secret: whatever a peer
 * sends before or after the handshake ends in a clean error, never an
 * out-of-bounds access or a buffer past one record.
 */
#include <stddef.h>
#include <stdint.h>

#include "node_rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[NODE_SECRET_SIZE] = {1, 2, 3};
    struct node_channel server;
    struct cn_buf out, plain;

    cn_buf_init(&out);
    cn_buf_init(&plain);
    CN_ASSERT(node_channel_init(&server, secret, false, &out) == 0);
    node_channel_feed(&server, data, size, &out, &plain);
    CN_ASSERT(server.in.len <= 4 + NODE_RECORD_CIPHER_MAX);
    node_channel_close(&server);
    cn_buf_close(&out);
    cn_buf_close(&plain);
    return 0;
}
