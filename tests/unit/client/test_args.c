/* The command line: commands, arguments, options before and after the
 * command, per-command options, and the usage errors (exit 2 in the CLI). */
#include "cl_int.h"
#include "test.h"

#define ARGV_MAX 16

/* Parses a space-separated command line (no quoting needed in these tests). */
static int parse(const char *line, struct cl_args *args, char *errmsg)
{
    static char buf[512];
    static char *argv[ARGV_MAX];
    int argc = 0;

    snprintf(buf, sizeof(buf), "cairn %s", line);
    for (char *tok = strtok(buf, " "); tok != NULL && argc < ARGV_MAX; tok = strtok(NULL, " ")) {
        argv[argc++] = tok;
    }
    return cl_args_parse(argc, argv, args, errmsg);
}

TEST(args, commands_and_arguments, NULL, NULL)
{
    struct cl_args args;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(parse("ls", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_LS);
    ASSERT_EQ(args.pos_count, 0);
    ASSERT_OK(parse("put a.txt Docs/", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_PUT);
    ASSERT_EQ(args.pos_count, 2);
    ASSERT_STR_EQ(args.pos[0], "a.txt");
    ASSERT_STR_EQ(args.pos[1], "Docs/");
    ASSERT_OK(parse("get Docs/a.txt -", &args, errmsg));
    ASSERT_STR_EQ(args.pos[1], "-");
    ASSERT_OK(parse("admin status", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_ADMIN_STATUS);
    ASSERT_OK(parse("admin user add bob --quota 10GiB --admin --password-stdin", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_ADMIN_USER_ADD);
    ASSERT_STR_EQ(args.pos[0], "bob");
    ASSERT_TRUE(args.quota_bytes == 10ull << 30);
    ASSERT_TRUE(args.admin);
    ASSERT_TRUE(args.password_stdin);
    ASSERT_STR_EQ(cl_cmd_name(CL_CMD_ADMIN_USER_ADD), "admin user add");
}

TEST(args, options_anywhere, NULL, NULL)
{
    struct cl_args args;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(
        parse("--endpoint http://h:1 --token=t get -q x --version 3 --no-progress", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_GET);
    ASSERT_STR_EQ(args.endpoint, "http://h:1");
    ASSERT_STR_EQ(args.token, "t");
    ASSERT_TRUE(args.quiet);
    ASSERT_TRUE(args.has_version);
    ASSERT_EQ(args.version, 3);
    ASSERT_EQ(args.progress, 0);
    ASSERT_STR_EQ(args.pos[0], "x");
    /* "--" ends options: a file named "-p". */
    ASSERT_OK(parse("mkdir -- -p", &args, errmsg));
    ASSERT_FALSE(args.parents);
    ASSERT_STR_EQ(args.pos[0], "-p");
    ASSERT_OK(parse("trash purge 42", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_TRASH);
    ASSERT_OK(parse("trash empty", &args, errmsg));
    ASSERT_OK(parse("trash", &args, errmsg));
    ASSERT_OK(parse("mkdir -p a/b/c", &args, errmsg));
    ASSERT_TRUE(args.parents);
}

TEST(args, defaults, NULL, NULL)
{
    struct cl_args args;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(parse("watch", &args, errmsg));
    ASSERT_EQ(args.timeout_s, 30);
    ASSERT_EQ(args.count, 0);
    ASSERT_EQ(args.progress, -1);
    ASSERT_OK(parse("put f", &args, errmsg));
    ASSERT_EQ(args.chunk_size, 8 << 20);
    ASSERT_EQ(args.tus_min, 8 << 20);
    ASSERT_OK(parse("put f --chunk-size 1MiB --tus-min 0", &args, errmsg));
    ASSERT_EQ(args.chunk_size, 1 << 20);
    ASSERT_EQ(args.tus_min, 0);
    ASSERT_OK(parse("watch --timeout=120 -n 5 --cursor c7", &args, errmsg));
    ASSERT_EQ(args.timeout_s, 120);
    ASSERT_EQ(args.count, 5);
    ASSERT_STR_EQ(args.cursor, "c7");
}

TEST(args, help, NULL, NULL)
{
    struct cl_args args;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(parse("--help", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_HELP);
    ASSERT_EQ(args.help_for, CL_CMD_HELP);
    ASSERT_OK(parse("put -h", &args, errmsg));
    ASSERT_EQ(args.cmd, CL_CMD_HELP);
    ASSERT_EQ(args.help_for, CL_CMD_PUT);
    ASSERT_OK(parse("help share", &args, errmsg));
    ASSERT_EQ(args.help_for, CL_CMD_SHARE);
    /* Help wins over what else is wrong on the line. */
    ASSERT_OK(parse("stat --help", &args, errmsg));
    ASSERT_EQ(args.help_for, CL_CMD_STAT);
}

TEST(args, usage_errors, NULL, NULL)
{
    static const char *bad[][2] = {
        {"", "no command"},
        {"frob", "unknown command \"frob\""},
        {"admin", "admin wants"},
        {"admin frob", "unknown command \"admin frob\""},
        {"admin user del x", "unknown command \"admin user del\""},
        {"ls --frob", "unknown option --frob"},
        {"ls -z", "unknown option -z"},
        {"stat", "usage: cairn stat PATH"},
        {"stat a b", "usage: cairn stat PATH"},
        {"mv a", "usage: cairn mv FROM TO"},
        {"get a b c d e", "too many arguments"},
        {"mkdir --version 3 x", "mkdir does not take --version"},
        {"ls -p", "ls does not take --parents"},
        {"get x --version", "--version wants a value"},
        {"get x --version three", "--version wants a number"},
        {"get x --version=-1", "--version wants a number"},
        {"put x --chunk-size lots", "--chunk-size wants a size"},
        {"put x --chunk-size 0", "--chunk-size must be over 0"},
        {"watch --timeout 0", "--timeout within 1..120"},
        {"watch --timeout 121", "--timeout within 1..120"},
        {"share x bob --role owner", "--role is viewer or editor"},
        {"ls --json=yes", "--json takes no value"},
        {"trash purge", "usage: cairn trash"},
        {"trash empty now", "usage: cairn trash"},
        {"trash burn", "usage: cairn trash"},
    };
    struct cl_args args;
    char errmsg[CN_ERRMSG_SIZE];

    for (size_t i = 0; i < CN_ARRAY_SIZE(bad); i++) {
        int rv = parse(bad[i][0], &args, errmsg);

        if (rv != CAIRN_EINVAL || strstr(errmsg, bad[i][1]) == NULL) {
            cn_test_fail(__FILE__, __LINE__, "\"%s\": got %s \"%s\", want \"%s\"", bad[i][0],
                         cairn_errname(rv), rv != 0 ? errmsg : "", bad[i][1]);
        }
    }
}

TEST(args, usage_text, NULL, NULL)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    cl_usage(CL_CMD_HELP, out);
    fclose(out);
    /* Every command and every exit code is in the help. */
    for (int cmd = CL_CMD_HELP; cmd < CL_CMD_COUNT; cmd++) {
        ASSERT_TRUE(strstr(text, cl_cmd_name((enum cl_cmd)cmd)) != NULL);
    }
    for (int code = 0; code <= 6; code++) {
        char line[8];

        snprintf(line, sizeof(line), "  %d  ", code);
        ASSERT_TRUE(strstr(text, line) != NULL);
    }
    free(text);
}
