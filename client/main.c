/*
 * cairn: the command line client, on libcairn (docs/cli.md).
 *
 * 1. Parse the command line (args.c); a usage error is exit 2.
 * 2. Find the endpoint and token: --endpoint/--token, else $CAIRN_ENDPOINT/
 *    $CAIRN_TOKEN, else the file `cairn login` wrote.
 * 3. Run the command: one or a few SDK calls, text on stdout (one JSON
 *    object per line with --json), errors on stderr as
 *    "cairn: WHAT: the server's message (CAIRN_E..., HTTP n)".
 * 4. Exit with cl_exit_code() of the result.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

int cli_fail(struct cli *cli, int rv, const char *what)
{
    const char *msg = cli->client != NULL ? cairn_client_errmsg(cli->client) : "";
    int status = cli->client != NULL ? cairn_client_status(cli->client) : 0;

    if (msg[0] == '\0') {
        msg = cairn_strerror(rv);
    }
    if (status >= 400) {
        fprintf(stderr, "cairn: %s: %s (%s, HTTP %d)\n", what, msg, cairn_errname(rv), status);
    } else {
        fprintf(stderr, "cairn: %s: %s (%s)\n", what, msg, cairn_errname(rv));
    }
    if (rv == CAIRN_EAUTH) {
        fprintf(stderr, "cairn: sign in again with `cairn login`\n");
    }
    return rv;
}

/* ---- Output ---- */

static void print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

    if (text != NULL) {
        puts(text);
        free(text);
    }
    json_decref(obj);
}

static json_t *entry_json(const struct cairn_entry *e)
{
    return json_pack("{ss ss ss ss sI sI ss sI sb}", "name", e->name, "path", e->path, "id", e->id,
                     "kind", e->folder ? "folder" : "file", "size", (json_int_t)e->size, "version",
                     (json_int_t)e->version, "etag", e->etag, "modified_ms",
                     (json_int_t)e->modified_ms, "trashed", e->trashed);
}

static int print_entry(void *data, const struct cairn_entry *e)
{
    struct cli *cli = data;
    char size[32], when[32];

    if (cli->args.json) {
        print_json(entry_json(e));
        return 0;
    }
    cl_format_time(e->modified_ms, when, sizeof(when));
    if (e->folder) {
        printf("d %10s  %s  %s/\n", "-", when, e->name);
    } else {
        cl_format_size(e->size, size, sizeof(size));
        printf("- %10s  %s  %s\n", size, when, e->name);
    }
    return 0;
}

static int print_trash_entry(void *data, const struct cairn_entry *e)
{
    struct cli *cli = data;
    char when[32];

    if (cli->args.json) {
        print_json(entry_json(e));
        return 0;
    }
    cl_format_time(e->modified_ms, when, sizeof(when));
    printf("%-20s %s  %s%s\n", e->id, when, e->path[0] ? e->path : e->name, e->folder ? "/" : "");
    return 0;
}

static void print_stat(const struct cli *cli, const struct cairn_entry *e)
{
    char when[32];

    if (cli->args.json) {
        print_json(entry_json(e));
        return;
    }
    cl_format_time(e->modified_ms, when, sizeof(when));
    printf("name:     %s\npath:     %s\nid:       %s\nkind:     %s\nsize:     %" PRIu64
           "\nversion:  %" PRIu64 "\netag:     %s\nmodified: %s UTC\n",
           e->name, e->path, e->id, e->folder ? "folder" : "file", e->size, e->version, e->etag,
           when);
    if (e->trashed) {
        printf("trashed:  yes\n");
    }
}

/* ---- Setup ---- */

/* Flag, else environment, else the login file. */
static void pick(const char *flag, const char *env, const char *file, char *out, size_t out_size)
{
    const char *value = flag != NULL ? flag : getenv(env);

    if (value == NULL || value[0] == '\0') {
        value = file;
    }
    snprintf(out, out_size, "%s", value);
}

static int setup(struct cli *cli)
{
    char errmsg[CN_ERRMSG_SIZE];
    int rv;

    if (cl_config_dir(cli->config_dir, sizeof(cli->config_dir)) != 0 ||
        cl_state_dir(cli->state_dir, sizeof(cli->state_dir)) != 0) {
        fprintf(stderr, "cairn: set HOME or XDG_CONFIG_HOME and XDG_STATE_HOME\n");
        return CAIRN_EINVAL;
    }
    rv = cl_config_read(cli->config_dir, &cli->config, errmsg);
    if (rv != 0 && rv != CAIRN_ENOENT) {
        fprintf(stderr, "cairn: %s\n", errmsg);
        return rv;
    }
    pick(cli->args.endpoint, "CAIRN_ENDPOINT", cli->config.endpoint, cli->endpoint,
         sizeof(cli->endpoint));
    pick(cli->args.token, "CAIRN_TOKEN", cli->config.token, cli->token, sizeof(cli->token));
    if (cli->endpoint[0] == '\0') {
        fprintf(stderr, "cairn: no endpoint: give --endpoint URL, set CAIRN_ENDPOINT, or run "
                        "`cairn login --endpoint URL`\n");
        cli->usage = true;
        return CAIRN_EINVAL;
    }
    rv = cairn_client_new(cli->endpoint, cli->token, &cli->client);
    if (rv != 0) {
        cli->usage = true;
        fprintf(stderr, "cairn: bad endpoint \"%s\" (want http://host:port)\n", cli->endpoint);
        return rv;
    }
    if (cli->args.root != NULL) {
        cairn_client_set_root(cli->client, cli->args.root);
    }
    if (cli->token[0] == '\0' && cli->args.cmd != CL_CMD_LOGIN) {
        fprintf(stderr, "cairn: not signed in: run `cairn login`, or give --token / CAIRN_TOKEN\n");
        return CAIRN_EAUTH;
    }
    return 0;
}

/* A password: one line of stdin, $CAIRN_PASSWORD, or asked on the terminal. */
static int read_password(const struct cli *cli, char *out, size_t out_size)
{
    const char *env = getenv("CAIRN_PASSWORD");
    struct termios old, quiet;
    FILE *tty;
    bool echo_off;

    if (cli->args.password_stdin || (env == NULL && !isatty(STDIN_FILENO))) {
        if (fgets(out, (int)out_size, stdin) == NULL) {
            return CAIRN_EINVAL;
        }
        out[strcspn(out, "\r\n")] = '\0';
        return 0;
    }
    if (env != NULL) {
        snprintf(out, out_size, "%s", env);
        return 0;
    }
    tty = fopen("/dev/tty", "r+e");
    if (tty == NULL) {
        return CAIRN_EINVAL;
    }
    fputs("Password: ", tty);
    fflush(tty);
    echo_off = tcgetattr(fileno(tty), &old) == 0;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    if (echo_off) {
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    if (fgets(out, (int)out_size, tty) == NULL) {
        out[0] = '\0';
    }
    if (echo_off) {
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    }
    fputc('\n', tty);
    fclose(tty);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* ---- Commands ---- */

static int cmd_login(struct cli *cli)
{
    const char *user = cli->args.user != NULL ? cli->args.user : cli->args.pos[0];
    char password[1024], token[CAIRN_TOKEN_SIZE], host[256] = "cli", errmsg[CN_ERRMSG_SIZE];
    struct cl_config config = cli->config;
    int rv;

    if (user == NULL) {
        user = cli->config.user[0] != '\0' ? cli->config.user : NULL;
    }
    if (user == NULL) {
        fprintf(stderr, "cairn: login wants a user: cairn login USER\n");
        cli->usage = true;
        return CAIRN_EINVAL;
    }
    if (read_password(cli, password, sizeof(password)) != 0) {
        fprintf(stderr, "cairn: no password (use --password-stdin or CAIRN_PASSWORD)\n");
        return CAIRN_EINVAL;
    }
    gethostname(host, sizeof(host) - 1);
    rv = cairn_login(cli->client, user, password,
                     cli->args.device != NULL ? cli->args.device : host, token);
    memset(password, 0, sizeof(password));
    if (rv != 0) {
        return cli_fail(cli, rv, "login");
    }
    snprintf(config.endpoint, sizeof(config.endpoint), "%s", cli->endpoint);
    snprintf(config.user, sizeof(config.user), "%s", user);
    snprintf(config.token, sizeof(config.token), "%s", token);
    rv = cl_config_write(cli->config_dir, &config, errmsg);
    if (rv != 0) {
        fprintf(stderr, "cairn: %s\n", errmsg);
        return rv;
    }
    if (!cli->args.quiet) {
        printf("signed in as %s at %s (token in %s/config)\n", user, cli->endpoint,
               cli->config_dir);
    }
    return 0;
}

static int cmd_logout(struct cli *cli)
{
    char errmsg[CN_ERRMSG_SIZE];
    int rv = cairn_logout(cli->client);
    int rv2 = 0;

    /* A token the server no longer knows is as good as revoked. */
    if (rv != 0 && rv != CAIRN_EAUTH) {
        cli_fail(cli, rv, "logout");
    }
    if (cli->config.token[0] != '\0' && strcmp(cli->config.token, cli->token) == 0) {
        cli->config.token[0] = '\0';
        rv2 = cl_config_write(cli->config_dir, &cli->config, errmsg);
        if (rv2 != 0) {
            fprintf(stderr, "cairn: %s\n", errmsg);
        }
    }
    if (rv == CAIRN_EAUTH) {
        rv = 0;
    }
    if (rv == 0 && rv2 == 0 && !cli->args.quiet) {
        printf("signed out\n");
    }
    return rv != 0 ? rv : rv2;
}

static int cmd_ls(struct cli *cli)
{
    const char *path = cli->args.pos_count > 0 ? cli->args.pos[0] : "";
    int rv = cairn_list(cli->client, path, print_entry, cli);

    return rv != 0 ? cli_fail(cli, rv, path[0] ? path : "/") : 0;
}

static int cmd_stat(struct cli *cli)
{
    struct cairn_entry entry;
    int rv = cairn_stat(cli->client, cli->args.pos[0], &entry);

    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    print_stat(cli, &entry);
    return 0;
}

static int cmd_mkdir(struct cli *cli)
{
    char path[CAIRN_PATH_SIZE];
    struct cairn_entry entry;
    int rv;

    if (cl_path_normalize(cli->args.pos[0], path, sizeof(path)) != 0 || path[0] == '\0') {
        return cli_fail(cli, CAIRN_EINVAL, "bad folder path");
    }
    if (cli->args.parents) {
        /* Each ancestor in turn; one that exists is fine. */
        for (char *slash = strchr(path, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            rv = cairn_mkdir(cli->client, path, NULL);
            *slash = '/';
            if (rv != 0 && rv != CAIRN_EEXIST && rv != CAIRN_ECONFLICT) {
                return cli_fail(cli, rv, path);
            }
        }
    }
    rv = cairn_mkdir(cli->client, path, &entry);
    if (rv != 0 && cli->args.parents && (rv == CAIRN_EEXIST || rv == CAIRN_ECONFLICT)) {
        return 0;
    }
    if (rv != 0) {
        return cli_fail(cli, rv, path);
    }
    if (cli->args.json) {
        print_json(entry_json(&entry));
    } else if (!cli->args.quiet) {
        printf("created %s/\n", path);
    }
    return 0;
}

static int cmd_mv(struct cli *cli)
{
    struct cairn_entry entry;
    int rv = cairn_move(cli->client, cli->args.pos[0], cli->args.pos[1], &entry);

    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (cli->args.json) {
        print_json(entry_json(&entry));
    } else if (!cli->args.quiet) {
        printf("moved %s to %s\n", cli->args.pos[0], entry.path[0] ? entry.path : cli->args.pos[1]);
    }
    return 0;
}

static int cmd_rm(struct cli *cli)
{
    int rv = cairn_remove(cli->client, cli->args.pos[0]);

    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (!cli->args.quiet) {
        printf("moved %s to the trash\n", cli->args.pos[0]);
    }
    return 0;
}

static int cmd_trash(struct cli *cli)
{
    const char *action = cli->args.pos_count > 0 ? cli->args.pos[0] : "list";
    int rv;

    /* cl_args_parse() checked the action and its arguments. */
    if (strcmp(action, "list") == 0) {
        rv = cairn_trash_list(cli->client, print_trash_entry, cli);
    } else if (strcmp(action, "empty") == 0) {
        rv = cairn_trash_purge(cli->client, NULL);
    } else {
        rv = cairn_trash_purge(cli->client, cli->args.pos[1]);
    }
    if (rv != 0) {
        return cli_fail(cli, rv, "trash");
    }
    if (strcmp(action, "list") != 0 && !cli->args.quiet) {
        printf("%s\n", strcmp(action, "empty") == 0 ? "emptied the trash" : "purged");
    }
    return 0;
}

struct trash_find {
    const char *path;
    char id[CAIRN_ID_SIZE];
    unsigned matches;
};

static int trash_find_cb(void *data, const struct cairn_entry *e)
{
    struct trash_find *find = data;
    char path[CAIRN_PATH_SIZE];

    /* An entry without its path (only its name) matches on the name. */
    if (e->path[0] == '\0' ? strcmp(e->name, cl_path_basename(find->path)) == 0
                           : cl_path_normalize(e->path, path, sizeof(path)) == 0 &&
                                 strcmp(path, find->path) == 0) {
        snprintf(find->id, sizeof(find->id), "%s", e->id);
        find->matches++;
    }
    return 0;
}

static int cmd_restore(struct cli *cli)
{
    const char *arg = cli->args.pos[0];
    char path[CAIRN_PATH_SIZE];
    struct trash_find find = {.path = path};
    struct cairn_entry entry;
    uint64_t number;
    int rv;

    if (cl_parse_u64(arg, &number) == 0) {
        snprintf(find.id, sizeof(find.id), "%s", arg);
    } else {
        /* A path: find it in the trash, refusing to guess between several. */
        if (cl_path_normalize(arg, path, sizeof(path)) != 0) {
            return cli_fail(cli, CAIRN_EINVAL, "bad path");
        }
        rv = cairn_trash_list(cli->client, trash_find_cb, &find);
        if (rv != 0) {
            return cli_fail(cli, rv, "trash");
        }
        if (find.matches != 1) {
            fprintf(stderr, "cairn: %s: %s in the trash; restore by ID (see `cairn trash`)\n", arg,
                    find.matches == 0 ? "not" : "several items");
            return find.matches == 0 ? CAIRN_ENOENT : CAIRN_ECONFLICT;
        }
    }
    rv = cairn_trash_restore(cli->client, find.id, &entry);
    if (rv != 0) {
        return cli_fail(cli, rv, arg);
    }
    if (cli->args.json) {
        print_json(entry_json(&entry));
    } else if (!cli->args.quiet) {
        printf("restored %s\n", entry.path[0] ? entry.path : entry.name);
    }
    return 0;
}

static int print_version(void *data, const struct cairn_version *v)
{
    struct cli *cli = data;
    char size[32], when[32];

    if (cli->args.json) {
        print_json(json_pack("{sI sI sI ss ss}", "version", (json_int_t)v->version, "size",
                             (json_int_t)v->size, "time_ms", (json_int_t)v->time_ms, "etag",
                             v->etag, "author", v->author));
        return 0;
    }
    cl_format_size(v->size, size, sizeof(size));
    cl_format_time(v->time_ms, when, sizeof(when));
    printf("%6" PRIu64 "  %10s  %s  %-16s %s\n", v->version, size, when, v->author, v->etag);
    return 0;
}

static int cmd_versions(struct cli *cli)
{
    struct cairn_entry entry;
    int rv;

    if (!cli->args.has_restore) {
        rv = cairn_versions(cli->client, cli->args.pos[0], print_version, cli);
        return rv != 0 ? cli_fail(cli, rv, cli->args.pos[0]) : 0;
    }
    rv = cairn_version_restore(cli->client, cli->args.pos[0], cli->args.restore, 0, &entry);
    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (cli->args.json) {
        print_json(entry_json(&entry));
    } else if (!cli->args.quiet) {
        printf("restored version %" PRIu64 " of %s as version %" PRIu64 "\n", cli->args.restore,
               cli->args.pos[0], entry.version);
    }
    return 0;
}

static int print_grant(void *data, const struct cairn_grant *g)
{
    struct cli *cli = data;

    if (cli->args.json) {
        print_json(json_pack("{ss ss}", "user", g->user, "role", g->role));
    } else {
        printf("%-24s %s\n", g->user, g->role);
    }
    return 0;
}

static int cmd_share(struct cli *cli)
{
    const char *role = cli->args.role != NULL ? cli->args.role : "viewer";
    int rv;

    if (cli->args.pos_count == 1) {
        rv = cairn_grants(cli->client, cli->args.pos[0], print_grant, cli);
        return rv != 0 ? cli_fail(cli, rv, cli->args.pos[0]) : 0;
    }
    rv = cairn_share(cli->client, cli->args.pos[0], cli->args.pos[1], role);
    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (!cli->args.quiet) {
        printf("shared %s with %s (%s)\n", cli->args.pos[0], cli->args.pos[1], role);
    }
    return 0;
}

static int cmd_unshare(struct cli *cli)
{
    int rv = cairn_unshare(cli->client, cli->args.pos[0], cli->args.pos[1]);

    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (!cli->args.quiet) {
        printf("unshared %s from %s\n", cli->args.pos[0], cli->args.pos[1]);
    }
    return 0;
}

static int print_shared(void *data, const struct cairn_shared *s)
{
    struct cli *cli = data;

    if (cli->args.json) {
        print_json(json_pack("{ss ss ss ss ss}", "root", s->root, "name", s->name, "owner",
                             s->owner, "role", s->role, "kind", s->folder ? "folder" : "file"));
    } else {
        printf("%-24s %-16s %-8s %s%s\n", s->root, s->owner, s->role, s->name,
               s->folder ? "/" : "");
    }
    return 0;
}

static int cmd_shared(struct cli *cli)
{
    int rv = cairn_shared_list(cli->client, print_shared, cli);

    return rv != 0 ? cli_fail(cli, rv, "shared") : 0;
}

struct watch {
    struct cli *cli;
    uint64_t seen;
};

#define WATCH_DONE 1

static int print_event(void *data, const struct cairn_event *ev)
{
    struct watch *w = data;
    char when[32];

    if (w->cli->args.json) {
        print_json(json_pack("{ss ss ss ss ss sI sI}", "kind", ev->kind, "id", ev->id, "path",
                             ev->path, "name", ev->name, "user", ev->user, "version",
                             (json_int_t)ev->version, "time_ms", (json_int_t)ev->time_ms));
    } else {
        cl_format_time(ev->time_ms, when, sizeof(when));
        printf("%s %-8s %s", when, ev->kind, ev->path[0] ? ev->path : ev->name);
        if (ev->version > 0) {
            printf(" v%" PRIu64, ev->version);
        }
        printf(" id=%s%s%s\n", ev->id, ev->user[0] ? " by " : "", ev->user);
    }
    fflush(stdout);
    w->seen++;
    return w->cli->args.count > 0 && w->seen >= w->cli->args.count ? WATCH_DONE : 0;
}

static int cmd_watch(struct cli *cli)
{
    char cursor[CAIRN_CURSOR_SIZE];
    struct watch w = {.cli = cli};
    unsigned backoff_s = 0, failures = 0;
    int rv;

    if (cli->args.cursor != NULL) {
        snprintf(cursor, sizeof(cursor), "%s", cli->args.cursor);
    } else if ((rv = cairn_changes_latest(cli->client, cursor)) != 0) {
        return cli_fail(cli, rv, "changes");
    }
    if (!cli->args.quiet) {
        fprintf(stderr, "cairn: watching from cursor %s\n", cursor);
    }
    for (;;) {
        rv = cairn_changes(cli->client, cursor, (unsigned)cli->args.timeout_s, print_event, &w,
                           &backoff_s);
        if (rv == WATCH_DONE) {
            return 0;
        }
        if (rv == CAIRN_EEXPIRED) {
            /* Too far behind: say so, and go on from now. */
            fprintf(stderr, "cairn: cursor %s expired; resyncing from the latest\n", cursor);
            rv = cairn_changes_latest(cli->client, cursor);
        }
        if (rv == CAIRN_EUNAVAIL || rv == CAIRN_ETIMEOUT || rv == CAIRN_EBUSY) {
            /* The gateway went away: any other one continues from our cursor. */
            backoff_s = CN_MIN(1u << CN_MIN(failures, 5u), 30u);
            failures++;
            fprintf(stderr, "cairn: %s; retrying in %us\n", cairn_client_errmsg(cli->client),
                    backoff_s);
        } else if (rv != 0) {
            return cli_fail(cli, rv, "changes");
        } else {
            failures = 0;
        }
        if (backoff_s > 0) {
            sleep(backoff_s);
        }
    }
}

static int cmd_admin_status(struct cli *cli)
{
    char *json = NULL;
    int rv = cairn_admin_status(cli->client, &json);

    if (rv != 0) {
        return cli_fail(cli, rv, "admin status");
    }
    puts(json);
    free(json);
    return 0;
}

static int cmd_admin_user_add(struct cli *cli)
{
    char password[1024], user_id[CAIRN_ID_SIZE] = "";
    int rv;

    if (read_password(cli, password, sizeof(password)) != 0 || password[0] == '\0') {
        fprintf(stderr, "cairn: no password (use --password-stdin or CAIRN_PASSWORD)\n");
        return CAIRN_EINVAL;
    }
    rv = cairn_admin_user_add(cli->client, cli->args.pos[0], password, cli->args.quota_bytes,
                              cli->args.admin, user_id);
    memset(password, 0, sizeof(password));
    if (rv != 0) {
        return cli_fail(cli, rv, cli->args.pos[0]);
    }
    if (!cli->args.quiet) {
        printf("created user %s (id %s)\n", cli->args.pos[0], user_id);
    }
    return 0;
}

static int run(struct cli *cli)
{
    switch (cli->args.cmd) {
    case CL_CMD_LOGIN:
        return cmd_login(cli);
    case CL_CMD_LOGOUT:
        return cmd_logout(cli);
    case CL_CMD_LS:
        return cmd_ls(cli);
    case CL_CMD_STAT:
        return cmd_stat(cli);
    case CL_CMD_PUT:
        return cli_put(cli);
    case CL_CMD_GET:
        return cli_get(cli);
    case CL_CMD_MKDIR:
        return cmd_mkdir(cli);
    case CL_CMD_MV:
        return cmd_mv(cli);
    case CL_CMD_RM:
        return cmd_rm(cli);
    case CL_CMD_TRASH:
        return cmd_trash(cli);
    case CL_CMD_RESTORE:
        return cmd_restore(cli);
    case CL_CMD_VERSIONS:
        return cmd_versions(cli);
    case CL_CMD_SHARE:
        return cmd_share(cli);
    case CL_CMD_UNSHARE:
        return cmd_unshare(cli);
    case CL_CMD_SHARED:
        return cmd_shared(cli);
    case CL_CMD_WATCH:
        return cmd_watch(cli);
    case CL_CMD_ADMIN_STATUS:
        return cmd_admin_status(cli);
    case CL_CMD_ADMIN_USER_ADD:
        return cmd_admin_user_add(cli);
    default:
        CN_ASSERT(false);
        return CAIRN_EINTERNAL;
    }
}

int main(int argc, char **argv)
{
    static struct cli cli;
    char errmsg[CN_ERRMSG_SIZE];
    int rv;

    signal(SIGPIPE, SIG_IGN); /* `cairn get x - | head` ends with EPIPE, not a signal */
    if (cl_args_parse(argc, argv, &cli.args, errmsg) != 0) {
        fprintf(stderr, "cairn: %s\n", errmsg);
        return CL_EXIT_USAGE;
    }
    if (cli.args.cmd == CL_CMD_HELP) {
        cl_usage(cli.args.help_for, stdout);
        return CL_EXIT_OK;
    }
    if (cli.args.cmd == CL_CMD_VERSION) {
        printf("cairn 0.1.0\n");
        return CL_EXIT_OK;
    }
    rv = setup(&cli);
    if (rv == 0) {
        rv = run(&cli);
    }
    cairn_client_free(cli.client);
    return cli.usage ? CL_EXIT_USAGE : cl_exit_code(rv);
}
