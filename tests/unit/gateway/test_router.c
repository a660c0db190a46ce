/* The router: longest prefix on segment boundaries, methods, 404 vs 405, and
 * the checks on routes added at startup. */
#include "gw_int.h"
#include "test.h"

static void handler_a(struct gw_req *req, void *data)
{
    (void)req;
    (void)data;
}

static void handler_b(struct gw_req *req, void *data)
{
    (void)req;
    (void)data;
}

static void *setup(void)
{
    return gw_router_new();
}

static void teardown(void *data)
{
    gw_router_free(data);
}

/* Matches and checks that the handler's data is the expected tag. */
#define ASSERT_ROUTE(router, method, path, tag)                               \
    do {                                                                      \
        gw_handler_fn fn_;                                                    \
        void *data_;                                                          \
        ASSERT_OK(gw_router_match((router), (method), (path), &fn_, &data_)); \
        ASSERT_STR_EQ((const char *)data_, (tag));                            \
    } while (0)

TEST(router, longest_prefix_wins, setup, teardown)
{
    struct gw_router *router = data;

    ASSERT_OK(gw_router_add(router, NULL, "/", handler_a, "root"));
    ASSERT_OK(gw_router_add(router, NULL, "/v1", handler_a, "v1"));
    ASSERT_OK(gw_router_add(router, NULL, "/v1/files/", handler_b, "files"));
    ASSERT_ROUTE(router, "GET", "/", "root");
    ASSERT_ROUTE(router, "GET", "/index.html", "root");
    ASSERT_ROUTE(router, "GET", "/v1", "v1");
    ASSERT_ROUTE(router, "GET", "/v1/changes", "v1");
    ASSERT_ROUTE(router, "GET", "/v1/files", "files");
    ASSERT_ROUTE(router, "PUT", "/v1/files/a/b", "files");
    ASSERT_ROUTE(router, "GET", "/v1/filesx", "v1"); /* Not on a segment boundary */
    ASSERT_ROUTE(router, "GET", "/v10", "root");
}

TEST(router, method_specific_and_405, setup, teardown)
{
    struct gw_router *router = data;
    gw_handler_fn fn;
    void *tag;

    ASSERT_OK(gw_router_add(router, "GET", "/v1/files", handler_a, "get"));
    ASSERT_OK(gw_router_add(router, "PUT", "/v1/files", handler_b, "put"));
    ASSERT_ROUTE(router, "GET", "/v1/files/x", "get");
    ASSERT_ROUTE(router, "PUT", "/v1/files/x", "put");
    ASSERT_ERR(gw_router_match(router, "DELETE", "/v1/files/x", &fn, &tag), CAIRN_EUNSUPPORTED);
    ASSERT_ERR(gw_router_match(router, "GET", "/v2", &fn, &tag), CAIRN_ENOENT);
    /* A method-specific route beats an any-method route of the same prefix. */
    ASSERT_OK(gw_router_add(router, NULL, "/v1/files", handler_a, "any"));
    ASSERT_ROUTE(router, "GET", "/v1/files", "get");
    ASSERT_ROUTE(router, "DELETE", "/v1/files", "any");
}

TEST(router, bad_routes_refused, setup, teardown)
{
    struct gw_router *router = data;
    char prefix[GW_ROUTE_PREFIX_MAX + 1];
    int i;

    ASSERT_ERR(gw_router_add(router, NULL, "v1", handler_a, NULL), CAIRN_EINVAL);
    ASSERT_ERR(gw_router_add(router, "", "/v1", handler_a, NULL), CAIRN_EINVAL);
    ASSERT_ERR(gw_router_add(router, "AVERYLONGMETHODNAME", "/v1", handler_a, NULL), CAIRN_EINVAL);
    memset(prefix, 'a', sizeof(prefix));
    prefix[0] = '/';
    prefix[GW_ROUTE_PREFIX_MAX] = '\0';
    ASSERT_ERR(gw_router_add(router, NULL, prefix, handler_a, NULL), CAIRN_EINVAL);
    ASSERT_OK(gw_router_add(router, "GET", "/v1", handler_a, NULL));
    ASSERT_ERR(gw_router_add(router, "GET", "/v1", handler_b, NULL), CAIRN_EEXIST);
    for (i = 1; i < GW_ROUTE_COUNT_MAX; i++) {
        snprintf(prefix, sizeof(prefix), "/r%d", i);
        ASSERT_OK(gw_router_add(router, "GET", prefix, handler_a, NULL));
    }
    ASSERT_ERR(gw_router_add(router, "GET", "/one-too-many", handler_a, NULL), CAIRN_ETOOBIG);
}
