/*
 * Many Raft groups over one port: a raft_uv_transport per group, all sharing
 * one struct meta_mux, with a pluggable connector (outgoing streams) and an
 * entry point for accepted streams (meta_mux_accept()).
 *
 * The happy path, outgoing:
 *   1. libraft calls our transport's connect(id, address).
 *   2. The mux asks its connector for a stream to address for this group. The
 *      node's connector will do its authenticated handshake and Hello; the
 *      plain-TCP one here connects, sends a Hello frame (PURPOSE_RAFT,
 *      group_id, our id and address) and waits for the peer's Hello back,
 *      so that neither side reads past the handshake into libraft's bytes.
 *   3. The stream goes to libraft's connect callback; from then on it carries
 *      libraft's messages only.
 * Incoming:
 *   1. The acceptor (the node's, or the plain-TCP listener here) reads the
 *      Hello, answers with its own, and calls meta_mux_accept().
 *   2. The mux finds the group's transport and gives the stream, with the
 *      peer's Raft id and address from the Hello, to libraft's accept
 *      callback. Our Hello replaces libraft's own TCP handshake.
 *
 * Possible failure modes:
 *   - The connection or the handshake fails: libraft's connect callback gets
 *     RAFT_NOCONNECTION and retries later.
 *   - A Hello for a group not hosted here, a bad frame, or a purpose other
 *     than PURPOSE_RAFT: the stream is closed.
 *   - The transport closes with connects pending: libraft gets RAFT_CANCELED
 *     at once; a stream that arrives afterwards is closed.
 */
#include <stdlib.h>
#include <string.h>

#include <raft/uv.h>
#include <uv.h>

#include "meta_int.h"

#define MUX_GROUPS_MAX 4096u

struct mux_transport;

/* One outgoing connect, from libraft's request to the connector's answer. */
struct mux_connect {
    struct mux_transport *transport; /* NULL once canceled */
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    struct mux_connect *next;
};

struct mux_transport {
    struct raft_uv_transport *raft; /* the vtable libraft holds; impl points here */
    struct meta_mux *mux;
    uint64_t group_id;
    raft_id id;
    char address[META_ADDRESS_MAX];
    raft_uv_accept_cb accept_cb; /* set by listen */
    struct mux_connect *connects;
    struct mux_transport *next;
};

struct meta_mux {
    struct uv_loop_s *loop;
    struct meta_mux_connector *connector;
    struct mux_transport *transports;
    uv_tcp_t *listener; /* the plain-TCP listener, if started */
    uint64_t node_id;
    char address[META_ADDRESS_MAX];
};

int meta_mux_new(struct uv_loop_s *loop,
                 uint64_t node_id,
                 const char *address,
                 struct meta_mux_connector *connector,
                 struct meta_mux **out)
{
    struct meta_mux *mux;

    if (strlen(address) >= META_ADDRESS_MAX || node_id == 0) {
        return CAIRN_EINVAL;
    }
    mux = cn_xcalloc(1, sizeof(*mux));
    mux->loop = loop;
    mux->connector = connector;
    mux->node_id = node_id;
    strcpy(mux->address, address);
    *out = mux;
    return 0;
}

static void listener_close_cb(uv_handle_t *handle);
static struct mux_transport *mux_find(struct meta_mux *mux, uint64_t group_id);
#define listener_close_cb_ listener_close_cb

struct uv_loop_s *meta__mux_loop(struct meta_mux *mux)
{
    return mux->loop;
}

uint64_t meta__mux_node_id(struct meta_mux *mux)
{
    return mux->node_id;
}

const char *meta__mux_address(struct meta_mux *mux)
{
    return mux->address;
}

int meta_mux_listen_tcp(struct meta_mux *mux, char *errmsg)
{
    int rv;

    CN_ASSERT(mux->listener == NULL);
    mux->listener = cn_xcalloc(1, sizeof(*mux->listener));
    rv = meta__tcp_listen(mux, mux->listener, mux->address, errmsg);
    if (rv != 0) {
        uv_close((uv_handle_t *)mux->listener, listener_close_cb_);
        mux->listener = NULL;
    }
    return rv;
}

static void listener_close_cb(uv_handle_t *handle)
{
    free(handle);
}

void meta_mux_free(struct meta_mux *mux)
{
    CN_ASSERT(mux->transports == NULL); /* every group's transport closed */
    if (mux->listener != NULL) {
        uv_close((uv_handle_t *)mux->listener, listener_close_cb);
    }
    free(mux);
}

bool meta__mux_hosts(struct meta_mux *mux, uint64_t group_id)
{
    struct mux_transport *t = mux_find(mux, group_id);

    return t != NULL && t->accept_cb != NULL;
}

static struct mux_transport *mux_find(struct meta_mux *mux, uint64_t group_id)
{
    for (struct mux_transport *t = mux->transports; t != NULL; t = t->next) {
        if (t->group_id == group_id) {
            return t;
        }
    }
    return NULL;
}

static void stream_close_cb(uv_handle_t *handle)
{
    raft_free(handle); /* streams are raft_malloc'ed: libraft frees those it owns */
}

void meta_mux_accept(struct meta_mux *mux,
                     uint64_t group_id,
                     uint64_t peer_id,
                     const char *peer_address,
                     struct uv_stream_s *stream)
{
    struct mux_transport *t = mux_find(mux, group_id);

    if (t == NULL || t->accept_cb == NULL) {
        uv_close((uv_handle_t *)stream, stream_close_cb);
        return;
    }
    t->accept_cb(t->raft, peer_id, peer_address, stream);
}

/* ---- The raft_uv_transport vtable ---- */

static int transport_init(struct raft_uv_transport *raft, raft_id id, const char *address)
{
    struct mux_transport *t = raft->impl;

    if (strlen(address) >= sizeof(t->address)) {
        return RAFT_NAMETOOLONG;
    }
    t->id = id;
    strcpy(t->address, address);
    return 0;
}

static int transport_listen(struct raft_uv_transport *raft, raft_uv_accept_cb cb)
{
    struct mux_transport *t = raft->impl;

    t->accept_cb = cb;
    return 0;
}

/* The connector's answer: hand the stream to libraft, or close it. */
static void connect_done(void *data, struct uv_stream_s *stream, int rv)
{
    struct mux_connect *connect = data;
    struct mux_transport *t = connect->transport;

    if (t == NULL) { /* canceled: libraft was told already */
        if (stream != NULL) {
            uv_close((uv_handle_t *)stream, stream_close_cb);
        }
        free(connect);
        return;
    }
    for (struct mux_connect **p = &t->connects; *p != NULL; p = &(*p)->next) {
        if (*p == connect) {
            *p = connect->next;
            break;
        }
    }
    CN_ASSERT((rv == 0) == (stream != NULL));
    connect->cb(connect->req, stream, rv == 0 ? 0 : RAFT_NOCONNECTION);
    free(connect);
}

static int transport_connect(struct raft_uv_transport *raft,
                             struct raft_uv_connect *req,
                             raft_id id,
                             const char *address,
                             raft_uv_connect_cb cb)
{
    struct mux_transport *t = raft->impl;
    struct meta_mux_connector *connector = t->mux->connector;
    struct mux_connect *connect = cn_xcalloc(1, sizeof(*connect));
    int rv;

    (void)id;
    connect->transport = t;
    connect->req = req;
    connect->cb = cb;
    connect->next = t->connects;
    t->connects = connect;
    rv = connector->connect(connector, t->mux, t->group_id, address, connect_done, connect);
    if (rv != 0) {
        t->connects = connect->next;
        free(connect);
        return RAFT_NOCONNECTION;
    }
    return 0;
}

static void transport_close(struct raft_uv_transport *raft, raft_uv_transport_close_cb cb)
{
    struct mux_transport *t = raft->impl;

    while (t->connects != NULL) {
        struct mux_connect *connect = t->connects;
        t->connects = connect->next;
        connect->transport = NULL; /* freed by connect_done() when it comes */
        connect->cb(connect->req, NULL, RAFT_CANCELED);
    }
    t->accept_cb = NULL;
    for (struct mux_transport **p = &t->mux->transports; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
    raft->impl = NULL;
    cb(raft);
}

int meta_mux_transport_init(struct meta_mux *mux, uint64_t group_id, struct raft_uv_transport *raft)
{
    struct mux_transport *t;
    unsigned count = 0;

    for (t = mux->transports; t != NULL; t = t->next) {
        if (t->group_id == group_id) {
            return CAIRN_EEXIST;
        }
        count++;
    }
    if (count >= MUX_GROUPS_MAX) {
        return CAIRN_ETOOBIG;
    }
    t = cn_xcalloc(1, sizeof(*t));
    t->raft = raft;
    t->mux = mux;
    t->group_id = group_id;
    t->next = mux->transports;
    mux->transports = t;
    memset(raft, 0, sizeof(*raft));
    raft->impl = t;
    raft->init = transport_init;
    raft->listen = transport_listen;
    raft->connect = transport_connect;
    raft->close = transport_close;
    return 0;
}
