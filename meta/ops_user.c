/*
 * Users and credentials: accounts, argon2id password hashes, bearer tokens.
 *
 * The happy path:
 *   1. The proposer hashes a password with meta_password_hash() (argon2id,
 *      random salt: neither deterministic nor cheap, so never in apply) and
 *      proposes UserCreate with the hash.
 *   2. On login it verifies with meta_check_password(), then mints a random
 *      bearer token, gives it to the client, and proposes TokenCreate with the
 *      token's BLAKE2b hash and an expiry. The store never holds a token.
 *   3. Each request presents the token; meta_check_token() hashes it, looks
 *      the hash up and compares the expiry with the caller's clock.
 *
 * Only the system (actor 0) creates users and disables them (UserDisable);
 * a user may change their own password and revoke their own tokens. A
 * disabled user fails meta_check_password() and meta_check_token() with
 * CAIRN_EAUTH, so every token stops working at once; enabling the user
 * again revives the tokens that have not expired. admin is recorded for the
 * gateway's admin API; apply itself gives it no rights.
 *
 * Possible failure modes: a taken name or id is CAIRN_EEXIST; a bad name or
 * hash CAIRN_EINVAL; an unknown user or token CAIRN_ENOENT in apply and
 * CAIRN_EAUTH at check time (not saying which half was wrong); an expired
 * token CAIRN_EEXPIRED.
 */
#include <string.h>

#include <sodium.h>

#include "meta_int.h"

int meta_password_hash(const char *password, char *out)
{
    static_assert(crypto_pwhash_STRBYTES <= META_PASSWORD_HASH_MAX, "hash fits");
    if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        return CAIRN_ENOMEM;
    }
    return 0;
}

void meta_token_hash(const void *token, size_t len, uint8_t out[META_TOKEN_HASH_SIZE])
{
    crypto_generichash(out, META_TOKEN_HASH_SIZE, token, len, NULL, 0);
}

static bool user_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > META_USER_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool password_hash_valid(const char *hash)
{
    size_t len = strlen(hash);

    return len > 0 && len < META_PASSWORD_HASH_MAX && strncmp(hash, "$argon2id$", 10) == 0;
}

static void user_key(struct meta_sm *sm, uint64_t id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_USER);
    meta__key_u64(key, id);
}

static void username_key(struct meta_sm *sm, const char *name, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_USERNAME);
    meta__key_bytes(key, name, strlen(name));
}

int meta__op_user_create(struct meta__tx *tx, const Cairn__Cmd__UserCreate *op)
{
    Cairn__Cmd__User user = CAIRN__CMD__USER__INIT;
    struct meta__key key, name_key;
    uint64_t existing;
    int rv;

    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    if (op->user_id == 0 || !user_name_valid(op->name) || !password_hash_valid(op->password_hash)) {
        return CAIRN_EINVAL;
    }
    user_key(tx->sm, op->user_id, &key);
    username_key(tx->sm, op->name, &name_key);
    rv = meta__get_u64(tx->sm, &name_key, &existing);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    user.id = op->user_id;
    user.name = op->name;
    user.password_hash = op->password_hash;
    user.quota_bytes = op->quota_bytes;
    user.created_ms = tx->time_ms;
    user.admin = op->admin;
    user.disabled = op->disabled;
    meta__put_u64(tx, &name_key, op->user_id);
    return meta__put_msg(tx, &key, &user.base);
}

int meta__op_user_set_password(struct meta__tx *tx, const Cairn__Cmd__UserSetPassword *op)
{
    Cairn__Cmd__User *user;
    struct meta__key key;
    char *old_hash;
    int rv;

    if (tx->actor != 0 && tx->actor != op->user_id) {
        return CAIRN_EPERM;
    }
    if (!password_hash_valid(op->password_hash)) {
        return CAIRN_EINVAL;
    }
    user_key(tx->sm, op->user_id, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__user__descriptor, (void **)&user);
    if (rv != 0) {
        return rv;
    }
    old_hash = user->password_hash;
    user->password_hash = op->password_hash;
    rv = meta__put_msg(tx, &key, &user->base);
    user->password_hash = old_hash; /* borrowed: give the record its own back */
    meta_record_free(user);
    return rv;
}

int meta__op_user_disable(struct meta__tx *tx, const Cairn__Cmd__UserDisable *op)
{
    Cairn__Cmd__User *user;
    struct meta__key key;
    int rv;

    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    user_key(tx->sm, op->user_id, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__user__descriptor, (void **)&user);
    if (rv != 0) {
        return rv;
    }
    if (user->disabled != op->disabled) {
        user->disabled = op->disabled;
        rv = meta__put_msg(tx, &key, &user->base);
    }
    meta_record_free(user);
    return rv;
}

int meta__op_user_set_quota(struct meta__tx *tx, const Cairn__Cmd__UserSetQuota *op)
{
    Cairn__Cmd__User *user;
    struct meta__key key;
    int rv;

    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    user_key(tx->sm, op->user_id, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__user__descriptor, (void **)&user);
    if (rv != 0) {
        return rv;
    }
    user->quota_bytes = op->quota_bytes;
    rv = meta__put_msg(tx, &key, &user->base);
    meta_record_free(user);
    return rv;
}

static void token_key(struct meta_sm *sm, const uint8_t *hash, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_TOKEN);
    meta__key_bytes(key, hash, META_TOKEN_HASH_SIZE);
}

int meta__op_token_create(struct meta__tx *tx, const Cairn__Cmd__TokenCreate *op)
{
    Cairn__Cmd__Token token = CAIRN__CMD__TOKEN__INIT;
    struct meta__key key;
    int rv;

    if (tx->actor != 0 && tx->actor != op->user_id) {
        return CAIRN_EPERM;
    }
    if (op->token_hash.len != META_TOKEN_HASH_SIZE || op->expires_ms <= tx->time_ms) {
        return CAIRN_EINVAL;
    }
    user_key(tx->sm, op->user_id, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != 0) {
        return rv;
    }
    token_key(tx->sm, op->token_hash.data, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    token.user_id = op->user_id;
    token.expires_ms = op->expires_ms;
    token.created_ms = tx->time_ms;
    return meta__put_msg(tx, &key, &token.base);
}

int meta__op_token_revoke(struct meta__tx *tx, const Cairn__Cmd__TokenRevoke *op)
{
    Cairn__Cmd__Token *token;
    struct meta__key key;
    int rv;

    if (op->token_hash.len != META_TOKEN_HASH_SIZE) {
        return CAIRN_EINVAL;
    }
    token_key(tx->sm, op->token_hash.data, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__token__descriptor, (void **)&token);
    if (rv != 0) {
        return rv;
    }
    if (tx->actor != 0 && tx->actor != token->user_id) {
        rv = CAIRN_EPERM;
    } else {
        meta__del(tx, &key);
    }
    meta_record_free(token);
    return rv;
}

/* ---- Reads ---- */

int meta_get_user(struct meta_sm *sm, uint64_t user_id, Cairn__Cmd__User **user)
{
    struct meta__key key;

    user_key(sm, user_id, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__user__descriptor, (void **)user);
}

int meta_get_user_by_name(struct meta_sm *sm, const char *name, Cairn__Cmd__User **user)
{
    struct meta__key key;
    uint64_t id;
    int rv;

    if (!user_name_valid(name)) {
        return CAIRN_ENOENT;
    }
    username_key(sm, name, &key);
    rv = meta__get_u64(sm, &key, &id);
    if (rv != 0) {
        return rv;
    }
    return meta_get_user(sm, id, user);
}

int meta_check_password(struct meta_sm *sm,
                        const char *name,
                        const char *password,
                        uint64_t *user_id)
{
    Cairn__Cmd__User *user;
    int rv;

    rv = meta_get_user_by_name(sm, name, &user);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? CAIRN_EAUTH : rv;
    }
    if (user->disabled ||
        crypto_pwhash_str_verify(user->password_hash, password, strlen(password)) != 0) {
        rv = CAIRN_EAUTH;
    } else {
        *user_id = user->id;
    }
    meta_record_free(user);
    return rv;
}

int meta_get_token(struct meta_sm *sm, const uint8_t *hash, Cairn__Cmd__Token **record)
{
    struct meta__key key;

    token_key(sm, hash, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__token__descriptor, (void **)record);
}

int meta_check_token(
    struct meta_sm *sm, const void *token, size_t len, uint64_t now_ms, uint64_t *user_id)
{
    uint8_t hash[META_TOKEN_HASH_SIZE];
    Cairn__Cmd__Token *record;
    Cairn__Cmd__User *user;
    int rv;

    meta_token_hash(token, len, hash);
    rv = meta_get_token(sm, hash, &record);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? CAIRN_EAUTH : rv;
    }
    if (now_ms >= record->expires_ms) {
        rv = CAIRN_EEXPIRED;
    } else if ((rv = meta_get_user(sm, record->user_id, &user)) == 0) {
        if (user->disabled) {
            rv = CAIRN_EAUTH;
        } else {
            *user_id = record->user_id;
        }
        meta_record_free(user);
    } else if (rv == CAIRN_ENOENT) {
        rv = CAIRN_EAUTH; /* a token outliving its user */
    }
    meta_record_free(record);
    return rv;
}
