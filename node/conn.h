/* Internal to node/: the connection struct shared by conn.c, server.c and client.c. */
#ifndef NODE_CONN_H
#define NODE_CONN_H

#include "node_rpc.h"
#include "wire.pb-c.h"

enum node_conn_state {
    NODE_CONN_CONNECTING, /* client: TCP connect in progress */
    NODE_CONN_HANDSHAKE,  /* channel handshake in progress */
    NODE_CONN_OPEN,       /* frames flow */
    NODE_CONN_CLOSING,    /* uv_close() called; freed in the last close callback */
};

/* One connection. Owns its handles and buffers until handle_close_cb(). */
struct node_conn {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake, stall and idle timeouts */
    unsigned handle_count;
    unsigned hold_count; /* node_conn_hold() by work in flight: freed only at 0 */
    enum node_conn_state state;
    struct node_rpc_options options;
    struct node_channel channel;
    struct proto_reader reader;
    struct cn_buf plain; /* decrypted bytes on their way to the reader */
    struct cn_buf early; /* frames sent before the channel opened */
    struct cn_buf hello; /* a client's hello, until connected */
    uint8_t read_buf[64 << 10];
    size_t queued_bytes; /* written but not yet acknowledged by libuv */
    uint64_t started_ms;
    uint64_t last_read_ms;
    int close_reason;
    bool was_quiet_close; /* the owner closed it on purpose: don't log */
    bool quiet_connect;   /* a connect that fails is not logged (raft links) */
    char peer[64];
    node_frame_cb on_frame;
    void *frame_data;
    void (*on_open)(struct node_conn *conn);
    void (*on_close)(struct node_conn *conn);
    void *owner;
    struct node_conn *next; /* in the owner's list */
    /* Raw mode (raft_link.c): once set, decrypted bytes go to raw_cb instead
     * of the frame reader; raw_closed runs when the connection closes and
     * raw_drained each time a write completes. */
    void (*raw_cb)(void *raw_data, const uint8_t *bytes, size_t len);
    void (*raw_closed)(void *raw_data);
    void (*raw_drained)(void *raw_data);
    void *raw_data;
    bool reading_paused;
};

struct node_conn *node__conn_new(uv_loop_t *loop,
                                 const struct node_rpc_options *options,
                                 const uint8_t secret[NODE_SECRET_SIZE],
                                 bool is_client);
int node__conn_start(struct node_conn *conn);
/* Closes once (idempotent); reason 0 means a deliberate, quiet close. */
void node__conn_close(struct node_conn *conn, int reason);
/* Switches conn to raw mode (see struct node_conn). Bytes that follow the
 * last frame in the same read are a protocol error: peers wait for the
 * Hello answer before sending raw bytes. */
void node__conn_set_raw(struct node_conn *conn,
                        void (*raw_cb)(void *raw_data, const uint8_t *bytes, size_t len),
                        void (*raw_closed)(void *raw_data),
                        void (*raw_drained)(void *raw_data),
                        void *raw_data);
/* Seals and writes raw bytes (raw mode). CAIRN_ESHUTDOWN, CAIRN_EIO. */
int node__conn_write_raw(struct node_conn *conn, const uint8_t *bytes, size_t len);
/* Stops or resumes reading from the peer (back-pressure). */
void node__conn_pause(struct node_conn *conn, bool pause);
/* Parses "host:port" (IPv4) into addr. CAIRN_EINVAL. */
int node__parse_address(const char *address, struct sockaddr_in *addr);

#endif /* NODE_CONN_H */
