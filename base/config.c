/*
 * Config files: INI-style, described in docs/config.md.
 *
 *   # comment
 *   [node]
 *   listen = 127.0.0.1:7000
 *   data_dir = /var/lib/cairn/hot1 hot
 *
 * Parsing keeps every entry with its line number; getters mark entries used so
 * that cn_config_check_unused() can name a misspelt key instead of ignoring it.
 * Possible failure modes: a line that is neither a section, a key = value nor a
 * comment; an unterminated section header; a value of the wrong type. Each is
 * reported as "path:line: why".
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn.h"

#define CONFIG_FILE_SIZE_MAX (1u << 20)

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    *end = '\0';
    return s;
}

static void add_entry(struct cn_config *config,
                      const char *section,
                      const char *key,
                      const char *value,
                      unsigned line)
{
    struct cn_config_entry *entry;

    config->entries =
        cn_xrealloc(config->entries, (config->entry_count + 1) * sizeof(*config->entries));
    entry = &config->entries[config->entry_count++];
    entry->section = cn_xstrdup(section);
    entry->key = cn_xstrdup(key);
    entry->value = cn_xstrdup(value);
    entry->line = line;
    entry->used = false;
}

static int parse_line(
    struct cn_config *config, char *text, char **section, unsigned line, char *errmsg)
{
    char *eq;
    char *key;

    text = trim(text);
    if (text[0] == '\0' || text[0] == '#' || text[0] == ';') {
        return 0;
    }
    if (text[0] == '[') {
        char *end = strchr(text, ']');
        if (end == NULL || trim(end + 1)[0] != '\0') {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: bad section header", config->path,
                              line);
        }
        *end = '\0';
        free(*section);
        *section = cn_xstrdup(trim(text + 1));
        return 0;
    }
    eq = strchr(text, '=');
    if (eq == NULL) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: expected key = value", config->path, line);
    }
    *eq = '\0';
    key = trim(text);
    if (key[0] == '\0') {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: empty key", config->path, line);
    }
    add_entry(config, *section, key, trim(eq + 1), line);
    return 0;
}

int cn_config_parse(struct cn_config *config, const char *path, const char *text, char *errmsg)
{
    char *copy = cn_xstrdup(text);
    char *section = cn_xstrdup("");
    char *cursor = copy;
    unsigned line = 0;
    int rv = 0;

    memset(config, 0, sizeof(*config));
    snprintf(config->path, sizeof(config->path), "%s", path);
    while (cursor != NULL && rv == 0) {
        char *next = strchr(cursor, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        rv = parse_line(config, cursor, &section, ++line, errmsg);
        cursor = next;
    }
    free(section);
    free(copy);
    if (rv != 0) {
        cn_config_close(config);
    }
    return rv;
}

int cn_config_load(struct cn_config *config, const char *path, char *errmsg)
{
    FILE *file = fopen(path, "r");
    struct cn_buf text;
    char chunk[4096];
    size_t n;
    int rv;

    if (file == NULL) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "open(%s): %s", path, strerror(errno));
    }
    cn_buf_init(&text);
    while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0) {
        if (text.len + n > CONFIG_FILE_SIZE_MAX) {
            rv = cn_errmsgf(errmsg, CAIRN_ETOOBIG, "%s: larger than %u bytes", path,
                            CONFIG_FILE_SIZE_MAX);
            goto err_close;
        }
        rv = cn_buf_append(&text, chunk, n);
        if (rv != 0) {
            goto err_close;
        }
    }
    if (ferror(file)) {
        rv = cn_errmsgf(errmsg, CAIRN_EIO, "read(%s): %s", path, strerror(errno));
        goto err_close;
    }
    rv = cn_buf_append(&text, "", 1);
    if (rv == 0) {
        rv = cn_config_parse(config, path, (const char *)text.base, errmsg);
    }
err_close:
    cn_buf_close(&text);
    fclose(file);
    return rv;
}

void cn_config_close(struct cn_config *config)
{
    for (size_t i = 0; i < config->entry_count; i++) {
        free(config->entries[i].section);
        free(config->entries[i].key);
        free(config->entries[i].value);
    }
    free(config->entries);
    config->entries = NULL;
    config->entry_count = 0;
}

static struct cn_config_entry *find(struct cn_config *config, const char *section, const char *key)
{
    struct cn_config_entry *found = NULL;

    for (size_t i = 0; i < config->entry_count; i++) {
        struct cn_config_entry *entry = &config->entries[i];
        if (strcmp(entry->section, section) == 0 && strcmp(entry->key, key) == 0) {
            entry->used = true;
            found = entry; /* The last one wins, as in most INI readers. */
        }
    }
    return found;
}

const char *cn_config_get(struct cn_config *config, const char *section, const char *key)
{
    struct cn_config_entry *entry = find(config, section, key);

    return entry != NULL ? entry->value : NULL;
}

int cn_config_get_str(struct cn_config *config,
                      const char *section,
                      const char *key,
                      const char **value,
                      char *errmsg)
{
    const char *text = cn_config_get(config, section, key);

    (void)errmsg;
    if (text != NULL) {
        *value = text;
    }
    return 0;
}

int cn_config_get_u64(
    struct cn_config *config, const char *section, const char *key, uint64_t *value, char *errmsg)
{
    struct cn_config_entry *entry = find(config, section, key);

    if (entry == NULL) {
        return 0;
    }
    if (cn_parse_size(entry->value, value) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: %s: not a number: %s", config->path,
                          entry->line, key, entry->value);
    }
    return 0;
}

int cn_config_get_bool(
    struct cn_config *config, const char *section, const char *key, bool *value, char *errmsg)
{
    struct cn_config_entry *entry = find(config, section, key);
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    if (entry == NULL) {
        return 0;
    }
    for (size_t i = 0; i < CN_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(entry->value, yes[i]) == 0 || strcasecmp(entry->value, no[i]) == 0) {
            *value = strcasecmp(entry->value, yes[i]) == 0;
            return 0;
        }
    }
    return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: %s: expected true or false, got %s",
                      config->path, entry->line, key, entry->value);
}

int cn_config_check_unused(const struct cn_config *config, char *errmsg)
{
    for (size_t i = 0; i < config->entry_count; i++) {
        const struct cn_config_entry *entry = &config->entries[i];
        if (!entry->used) {
            return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s:%u: unknown key %s%s%s", config->path,
                              entry->line, entry->section, entry->section[0] ? "." : "",
                              entry->key);
        }
    }
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

/* Parses "<number><optional spaces><unit>" where unit is from units. */
static int parse_with_units(const char *text,
                            const struct unit *units,
                            size_t unit_count,
                            uint64_t *out)
{
    char *end;
    double number;

    errno = 0;
    if (!isdigit((unsigned char)text[0])) {
        return CAIRN_EINVAL;
    }
    number = strtod(text, &end);
    if (errno != 0 || !isfinite(number)) {
        return CAIRN_EINVAL;
    }
    while (isspace((unsigned char)*end)) {
        end++;
    }
    for (size_t i = 0; i < unit_count; i++) {
        if (strcmp(end, units[i].name) == 0) {
            double scaled = number * (double)units[i].factor;
            if (scaled >= 18446744073709551616.0) {
                return CAIRN_EINVAL;
            }
            *out = (uint64_t)scaled;
            return 0;
        }
    }
    return CAIRN_EINVAL;
}

int cn_parse_size(const char *text, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
        {"K", 1ull << 10},
        {"M", 1ull << 20},
        {"G", 1ull << 30},
        {"T", 1ull << 40},
    };

    return parse_with_units(text, units, CN_ARRAY_SIZE(units), bytes);
}

int cn_parse_duration_ms(const char *text, uint64_t *ms)
{
    static const struct unit units[] = {
        {"", 1},          {"ms", 1},          {"s", 1000},
        {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24ull * 3600 * 1000},
    };

    return parse_with_units(text, units, CN_ARRAY_SIZE(units), ms);
}
