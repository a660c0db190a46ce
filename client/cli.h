/*
 * The cairn program's shared state, between main.c (setup, small commands)
 * and transfer_cmd.c (put and get with progress and resume).
 */
#ifndef CLI_H
#define CLI_H

#include "cl_int.h"

struct cli {
    struct cl_args args;
    struct cairn_client *client;
    char endpoint[CAIRN_URL_SIZE];
    char token[CAIRN_TOKEN_SIZE];
    char config_dir[CAIRN_PATH_SIZE];
    char state_dir[CAIRN_PATH_SIZE];
    struct cl_config config; /* the login file, zeroes when absent */
    bool usage;              /* the failure was the command line's: exit 2 */
};

/* Prints "cairn: what: message (CAIRN_E...)" on stderr and returns rv. */
int cli_fail(struct cli *cli, int rv, const char *what);
int cli_put(struct cli *cli);
int cli_get(struct cli *cli);

#endif /* CLI_H */
