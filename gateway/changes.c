/*
 * The change stream (docs/api.md, "Changes"): GET /v1/changes long polls
 * and GET /v1/changes/latest.
 *
 * A poll, the happy path:
 *   1. Read the journal after the cursor (MetaRead journal, as the caller:
 *      the node checks the caller may see the namespace). Events: answer.
 *   2. None: the poll waits on the namespace's watch (struct gw_watch): one
 *      MetaWatch per namespace on this gateway, shared by every HTTP waiter,
 *      on the highest sequence number any of them has seen. When it fires,
 *      every waiter reads the journal again (step 1), so each sees only what
 *      its own rights allow. At its timeout (30 s by default, at most 120 s)
 *      a waiter answers {"events": [], "cursor": C}.
 *   3. The watch re-arms while it has waiters, and goes away with the last.
 *
 * "backoff": S is added when the gateway wants the client to slow down: the
 * watch failed (the metadata is unreachable: the waiter answers at once with
 * no events and backoff 2), or more than GW_WAITERS_SOFT_MAX polls wait here.
 *
 * Possible failure modes: a cursor older than what the journal keeps is 410
 * (CAIRN_EEXPIRED, from the node): resync; a cursor past the journal's end is
 * 400; the client leaves while waiting (its waiter is removed at once).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#define POLL_TIMEOUT_DEFAULT_MS 30000u
#define POLL_TIMEOUT_MAX_MS     120000u
#define JOURNAL_READ_MAX        1000u
#define GW_WAITERS_SOFT_MAX     10000u
#define BACKOFF_S               2

struct waiter {
    struct gw_call *call;
    struct gw_watch *watch;
    struct waiter *next;
    struct waiter *prev;
};

struct gw_watch {
    struct gw_app *app;
    uint64_t ns;
    uint64_t actor;  /* a waiter's user: the node checks it may see ns */
    uint64_t cursor; /* wake when the journal passes it */
    bool in_flight;
    bool waking; /* watch_cb walks the waiters: not freed under it */
    struct waiter *waiters;
    unsigned waiter_count;
    struct gw_watch *next;
};

struct poll {
    uint64_t cursor;
    uint64_t timeout_ms;
    uv_timer_t timer;
    bool timer_on;
    bool timer_closing;
    struct waiter waiter;
    bool waiting;
    bool backoff;
    unsigned waits; /* journal reads after a wake with nothing (bounded) */
};

static unsigned waiters_total(const struct gw_app *app)
{
    unsigned n = 0;

    for (const struct gw_watch *w = app->watches; w != NULL; w = w->next) {
        n += w->waiter_count;
    }
    return n;
}

static void watch_arm(struct gw_watch *watch);
static void poll_read(struct gw_call *call);
static void poll_stop_timer(struct gw_call *call);

static void watch_free_if_idle(struct gw_watch *watch)
{
    struct gw_app *app = watch->app;
    struct gw_watch **link;

    if (watch->waiters != NULL || watch->in_flight || watch->waking) {
        return;
    }
    for (link = &app->watches; *link != watch; link = &(*link)->next) {
        CN_ASSERT(*link != NULL);
    }
    *link = watch->next;
    app->watch_count--;
    free(watch);
}

static void waiter_remove(struct waiter *waiter)
{
    struct gw_watch *watch = waiter->watch;

    if (watch == NULL) {
        return;
    }
    if (waiter->prev != NULL) {
        waiter->prev->next = waiter->next;
    } else {
        watch->waiters = waiter->next;
    }
    if (waiter->next != NULL) {
        waiter->next->prev = waiter->prev;
    }
    waiter->next = waiter->prev = NULL;
    waiter->watch = NULL;
    watch->waiter_count--;
    watch_free_if_idle(watch);
}

static void watch_cb(void *data, int rv, uint64_t journal_seq)
{
    struct gw_watch *watch = data;
    struct waiter *waiter, *next;

    watch->in_flight = false;
    if (rv == CAIRN_ESHUTDOWN || watch->app->stopping) {
        rv = CAIRN_ESHUTDOWN;
    }
    if (rv == 0 && journal_seq <= watch->cursor) {
        /* The node's timeout: nothing new; keep waiting. */
        if (watch->waiters != NULL) {
            watch_arm(watch);
        }
        watch_free_if_idle(watch);
        return;
    }
    if (rv == 0) {
        watch->cursor = journal_seq;
    }
    /* Wake every waiter: each reads the journal with its own rights. */
    watch->waking = true;
    for (waiter = watch->waiters; waiter != NULL; waiter = next) {
        struct gw_call *call = waiter->call;
        struct poll *poll = call->op;

        next = waiter->next;
        waiter_remove(waiter);
        poll->waiting = false;
        poll->backoff = rv != 0;
        if (!gw__call_release(call)) {
            continue; /* the client left: the call is gone */
        }
        if (rv != 0) {
            json_t *body = json_pack("{s:[], s:I, s:i}", "events", "cursor",
                                     (json_int_t)poll->cursor, "backoff", BACKOFF_S);

            poll_stop_timer(call);
            gw__call_json(call, 200, body);
            json_decref(body);
            continue;
        }
        poll_read(call);
    }
    watch->waking = false;
    watch_free_if_idle(watch);
}

static void watch_arm(struct gw_watch *watch)
{
    Cairn__Wire__MetaWatch query = CAIRN__WIRE__META_WATCH__INIT;
    int rv;

    CN_ASSERT(!watch->in_flight);
    query.group = node_ns_group(watch->ns);
    query.actor = watch->actor;
    query.ns = watch->ns;
    query.cursor = watch->cursor;
    query.timeout_ms = POLL_TIMEOUT_MAX_MS / 4;
    rv = node_meta_watch(watch->app->meta, &query, watch_cb, watch);
    if (rv != 0) {
        watch->in_flight = true;
        watch_cb(watch, rv, 0);
        return;
    }
    watch->in_flight = true;
}

static struct gw_watch *watch_get(struct gw_app *app, uint64_t ns, uint64_t actor)
{
    struct gw_watch *watch;

    for (watch = app->watches; watch != NULL; watch = watch->next) {
        if (watch->ns == ns) {
            return watch;
        }
    }
    if (app->watch_count >= GW_WATCH_MAX) {
        return NULL;
    }
    watch = cn_xcalloc(1, sizeof(*watch));
    watch->app = app;
    watch->ns = ns;
    watch->actor = actor;
    watch->next = app->watches;
    app->watches = watch;
    app->watch_count++;
    return watch;
}

/* ---- One poll ---- */

static void poll_timer_close_cb(uv_handle_t *handle)
{
    struct gw_call *call = handle->data;

    gw__call_release(call);
}

static void poll_free(struct gw_call *call)
{
    struct poll *poll = call->op;

    CN_ASSERT(!poll->waiting);
    free(poll);
}

static void poll_stop_timer(struct gw_call *call)
{
    struct poll *poll = call->op;

    if (poll->timer_on && !poll->timer_closing) {
        poll->timer_closing = true;
        uv_timer_stop(&poll->timer);
        uv_close((uv_handle_t *)&poll->timer, poll_timer_close_cb); /* releases the hold */
    }
}

static void poll_answer(struct gw_call *call, json_t *events, uint64_t cursor)
{
    struct poll *poll = call->op;
    json_t *body;

    body = json_pack("{s:o, s:I}", "events", events, "cursor", (json_int_t)cursor);
    if (body != NULL && (poll->backoff || waiters_total(call->app) > GW_WAITERS_SOFT_MAX)) {
        json_object_set_new(body, "backoff", json_integer(BACKOFF_S));
    }
    poll_stop_timer(call);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void poll_timeout_cb(uv_timer_t *timer)
{
    struct gw_call *call = timer->data;
    struct poll *poll = call->op;

    if (poll->waiting) {
        waiter_remove(&poll->waiter);
        poll->waiting = false;
        gw__call_release(call);
    }
    poll_answer(call, json_array(), poll->cursor);
}

static void poll_wait(struct gw_call *call, uint64_t seq)
{
    struct poll *poll = call->op;
    struct gw_watch *watch = watch_get(call->app, call->ns, call->user);

    if (watch == NULL) {
        poll->backoff = true;
        poll_answer(call, json_array(), poll->cursor);
        return;
    }
    if (seq > watch->cursor) {
        watch->cursor = seq;
    }
    poll->waiter.call = call;
    poll->waiter.watch = watch;
    poll->waiter.prev = NULL;
    poll->waiter.next = watch->waiters;
    if (watch->waiters != NULL) {
        watch->waiters->prev = &poll->waiter;
    }
    watch->waiters = &poll->waiter;
    watch->waiter_count++;
    poll->waiting = true;
    gw__call_hold(call); /* released when woken or removed */
    if (!poll->timer_on) {
        uv_timer_init(call->app->loop, &poll->timer);
        poll->timer.data = call;
        poll->timer_on = true;
        gw__call_hold(call); /* the timer's memory is the call's: held until closed */
        uv_timer_start(&poll->timer, poll_timeout_cb, poll->timeout_ms, 0);
    }
    if (!watch->in_flight) {
        watch_arm(watch);
    }
}

static void journal_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct poll *poll = call->op;
    json_t *events;
    uint64_t seq;

    if (!gw__call_live(call)) {
        return; /* answered at the timeout meanwhile */
    }
    if (rv != 0) {
        poll_stop_timer(call);
        gw__call_error(call, rv,
                       rv == CAIRN_EEXPIRED ? "cursor %" PRIu64 " is too old: resync"
                                            : "cannot read the changes after %" PRIu64,
                       poll->cursor);
        return;
    }
    seq = reply->journal_seq;
    if (poll->cursor > seq) {
        poll_stop_timer(call);
        gw__call_error(call, CAIRN_EINVAL, "cursor %" PRIu64 " is past the end (%" PRIu64 ")",
                       poll->cursor, seq);
        return;
    }
    if (reply->n_events == 0) {
        if (poll->timeout_ms == 0 || poll->waits++ > 1000) {
            poll_answer(call, json_array(), poll->cursor);
            return;
        }
        poll_wait(call, seq > poll->cursor ? seq : poll->cursor);
        return;
    }
    events = json_array();
    for (size_t i = 0; i < reply->n_events; i++) {
        json_t *event = gw_event_json(reply->events[i]);

        if (event != NULL) {
            json_array_append_new(events, event);
        }
    }
    poll_answer(call, events,
                reply->next_cursor != 0 ? reply->next_cursor
                                        : reply->events[reply->n_events - 1]->seq);
}

static void poll_read(struct gw_call *call)
{
    struct poll *poll = call->op;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__JournalQuery journal = CAIRN__WIRE__JOURNAL_QUERY__INIT;

    if (!gw__call_live(call)) {
        return;
    }
    journal.ns = call->ns;
    journal.cursor = poll->cursor;
    journal.max = JOURNAL_READ_MAX;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_JOURNAL;
    query.journal = &journal;
    gw__call_read(call, &query, journal_cb);
}

static void poll_gone(struct gw_call *call);

static void latest_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    json_t *body;

    if (rv != 0 || reply->namespace_ == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "cannot read the namespace");
        return;
    }
    body = json_pack("{s:I}", "cursor", (json_int_t)reply->namespace_->journal_seq);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void changes_authed(struct gw_call *call)
{
    const char *path = gw_req_path(call->req);
    struct poll *poll;
    char text[24];
    uint64_t timeout_s = POLL_TIMEOUT_DEFAULT_MS / 1000;
    int rv;

    if (!gw__call_target(call, "/v1/changes")) {
        return;
    }
    if (strcmp(path, "/v1/changes/latest") == 0) {
        Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

        query.group = node_ns_group(call->ns);
        query.query_case = CAIRN__WIRE__META_READ__QUERY_NS;
        query.ns = call->ns;
        gw__call_read(call, &query, latest_cb);
        return;
    }
    if (strcmp(path, "/v1/changes") != 0) {
        gw__call_error(call, CAIRN_ENOENT, "no such resource");
        return;
    }
    poll = cn_xcalloc(1, sizeof(*poll));
    call->op = poll;
    call->op_free = poll_free;
    call->on_gone = poll_gone;
    rv = gw_query_get(gw_req_query(call->req), "cursor", text, sizeof(text));
    if (rv != 0 || gw_parse_u64(text, &poll->cursor) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "want ?cursor=N (GET /v1/changes/latest gives one)");
        return;
    }
    rv = gw_query_get(gw_req_query(call->req), "timeout", text, sizeof(text));
    if (rv == 0 &&
        (gw_parse_u64(text, &timeout_s) != 0 || timeout_s * 1000 > POLL_TIMEOUT_MAX_MS)) {
        gw__call_error(call, CAIRN_EINVAL, "timeout: 0..120 seconds");
        return;
    }
    poll->timeout_ms = timeout_s * 1000;
    call->app->stats.polls++;
    poll_read(call);
}

static void changes_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, changes_authed);
}

/* The client left or the server closes: take the waiter out at once. */
static void poll_gone(struct gw_call *call)
{
    struct poll *poll = call->op;

    poll_stop_timer(call);
    if (poll->waiting) {
        waiter_remove(&poll->waiter);
        poll->waiting = false;
        gw__call_release(call); /* the timer's hold keeps the call until its close */
    }
}

int gw__changes_routes(struct gw_app *app)
{
    return gw_router_add(app->router, "GET", "/v1/changes", changes_handler, app);
}

void gw__changes_stop(struct gw_app *app)
{
    (void)app; /* the watches end with node_meta_free(): their callbacks see ESHUTDOWN */
}
