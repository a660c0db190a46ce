/*
 * The upload pipeline: a stream of bytes in, stored and recorded chunks out
 * (pipe.c has the story). Used by the simple PUT (transfer.c) and by tus
 * (tus.c). Everything on the app's loop.
 */
#ifndef GW_PIPE_H
#define GW_PIPE_H

#include "app.h"

/* One stored chunk of the file: its place and id. */
struct gw_chunk_ref {
    uint64_t offset;
    uint32_t size;
    bool recorded;
    uint8_t id[STOR_ID_SIZE];
};

struct gw_pipe;

/* on_resume(data, rv): the caller may resume its client (rv 0), or the pipe
 * failed while it was paused (rv). on_done(data, rv): after gw__pipe_flush(),
 * every chunk is stored and recorded (rv 0), or the first failure. Neither is
 * called after gw__pipe_close(). */
typedef void (*gw_pipe_cb)(void *data, int rv);

/* A pipe into namespace ns whose first byte is at file offset `offset`, with
 * the app's current scheme. CAIRN_ENOMEM, or the codec's error. */
int gw__pipe_new(struct gw_app *app,
                 uint64_t ns,
                 uint64_t offset,
                 gw_pipe_cb on_resume,
                 gw_pipe_cb on_done,
                 void *data,
                 struct gw_pipe **pipe);
void gw__pipe_set_actor(struct gw_pipe *pipe, uint64_t actor);
/* Takes len bytes (len <= GW_IN_SIZE; borrowed). Returns true when the caller
 * must pause its client until on_resume. */
bool gw__pipe_write(struct gw_pipe *pipe, const uint8_t *data, size_t len);
/* The input ended: the tail becomes the last chunk; on_done follows. */
void gw__pipe_flush(struct gw_pipe *pipe);
/* The input broke off: the tail is dropped; on_done follows once the chunks
 * already on their way are stored and recorded (gw__pipe_refs() has them). */
void gw__pipe_drain(struct gw_pipe *pipe);
/* The first failure, or 0. */
int gw__pipe_error(const struct gw_pipe *pipe);
/* The chunks stored and recorded so far, in file order (valid until the next
 * call into the pipe), and the file offset they reach. */
const struct gw_chunk_ref *gw__pipe_refs(const struct gw_pipe *pipe, size_t *count);
uint64_t gw__pipe_stored(const struct gw_pipe *pipe);
/* BLAKE2b-256 of the chunk list stored and recorded so far (each chunk's
 * offset u64, size u32 and id, little-endian): a version's content_hash. Not a
 * hash of the bytes: the same bytes cut differently give another value. */
void gw__pipe_list_hash(const struct gw_pipe *pipe, uint8_t out[32]);
/* Lets go of the pipe: work in flight finishes and is dropped; NULL is fine. */
void gw__pipe_close(struct gw_pipe *pipe);

#endif /* GW_PIPE_H */
