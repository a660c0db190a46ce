/*
 * cairn-gateway: the Drive REST API (docs/api.md) in front of a Cairn cluster.
 *
 *   cairn-gateway --nodes IP:PORT[,IP:PORT...] --secret FILE --keys FILE
 *                 [--listen IP:PORT] [--config FILE] [--max-file-size SIZE]
 *                 [--admin-user NAME --admin-password-file FILE] [--log-level L]
 *
 * Stateless: any number run behind a balancer. It learns the cluster from the
 * seed nodes (the cluster map, refreshed every map_refresh), keeps no state
 * of its own beyond caches, and on SIGTERM or SIGINT stops listening, lets
 * requests in flight finish for up to 5 s, closes its connections and exits 0.
 *
 * Exit codes: 0 after a clean stop; 1 a runtime failure (cannot listen);
 * 2 bad usage or configuration (flags, config file, secret or key file).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static const char usage[] =
    "usage: cairn-gateway --nodes IP:PORT[,...] --secret FILE --keys FILE [options]\n"
    "options:\n"
    "  --listen IP:PORT          HTTP address (default 127.0.0.1:8080; port 0: any)\n"
    "  --config FILE             INI file with a [gateway] section (docs/gateway.md); flags win\n"
    "  --max-file-size SIZE      largest file (default and maximum 10GiB)\n"
    "  --admin-user NAME         create this admin at start if missing, with the password\n"
    "  --admin-password-file F   in F (first line)\n"
    "  --log-level LEVEL         debug, info, warn, error (default info)\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage or config\n";

static int fail(int code, const char *what, const char *errmsg)
{
    fprintf(stderr, "cairn-gateway: %s: %s\n", what, errmsg);
    return code;
}

static int add_nodes(struct gw_app_config *config, const char *text)
{
    char *copy = cn_xstrdup(text), *save = NULL;
    int rv = 0;

    for (char *word = strtok_r(copy, " ,", &save); word != NULL && rv == 0;
         word = strtok_r(NULL, " ,", &save)) {
        if (gw_app_config_add_node(config, word) != 0) {
            rv = fail(EXIT_USAGE, "--nodes", "want IP:PORT[,IP:PORT...]");
        }
    }
    free(copy);
    return rv;
}

static int read_password_file(struct gw_app *app, const char *path)
{
    FILE *file = fopen(path, "r");
    size_t len;

    if (file == NULL || fgets(app->admin_password, sizeof(app->admin_password), file) == NULL) {
        if (file != NULL) {
            fclose(file);
        }
        return fail(EXIT_USAGE, "--admin-password-file", "cannot read the password");
    }
    fclose(file);
    len = strcspn(app->admin_password, "\r\n");
    app->admin_password[len] = '\0';
    if (len == 0) {
        return fail(EXIT_USAGE, "--admin-password-file", "empty password");
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct gw_app *app)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"nodes", required_argument, NULL, 'n'},
        {"secret", required_argument, NULL, 's'},
        {"keys", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'c'},
        {"max-file-size", required_argument, NULL, 'm'},
        {"admin-user", required_argument, NULL, 'a'},
        {"admin-password-file", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gw_app_config *config = &app->config;
    const char *config_path = NULL, *password_path = NULL;
    unsigned flags = 0;
    int opt, rv;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'l':
            snprintf(config->listen, sizeof(config->listen), "%s", optarg);
            flags |= GW_FLAG_LISTEN;
            break;
        case 'n':
            if ((rv = add_nodes(config, optarg)) != 0) {
                return rv;
            }
            flags |= GW_FLAG_NODES;
            break;
        case 's':
            snprintf(config->secret_path, sizeof(config->secret_path), "%s", optarg);
            flags |= GW_FLAG_SECRET;
            break;
        case 'k':
            snprintf(config->key_path, sizeof(config->key_path), "%s", optarg);
            flags |= GW_FLAG_KEYS;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'm':
            if (cn_parse_size(optarg, &config->file_size_max) != 0 ||
                config->file_size_max > GW_FILE_SIZE_DEFAULT) {
                return fail(EXIT_USAGE, "--max-file-size", "want a size up to 10GiB");
            }
            flags |= GW_FLAG_FILE_SIZE_MAX;
            break;
        case 'a':
            app->admin_user = optarg;
            break;
        case 'p':
            password_path = optarg;
            break;
        case 'v':
            if (cn_log_level_parse(optarg, &config->log_level) != 0) {
                return fail(EXIT_USAGE, "--log-level", "want debug, info, warn or error");
            }
            flags |= GW_FLAG_LOG_LEVEL;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        return fail(EXIT_USAGE, "unexpected argument", argv[optind]);
    }
    if (config_path != NULL) {
        struct cn_config file;
        char errmsg[CN_ERRMSG_SIZE];

        if (cn_config_load(&file, config_path, errmsg) != 0) {
            return fail(EXIT_USAGE, "config", errmsg);
        }
        rv = gw_app_config_load(config, &file, flags, errmsg);
        if (rv == 0) {
            rv = cn_config_check_unused(&file, errmsg);
        }
        cn_config_close(&file);
        if (rv != 0) {
            return fail(EXIT_USAGE, "config", errmsg);
        }
    }
    if (config->node_count == 0 || config->secret_path[0] == '\0' || config->key_path[0] == '\0') {
        return fail(EXIT_USAGE, "usage", "--nodes, --secret and --keys are required");
    }
    if ((app->admin_user == NULL) != (password_path == NULL)) {
        return fail(EXIT_USAGE, "usage", "--admin-user and --admin-password-file go together");
    }
    if (password_path != NULL) {
        return read_password_file(app, password_path);
    }
    return 0;
}

static void handle_close_cb(uv_handle_t *handle)
{
    (void)handle;
}

static void server_closed_cb(struct gw_server *server, void *data)
{
    struct gw_app *app = data;

    (void)server;
    app->server = NULL;
    gw__changes_stop(app);
    gw__cluster_stop(app);
    node_meta_free(app->meta);
    app->meta = NULL;
    node_blocks_free(app->blocks);
    app->blocks = NULL;
    uv_close((uv_handle_t *)&app->sigterm, handle_close_cb);
    uv_close((uv_handle_t *)&app->sigint, handle_close_cb);
    CN_LOG(CN_INFO, "gateway stopped", "calls=%llu", (unsigned long long)app->stats.calls_alive);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    struct gw_app *app = handle->data;

    if (app->stopping) {
        return;
    }
    CN_LOG(CN_INFO, "gateway stopping", "signal=%d", signum);
    app->stopping = true;
    uv_signal_stop(&app->sigterm);
    uv_signal_stop(&app->sigint);
    gw_server_close(app->server, GW_DRAIN_MS, server_closed_cb, app);
}

static int add_routes(struct gw_app *app)
{
    int rv;

    rv = gw__obs_routes(app);
    rv = rv != 0 ? rv : gw__auth_routes(app);
    rv = rv != 0 ? rv : gw__files_routes(app);
    rv = rv != 0 ? rv : gw__transfer_routes(app);
    rv = rv != 0 ? rv : gw__tus_routes(app);
    rv = rv != 0 ? rv : gw__share_routes(app);
    rv = rv != 0 ? rv : gw__changes_routes(app);
    return rv;
}

static int serve(struct gw_app *app)
{
    const char *seeds[GW_NODES_MAX];
    struct gw_config http;
    struct node_rpc_options rpc;
    char errmsg[CN_ERRMSG_SIZE];
    int rv;

    for (unsigned i = 0; i < app->config.node_count; i++) {
        seeds[i] = app->config.nodes[i];
    }
    gw_config_init(&http);
    if (gw_parse_address(app->config.listen, app->host, sizeof(app->host), &http.port) != 0) {
        return fail(EXIT_USAGE, "--listen", "want IP:PORT");
    }
    http.host = app->host;
    http.conn_count_max = (unsigned)app->config.conn_count_max;
    http.head_size_max = app->config.head_size_max;
    /* The declared-size check of uploads is ours (413 with a message); the
     * core's limit only backs it up for chunked bodies. */
    http.body_size_max = app->config.file_size_max;
    node_rpc_options_init(&rpc);
    app->meta = node_meta_new(app->loop, app->secret, seeds, app->config.node_count, &rpc);
    app->blocks = node_blocks_new(app->loop, app->secret, &rpc);
    if (app->meta == NULL || app->blocks == NULL) {
        return fail(EXIT_RUNTIME, "start", "out of memory");
    }
    app->router = gw_router_new();
    rv = add_routes(app);
    CN_ASSERT(rv == 0);
    rv = gw_server_new(app->loop, &http, app->router, &app->server, errmsg);
    if (rv != 0) {
        node_meta_free(app->meta);
        node_blocks_free(app->blocks);
        uv_run(app->loop, UV_RUN_DEFAULT);
        gw_router_free(app->router);
        return fail(rv == CAIRN_EINVAL ? EXIT_USAGE : EXIT_RUNTIME, "listen", errmsg);
    }
    gw__cluster_start(app);
    uv_signal_init(app->loop, &app->sigterm);
    uv_signal_init(app->loop, &app->sigint);
    app->sigterm.data = app;
    app->sigint.data = app;
    uv_signal_start(&app->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&app->sigint, signal_cb, SIGINT);
    CN_LOG(CN_INFO, "gateway ready", "listen=%s:%u max_file_size=%llu", app->host,
           gw_server_port(app->server), (unsigned long long)app->config.file_size_max);
    uv_run(app->loop, UV_RUN_DEFAULT);
    gw_router_free(app->router);
    return 0;
}

int main(int argc, char **argv)
{
    static struct gw_app app; /* large (the token cache); one per process */
    char errmsg[CN_ERRMSG_SIZE];
    uv_loop_t loop;
    int rv;

    signal(SIGPIPE, SIG_IGN);
    (void)cn_crash_report_install(); /* a death leaves a backtrace in the log */
    gw_app_config_init(&app.config);
    rv = parse_args(argc, argv, &app);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    cn_log_set_level(app.config.log_level);
    if (sodium_init() < 0) {
        return fail(EXIT_RUNTIME, "start", "libsodium would not start");
    }
    if (node_secret_load(app.config.secret_path, app.secret, errmsg) != 0) {
        return fail(EXIT_USAGE, "secret", errmsg);
    }
    if (stor_keys_load(&app.keys, app.config.key_path, errmsg) != 0) {
        return fail(EXIT_USAGE, "keys", errmsg);
    }
    uv_loop_init(&loop);
    app.loop = &loop;
    app.start_ms = uv_now(&loop);
    rv = serve(&app);
    /* Whatever handles the clients left closing, then the loop. */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        CN_LOG(CN_WARN, "handles left open at exit", "%s", "");
    }
    sodium_memzero(&app.keys, sizeof(app.keys));
    sodium_memzero(app.secret, sizeof(app.secret));
    return rv;
}
