/*
 * The cairn command line: `cairn [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]`.
 *
 * cl_args_parse() is pure (no I/O, no environment), so every rule below is a
 * unit test (tests/unit/client/test_args.c):
 * - options may come before or after the command, as "--name value" or
 *   "--name=value"; "--" ends options; "-" alone is an argument (stdout);
 * - each option belongs to some commands (the global ones to all), and an
 *   option given to a command that does not take it is a usage error;
 * - each command takes between pos_min and pos_max arguments;
 * - `admin` takes a subcommand: `admin status`, `admin user add NAME`.
 * The help text (cl_usage) is written from the same tables.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cl_int.h"

#define ALL      (~0u)
#define BIT(cmd) (1u << (cmd))

struct command {
    const char *name;
    unsigned pos_min;
    unsigned pos_max;
    const char *synopsis;
    const char *what;
};

static const struct command commands[CL_CMD_COUNT] = {
    [CL_CMD_HELP] = {"help", 0, 3, "help [COMMAND]", "show this help, or one command's"},
    [CL_CMD_VERSION] = {"version", 0, 0, "version", "print the client's version"},
    [CL_CMD_LOGIN] = {"login", 0, 1, "login [USER] [--user U] [--password-stdin] [--device D]",
                      "sign in; writes endpoint and token to the config file (0600)"},
    [CL_CMD_LOGOUT] = {"logout", 0, 0, "logout", "revoke the token and forget it"},
    [CL_CMD_LS] = {"ls", 0, 1, "ls [PATH]", "list a folder (the drive's top by default)"},
    [CL_CMD_STAT] = {"stat", 1, 1, "stat PATH", "show one item"},
    [CL_CMD_PUT] = {"put", 1, 2,
                    "put LOCAL [REMOTE] [--if-match ETAG] [--base N] [--chunk-size SIZE] "
                    "[--tus-min SIZE]",
                    "upload a file (REMOTE ending in / is a folder); large files resume"},
    [CL_CMD_GET] = {"get", 1, 2, "get REMOTE [LOCAL|-] [--version N]",
                    "download a file (resumes a partial download)"},
    [CL_CMD_MKDIR] = {"mkdir", 1, 1, "mkdir PATH [-p]", "make a folder (-p: and its parents)"},
    [CL_CMD_MV] = {"mv", 2, 2, "mv FROM TO", "move or rename"},
    [CL_CMD_RM] = {"rm", 1, 1, "rm PATH", "move an item to the trash"},
    [CL_CMD_TRASH] = {"trash", 0, 2, "trash [list | empty | purge ID]",
                      "list the trash, empty it, or purge one item"},
    [CL_CMD_RESTORE] = {"restore", 1, 1, "restore ID|PATH", "restore an item from the trash"},
    [CL_CMD_VERSIONS] = {"versions", 1, 1, "versions PATH [--restore N]",
                         "list a file's versions, or make version N current again"},
    [CL_CMD_SHARE] = {"share", 1, 2, "share PATH [USER] [--role viewer|editor]",
                      "share with a user (without USER: list the grants)"},
    [CL_CMD_UNSHARE] = {"unshare", 2, 2, "unshare PATH USER", "take a user's access away"},
    [CL_CMD_SHARED] = {"shared", 0, 0, "shared", "list what others share with you"},
    [CL_CMD_WATCH] = {"watch", 0, 0, "watch [--cursor C] [--timeout S] [--count N]",
                      "print one line per change, as they happen"},
    [CL_CMD_ADMIN_STATUS] = {"admin status", 0, 0, "admin status", "cluster status (admins)"},
    [CL_CMD_ADMIN_USER_ADD] = {"admin user add", 1, 1,
                               "admin user add NAME [--password-stdin] [--quota SIZE] [--admin]",
                               "create a user (admins)"},
};

enum opt_kind {
    OPT_STR,  /* const char * */
    OPT_FLAG, /* bool = true */
    OPT_U64,  /* decimal */
    OPT_SIZE, /* "10GiB" */
    OPT_PROG, /* progress on/off */
    OPT_HELP,
};

struct option {
    const char *name; /* "--name" */
    char short_name;  /* '-x', or 0 */
    enum opt_kind kind;
    size_t offset;
    size_t has_offset; /* a bool set when given, or 0 */
    unsigned commands; /* BIT(cmd) mask */
    int value;         /* OPT_PROG: the value to set */
};

#define F(field) offsetof(struct cl_args, field)

static const struct option options[] = {
    {"endpoint", 0, OPT_STR, F(endpoint), 0, ALL, 0},
    {"token", 0, OPT_STR, F(token), 0, ALL, 0},
    {"root", 0, OPT_STR, F(root), 0, ALL, 0},
    {"json", 0, OPT_FLAG, F(json), 0, ALL, 0},
    {"quiet", 'q', OPT_FLAG, F(quiet), 0, ALL, 0},
    {"progress", 0, OPT_PROG, F(progress), 0, BIT(CL_CMD_PUT) | BIT(CL_CMD_GET), 1},
    {"no-progress", 0, OPT_PROG, F(progress), 0, BIT(CL_CMD_PUT) | BIT(CL_CMD_GET), 0},
    {"help", 'h', OPT_HELP, 0, 0, ALL, 0},
    {"user", 'u', OPT_STR, F(user), 0, BIT(CL_CMD_LOGIN), 0},
    {"device", 0, OPT_STR, F(device), 0, BIT(CL_CMD_LOGIN), 0},
    {"password-stdin", 0, OPT_FLAG, F(password_stdin), 0,
     BIT(CL_CMD_LOGIN) | BIT(CL_CMD_ADMIN_USER_ADD), 0},
    {"role", 0, OPT_STR, F(role), 0, BIT(CL_CMD_SHARE), 0},
    {"cursor", 0, OPT_STR, F(cursor), 0, BIT(CL_CMD_WATCH), 0},
    {"timeout", 0, OPT_U64, F(timeout_s), 0, BIT(CL_CMD_WATCH), 0},
    {"count", 'n', OPT_U64, F(count), 0, BIT(CL_CMD_WATCH), 0},
    {"if-match", 0, OPT_STR, F(if_match), 0, BIT(CL_CMD_PUT), 0},
    {"base", 0, OPT_U64, F(base), 0, BIT(CL_CMD_PUT), 0},
    {"chunk-size", 0, OPT_SIZE, F(chunk_size), 0, BIT(CL_CMD_PUT), 0},
    {"tus-min", 0, OPT_SIZE, F(tus_min), 0, BIT(CL_CMD_PUT), 0},
    {"version", 0, OPT_U64, F(version), F(has_version), BIT(CL_CMD_GET), 0},
    {"restore", 0, OPT_U64, F(restore), F(has_restore), BIT(CL_CMD_VERSIONS), 0},
    {"parents", 'p', OPT_FLAG, F(parents), 0, BIT(CL_CMD_MKDIR), 0},
    {"quota", 0, OPT_SIZE, F(quota_bytes), 0, BIT(CL_CMD_ADMIN_USER_ADD), 0},
    {"admin", 0, OPT_FLAG, F(admin), 0, BIT(CL_CMD_ADMIN_USER_ADD), 0},
};

const char *cl_cmd_name(enum cl_cmd cmd)
{
    return cmd > CL_CMD_NONE && cmd < CL_CMD_COUNT ? commands[cmd].name : NULL;
}

static void defaults(struct cl_args *args)
{
    memset(args, 0, sizeof(*args));
    args->progress = -1;
    args->timeout_s = 30;
    args->chunk_size = 8u << 20;
    args->tus_min = 8u << 20;
}

static const struct option *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < CN_ARRAY_SIZE(options); i++) {
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0) {
            return &options[i];
        }
    }
    return NULL;
}

static const struct option *find_short(char c)
{
    for (size_t i = 0; i < CN_ARRAY_SIZE(options); i++) {
        if (options[i].short_name == c) {
            return &options[i];
        }
    }
    return NULL;
}

/* Stores value for opt. CAIRN_EINVAL with errmsg. */
static int apply(struct cl_args *args, const struct option *opt, const char *value, char *errmsg)
{
    char *base = (char *)args;

    switch (opt->kind) {
    case OPT_STR:
        *(const char **)(base + opt->offset) = value;
        break;
    case OPT_FLAG:
        *(bool *)(base + opt->offset) = true;
        break;
    case OPT_PROG:
        *(int *)(base + opt->offset) = opt->value;
        break;
    case OPT_HELP:
        args->help_for = args->cmd != CL_CMD_NONE ? args->cmd : CL_CMD_HELP;
        break;
    case OPT_U64:
        if (cl_parse_u64(value, (uint64_t *)(base + opt->offset)) != 0) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "--%s wants a number, not \"%s\"", opt->name,
                              value);
        }
        break;
    case OPT_SIZE:
        if (cn_parse_size(value, (uint64_t *)(base + opt->offset)) != 0) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "--%s wants a size (64MiB), not \"%s\"",
                              opt->name, value);
        }
        break;
    }
    if (opt->has_offset != 0) {
        *(bool *)(base + opt->has_offset) = true;
    }
    return 0;
}

static bool takes_value(const struct option *opt)
{
    return opt->kind == OPT_STR || opt->kind == OPT_U64 || opt->kind == OPT_SIZE;
}

/* Parses the option at argv[*i]; may consume the next argument. */
static int parse_option(
    int argc, char **argv, int *i, struct cl_args *args, char *errmsg, const struct option **out)
{
    const char *arg = argv[*i];
    const char *value = NULL;
    const struct option *opt;

    if (arg[1] == '-') {
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);

        opt = find_long(arg + 2, len);
        value = eq != NULL ? eq + 1 : NULL;
    } else {
        opt = arg[2] == '\0' ? find_short(arg[1]) : NULL;
    }
    if (opt == NULL) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "unknown option %s", arg);
    }
    if (takes_value(opt) && value == NULL) {
        if (*i + 1 >= argc) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s wants a value", arg);
        }
        value = argv[++*i];
    } else if (!takes_value(opt) && value != NULL) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "--%s takes no value", opt->name);
    }
    *out = opt;
    return apply(args, opt, value, errmsg);
}

static enum cl_cmd find_command(const char *name)
{
    for (int cmd = CL_CMD_NONE + 1; cmd < CL_CMD_COUNT; cmd++) {
        if (strcmp(commands[cmd].name, name) == 0) {
            return (enum cl_cmd)cmd;
        }
    }
    return CL_CMD_NONE;
}

/* Turns the first words into a command; `admin` takes up to two more. */
static int take_word(struct cl_args *args, const char *word, unsigned *admin_words, char *errmsg)
{
    if (args->cmd == CL_CMD_NONE && *admin_words == 0) {
        if (strcmp(word, "admin") == 0) {
            *admin_words = 1;
            return 0;
        }
        args->cmd = find_command(word);
        if (args->cmd == CL_CMD_NONE) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "unknown command \"%s\" (see cairn --help)",
                              word);
        }
        return 0;
    }
    if (*admin_words == 1) {
        if (strcmp(word, "status") == 0) {
            args->cmd = CL_CMD_ADMIN_STATUS;
            *admin_words = 0;
        } else if (strcmp(word, "user") == 0) {
            *admin_words = 2;
        } else {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "unknown command \"admin %s\"", word);
        }
        return 0;
    }
    if (*admin_words == 2) {
        if (strcmp(word, "add") != 0) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "unknown command \"admin user %s\"", word);
        }
        args->cmd = CL_CMD_ADMIN_USER_ADD;
        *admin_words = 0;
        return 0;
    }
    if (args->pos_count == CL_POS_MAX) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "too many arguments");
    }
    args->pos[args->pos_count++] = word;
    return 0;
}

int cl_args_parse(int argc, char **argv, struct cl_args *args, char *errmsg)
{
    const struct option *given[64];
    unsigned given_count = 0, admin_words = 0;
    bool options_done = false;
    int rv;

    defaults(args);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            const struct option *opt = NULL;

            rv = parse_option(argc, argv, &i, args, errmsg, &opt);
            if (rv != 0) {
                return rv;
            }
            if (given_count < CN_ARRAY_SIZE(given)) {
                given[given_count++] = opt;
            }
        } else if ((rv = take_word(args, arg, &admin_words, errmsg)) != 0) {
            return rv;
        }
    }
    if (admin_words != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "admin wants \"status\" or \"user add NAME\"");
    }
    if (args->help_for != CL_CMD_NONE) {
        args->help_for = args->cmd != CL_CMD_NONE ? args->cmd : CL_CMD_HELP;
        args->cmd = CL_CMD_HELP;
        return 0;
    }
    if (args->cmd == CL_CMD_NONE) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "no command given (see cairn --help)");
    }
    if (args->cmd == CL_CMD_HELP) {
        args->help_for = args->pos_count > 0 ? find_command(args->pos[0]) : CL_CMD_HELP;
        if (args->pos_count > 0 && strcmp(args->pos[0], "admin") == 0) {
            args->help_for = CL_CMD_HELP;
        }
        return 0;
    }
    for (unsigned i = 0; i < given_count; i++) {
        if ((given[i]->commands & BIT(args->cmd)) == 0) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s does not take --%s",
                              commands[args->cmd].name, given[i]->name);
        }
    }
    if (args->pos_count < commands[args->cmd].pos_min ||
        args->pos_count > commands[args->cmd].pos_max) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "usage: cairn %s", commands[args->cmd].synopsis);
    }
    if (args->cmd == CL_CMD_TRASH && args->pos_count > 0) {
        const char *action = args->pos[0];
        unsigned want = strcmp(action, "purge") == 0 ? 2 : 1;

        if ((strcmp(action, "list") != 0 && strcmp(action, "empty") != 0 && want == 1) ||
            args->pos_count != want) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "usage: cairn %s",
                              commands[args->cmd].synopsis);
        }
    }
    if (args->chunk_size == 0 || args->timeout_s == 0 || args->timeout_s > 120) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "--chunk-size must be over 0 and --timeout within 1..120");
    }
    if (args->role != NULL && strcmp(args->role, "viewer") != 0 &&
        strcmp(args->role, "editor") != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "--role is viewer or editor, not \"%s\"",
                          args->role);
    }
    return 0;
}

static const char exit_codes[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  error (bad request, I/O, quota, protocol...)\n"
    "  2  usage error (bad command line)\n"
    "  3  not authenticated or not allowed (log in again, or ask for access)\n"
    "  4  not found\n"
    "  5  conflict (already exists, changed since its base version, not empty)\n"
    "  6  server unavailable (cannot connect, timed out, busy; try again)\n";

void cl_usage(enum cl_cmd cmd, void *file)
{
    FILE *out = file;

    if (cmd > CL_CMD_HELP && cmd < CL_CMD_COUNT) {
        fprintf(out, "usage: cairn %s\n\n%s.\n\n", commands[cmd].synopsis, commands[cmd].what);
        fputs(exit_codes, out);
        return;
    }
    fputs("usage: cairn [--endpoint URL] [--token TOKEN] [--root ROOT] [--json] [-q] COMMAND ...\n"
          "\nCommands:\n",
          out);
    for (int c = CL_CMD_HELP; c < CL_CMD_COUNT; c++) {
        fprintf(out, "  %-16s %s\n", commands[c].name, commands[c].what);
    }
    fputs("\nGlobal options:\n"
          "  --endpoint URL   the gateway (else $CAIRN_ENDPOINT, else the login file)\n"
          "  --token TOKEN    the bearer token (else $CAIRN_TOKEN, else the login file)\n"
          "  --root ROOT      work inside an item shared with you (see `cairn shared`)\n"
          "  --json           print the server's JSON instead of text\n"
          "  -q, --quiet      print nothing on success\n"
          "  --progress, --no-progress   force the progress bar of put/get on or off\n"
          "  -h, --help       this help; `cairn COMMAND --help` for one command\n"
          "\nFiles: $XDG_CONFIG_HOME/cairn/config (else ~/.config/cairn/config), written by\n"
          "login with mode 0600; resume records under $XDG_STATE_HOME/cairn (else\n"
          "~/.local/state/cairn).\n\n",
          out);
    fputs(exit_codes, out);
}
