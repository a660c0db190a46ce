/*
 * Keys: the key file, the chunk id (HMAC-SHA-256 under the dedup key) and the
 * per-chunk encryption key (keyed BLAKE2b over the key version and the chunk id).
 *
 * The happy path for loading: open the file, check that only its owner may
 * read it, read at most KEY_FILE_SIZE_MAX bytes, parse "version", "master" and
 * "dedup".
 *
 * Possible failure modes:
 * - the file is readable by group or others: CAIRN_EPERM, so a key that may
 *   have leaked is never used silently;
 * - missing, unreadable, too large, or with a bad value: CAIRN_ENOENT,
 *   CAIRN_EIO, CAIRN_ETOOBIG or CAIRN_EINVAL, with the reason in errmsg.
 * Why HMAC-SHA-256 for the chunk id rather than keyed BLAKE2b: docs/storage.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stor_int.h"

#define KEY_FILE_SIZE_MAX 4096

static int read_key_file(const char *path, char *text, char *errmsg)
{
    struct stat st;
    ssize_t n;
    int fd;
    int rv = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv = cn_err_from_errno(errno);
        return cn_errmsgf(errmsg, rv, "open(%s): %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rv = cn_errmsgf(errmsg, CAIRN_EIO, "fstat(%s): %s", path, strerror(errno));
        goto err_close;
    }
    if ((st.st_mode & 077) != 0) {
        rv = cn_errmsgf(errmsg, CAIRN_EPERM, "%s: group or others may access it (chmod 600)", path);
        goto err_close;
    }
    n = read(fd, text, KEY_FILE_SIZE_MAX);
    if (n < 0) {
        rv = cn_errmsgf(errmsg, CAIRN_EIO, "read(%s): %s", path, strerror(errno));
        goto err_close;
    }
    if (n == KEY_FILE_SIZE_MAX) {
        rv = cn_errmsgf(errmsg, CAIRN_ETOOBIG, "%s: over %d bytes", path, KEY_FILE_SIZE_MAX);
        goto err_close;
    }
    text[n] = '\0';
err_close:
    close(fd);
    return rv;
}

static int get_hex_key(struct cn_config *config, const char *name, uint8_t *key, char *errmsg)
{
    const char *hex = cn_config_get(config, "", name);

    if (hex == NULL || strlen(hex) != 2 * STOR_KEY_SIZE ||
        cn_hex_decode(hex, key, STOR_KEY_SIZE) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: \"%s\" must be %d hex digits", config->path,
                          name, 2 * STOR_KEY_SIZE);
    }
    return 0;
}

int stor_keys_load(struct stor_keys *keys, const char *path, char *errmsg)
{
    char text[KEY_FILE_SIZE_MAX + 1];
    struct cn_config config;
    uint64_t version = 0;
    int rv;

    rv = read_key_file(path, text, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = cn_config_parse(&config, path, text, errmsg);
    if (rv != 0) {
        goto err_wipe;
    }
    rv = cn_config_get_u64(&config, "", "version", &version, errmsg);
    if (rv == 0 && (version == 0 || version > UINT32_MAX)) {
        rv = cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: \"version\" must be 1..%u", path, UINT32_MAX);
    }
    if (rv == 0) {
        rv = get_hex_key(&config, "master", keys->master_key, errmsg);
    }
    if (rv == 0) {
        rv = get_hex_key(&config, "dedup", keys->dedup_key, errmsg);
    }
    keys->key_version = (uint32_t)version;
    cn_config_close(&config);
err_wipe:
    sodium_memzero(text, sizeof(text));
    if (rv != 0) {
        sodium_memzero(keys, sizeof(*keys));
    }
    return rv;
}

int stor_chunk_id(const struct stor_keys *keys, const uint8_t *data, size_t len, struct stor_id *id)
{
    static const uint8_t empty[1] = {0};
    unsigned int id_len = 0;

    CN_ASSERT(data != NULL || len == 0);
    cn_clear_upper_vector_state();
    if (HMAC(EVP_sha256(), keys->dedup_key, STOR_KEY_SIZE, len > 0 ? data : empty, len, id->bytes,
             &id_len) == NULL) {
        return CAIRN_EINTERNAL;
    }
    CN_ASSERT(id_len == STOR_ID_SIZE);
    return 0;
}

void stor__chunk_key(const struct stor_keys *keys, const struct stor_id *id, uint8_t key[32])
{
    static const char label[] = "cairn chunk key v1";
    crypto_generichash_state state;
    uint8_t version[4];

    cn_put_u32(version, keys->key_version);
    crypto_generichash_init(&state, keys->master_key, STOR_KEY_SIZE, 32);
    crypto_generichash_update(&state, (const uint8_t *)label, sizeof(label));
    crypto_generichash_update(&state, version, sizeof(version));
    crypto_generichash_update(&state, id->bytes, STOR_ID_SIZE);
    crypto_generichash_final(&state, key, 32);
}
