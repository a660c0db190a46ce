/*
 * Raft command buffers: an 8-byte header, a packed cairn.cmd.Command, zeros.
 *
 *   offset size field
 *        0    4 length   of the packed message
 *        4    4 version  META_COMMAND_VERSION
 *        8    n message
 *      8+n    p zeros, so that 8 + n + p is a multiple of 8
 *
 * The padding is there because libraft 0.15 cannot reload a log whose entries
 * are not a multiple of 8 bytes long (canonical/raft #180, #304); the length
 * is there because protobuf cannot tell trailing zeros from a field.
 *
 * Possible failure modes: a buffer that is short, whose length overruns it,
 * whose padding is not zeros or whose message does not unpack is
 * CAIRN_EPROTO. Apply turns that into the entry's outcome on every replica
 * alike, so a bad entry cannot split the group.
 */
#include <string.h>

#include "meta_int.h"
#include "proto.h"

#define META_COMMAND_VERSION 1u

int meta_command_encode(const Cairn__Cmd__Command *cmd, struct cn_buf *out)
{
    size_t len = cairn__cmd__command__get_packed_size(cmd);
    size_t total = proto_command_padded_size(META_COMMAND_HEADER_SIZE + len);
    int rv;

    if (total > META_COMMAND_SIZE_MAX) {
        return CAIRN_ETOOBIG;
    }
    cn_buf_reset(out);
    rv = cn_buf_reserve(out, total);
    if (rv != 0) {
        return rv;
    }
    memset(out->base, 0, total);
    cn_put_u32(out->base, (uint32_t)len);
    cn_put_u32(out->base + 4, META_COMMAND_VERSION);
    cairn__cmd__command__pack(cmd, out->base + META_COMMAND_HEADER_SIZE);
    out->len = total;
    CN_ASSERT(out->len % 8 == 0);
    return 0;
}

int meta_command_decode(const void *buf, size_t len, Cairn__Cmd__Command **cmd)
{
    const uint8_t *bytes = buf;
    size_t msg_len;

    if (len < META_COMMAND_HEADER_SIZE || len > META_COMMAND_SIZE_MAX) {
        return CAIRN_EPROTO;
    }
    msg_len = cn_get_u32(bytes);
    if (cn_get_u32(bytes + 4) != META_COMMAND_VERSION || msg_len > len - META_COMMAND_HEADER_SIZE) {
        return CAIRN_EPROTO;
    }
    for (size_t i = META_COMMAND_HEADER_SIZE + msg_len; i < len; i++) {
        if (bytes[i] != 0) {
            return CAIRN_EPROTO;
        }
    }
    *cmd = cairn__cmd__command__unpack(NULL, msg_len, bytes + META_COMMAND_HEADER_SIZE);
    return *cmd == NULL ? CAIRN_EPROTO : 0;
}
