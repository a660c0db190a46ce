/*
 * The router: method + path prefix -> handler, a pure function of its table.
 *
 * The happy path: routes are added at startup; a lookup walks the table
 * (at most GW_ROUTE_COUNT_MAX entries, a few dozen in practice) and keeps the
 * longest prefix that matches the path on a segment boundary and accepts the
 * method.
 *
 * Possible failure modes:
 * - no prefix matches: CAIRN_ENOENT, answered 404;
 * - a prefix matches but no route for it takes the method: CAIRN_EUNSUPPORTED,
 *   answered 405;
 * - bad or duplicate routes at startup: CAIRN_EINVAL / CAIRN_EEXIST.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_int.h"

struct route {
    char method[16]; /* "" matches any */
    char prefix[GW_ROUTE_PREFIX_MAX];
    size_t prefix_size;
    gw_handler_fn handler;
    void *data;
};

struct gw_router {
    struct route *routes;
    size_t route_count;
};

struct gw_router *gw_router_new(void)
{
    struct gw_router *router = cn_xcalloc(1, sizeof(*router));

    router->routes = cn_xcalloc(GW_ROUTE_COUNT_MAX, sizeof(*router->routes));
    return router;
}

void gw_router_free(struct gw_router *router)
{
    if (router == NULL) {
        return;
    }
    free(router->routes);
    free(router);
}

int gw_router_add(struct gw_router *router,
                  const char *method,
                  const char *prefix,
                  gw_handler_fn handler,
                  void *data)
{
    struct route *route;
    size_t i;

    CN_ASSERT(handler != NULL);
    if (prefix == NULL || prefix[0] != '/' || strlen(prefix) >= GW_ROUTE_PREFIX_MAX) {
        return CAIRN_EINVAL;
    }
    if (method != NULL && (method[0] == '\0' || strlen(method) >= sizeof(route->method))) {
        return CAIRN_EINVAL;
    }
    for (i = 0; i < router->route_count; i++) {
        route = &router->routes[i];
        if (strcmp(route->prefix, prefix) == 0 &&
            strcmp(route->method, method != NULL ? method : "") == 0) {
            return CAIRN_EEXIST;
        }
    }
    if (router->route_count == GW_ROUTE_COUNT_MAX) {
        return CAIRN_ETOOBIG;
    }
    route = &router->routes[router->route_count++];
    strcpy(route->method, method != NULL ? method : "");
    strcpy(route->prefix, prefix);
    route->prefix_size = strlen(prefix);
    /* "/v1/" and "/v1" mean the same subtree. */
    if (route->prefix_size > 1 && prefix[route->prefix_size - 1] == '/') {
        route->prefix_size--;
        route->prefix[route->prefix_size] = '\0';
    }
    route->handler = handler;
    route->data = data;
    return 0;
}

/* Whether prefix covers path on a segment boundary. */
static bool prefix_matches(const struct route *route, const char *path)
{
    char next;

    if (route->prefix_size == 1) {
        return path[0] == '/'; /* "/" covers everything */
    }
    if (strncmp(path, route->prefix, route->prefix_size) != 0) {
        return false;
    }
    next = path[route->prefix_size];
    return next == '\0' || next == '/';
}

int gw_router_match(const struct gw_router *router,
                    const char *method,
                    const char *path,
                    gw_handler_fn *handler,
                    void **data)
{
    const struct route *best = NULL;
    bool path_known = false;
    size_t i;

    CN_ASSERT(method != NULL);
    CN_ASSERT(path != NULL);
    for (i = 0; i < router->route_count; i++) {
        const struct route *route = &router->routes[i];
        if (!prefix_matches(route, path)) {
            continue;
        }
        path_known = true;
        if (route->method[0] != '\0' && strcmp(route->method, method) != 0) {
            continue;
        }
        /* Longest prefix wins; on a tie, the route naming the method. */
        if (best == NULL || route->prefix_size > best->prefix_size ||
            (route->prefix_size == best->prefix_size && best->method[0] == '\0')) {
            best = route;
        }
    }
    if (best == NULL) {
        return path_known ? CAIRN_EUNSUPPORTED : CAIRN_ENOENT;
    }
    *handler = best->handler;
    *data = best->data;
    return 0;
}
