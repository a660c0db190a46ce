/*
 * Fuzzes the frame reader and the protobuf decoders behind it: any bytes, fed
 * in two pieces split at a fuzzer-chosen point, must give a clean error or
 * whole frames, and never an out-of-bounds access or an allocation over the
 * reader's limit.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "wire.pb-c.h"

static int on_frame(void *data, const struct proto_frame_header *header, const uint8_t *payload)
{
    Cairn__Wire__Hello *hello;

    (void)data;
    CN_ASSERT(header->length <= 1 << 16);
    hello = cairn__wire__hello__unpack(NULL, header->length, payload);
    if (hello != NULL) {
        cairn__wire__hello__free_unpacked(hello, NULL);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_reader reader;
    size_t split = size > 0 ? data[0] % (size + 1) : 0;

    proto_reader_init(&reader, 1 << 16);
    if (proto_reader_feed(&reader, data, split, on_frame, NULL) == 0) {
        proto_reader_feed(&reader, data + split, size - split, on_frame, NULL);
    }
    proto_reader_close(&reader);
    return 0;
}
