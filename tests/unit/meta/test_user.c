/* Users, argon2id passwords and hashed bearer tokens. */
#include "fixture.h"

static void *user_setup(void)
{
    struct fixture *f = fixture_setup();
    Cairn__Cmd__UserCreate op = CAIRN__CMD__USER_CREATE__INIT;
    char hash[META_PASSWORD_HASH_MAX];

    ASSERT_OK(meta_password_hash("correct horse", hash));
    f->actor = 0;
    op.user_id = OWNER;
    op.name = "alice";
    op.password_hash = hash;
    ASSERT_OK(OP(f, user_create, USER_CREATE, &op));
    return f;
}

TEST(user, password_checks, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    uint64_t user_id = 0;

    ASSERT_OK(meta_check_password(f->sm, "alice", "correct horse", &user_id));
    ASSERT_EQ(user_id, OWNER);
    ASSERT_ERR(meta_check_password(f->sm, "alice", "wrong", &user_id), CAIRN_EAUTH);
    ASSERT_ERR(meta_check_password(f->sm, "bob", "correct horse", &user_id), CAIRN_EAUTH);
}

TEST(user, create_errors, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UserCreate op = CAIRN__CMD__USER_CREATE__INIT;
    Cairn__Cmd__User *user;
    char hash[META_PASSWORD_HASH_MAX];

    ASSERT_OK(meta_password_hash("pw", hash));
    op.user_id = OTHER;
    op.name = "alice";
    op.password_hash = hash;
    ASSERT_ERR(OP(f, user_create, USER_CREATE, &op), CAIRN_EEXIST); /* name taken */
    op.name = "bob";
    op.user_id = OWNER;
    ASSERT_ERR(OP(f, user_create, USER_CREATE, &op), CAIRN_EEXIST); /* id taken */
    op.user_id = OTHER;
    op.name = "Bob!";
    ASSERT_ERR(OP(f, user_create, USER_CREATE, &op), CAIRN_EINVAL);
    op.name = "bob";
    op.password_hash = "plaintext";
    ASSERT_ERR(OP(f, user_create, USER_CREATE, &op), CAIRN_EINVAL);
    op.password_hash = hash;
    f->actor = OWNER;
    ASSERT_ERR(OP(f, user_create, USER_CREATE, &op), CAIRN_EPERM); /* only the system */
    f->actor = 0;
    ASSERT_OK(OP(f, user_create, USER_CREATE, &op));
    ASSERT_OK(meta_get_user_by_name(f->sm, "bob", &user));
    ASSERT_EQ(user->id, OTHER);
    meta_record_free(user);
}

TEST(user, set_password, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UserSetPassword op = CAIRN__CMD__USER_SET_PASSWORD__INIT;
    char hash[META_PASSWORD_HASH_MAX];
    uint64_t user_id;

    ASSERT_OK(meta_password_hash("new secret", hash));
    op.user_id = OWNER;
    op.password_hash = hash;
    f->actor = OTHER;
    ASSERT_ERR(OP(f, user_set_password, USER_SET_PASSWORD, &op), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(OP(f, user_set_password, USER_SET_PASSWORD, &op));
    ASSERT_ERR(meta_check_password(f->sm, "alice", "correct horse", &user_id), CAIRN_EAUTH);
    ASSERT_OK(meta_check_password(f->sm, "alice", "new secret", &user_id));
    op.user_id = 999;
    f->actor = 0;
    ASSERT_ERR(OP(f, user_set_password, USER_SET_PASSWORD, &op), CAIRN_ENOENT);
}

TEST(user, tokens_expire_and_revoke, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__TokenCreate create = CAIRN__CMD__TOKEN_CREATE__INIT;
    Cairn__Cmd__TokenRevoke revoke = CAIRN__CMD__TOKEN_REVOKE__INIT;
    const char token[] = "bearer-token-0123456789";
    uint8_t hash[META_TOKEN_HASH_SIZE];
    uint64_t user_id = 0;

    meta_token_hash(token, sizeof(token), hash);
    create.token_hash.data = hash;
    create.token_hash.len = sizeof(hash);
    create.user_id = OWNER;
    create.expires_ms = T0 + 1000;
    f->actor = OWNER;
    ASSERT_OK(OP(f, token_create, TOKEN_CREATE, &create));
    ASSERT_ERR(OP(f, token_create, TOKEN_CREATE, &create), CAIRN_EEXIST);
    ASSERT_OK(meta_check_token(f->sm, token, sizeof(token), T0 + 999, &user_id));
    ASSERT_EQ(user_id, OWNER);
    ASSERT_ERR(meta_check_token(f->sm, token, sizeof(token), T0 + 1000, &user_id), CAIRN_EEXPIRED);
    ASSERT_ERR(meta_check_token(f->sm, "forged", 6, T0, &user_id), CAIRN_EAUTH);
    revoke.token_hash = create.token_hash;
    f->actor = OTHER;
    ASSERT_ERR(OP(f, token_revoke, TOKEN_REVOKE, &revoke), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(OP(f, token_revoke, TOKEN_REVOKE, &revoke));
    ASSERT_ERR(meta_check_token(f->sm, token, sizeof(token), T0, &user_id), CAIRN_EAUTH);
    ASSERT_ERR(OP(f, token_revoke, TOKEN_REVOKE, &revoke), CAIRN_ENOENT);
}

TEST(user, token_errors, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__TokenCreate create = CAIRN__CMD__TOKEN_CREATE__INIT;
    uint8_t hash[META_TOKEN_HASH_SIZE] = {1};

    create.token_hash.data = hash;
    create.token_hash.len = 5;
    create.user_id = OWNER;
    create.expires_ms = T0 + 1000;
    ASSERT_ERR(OP(f, token_create, TOKEN_CREATE, &create), CAIRN_EINVAL);
    create.token_hash.len = sizeof(hash);
    create.expires_ms = T0; /* already expired */
    ASSERT_ERR(OP(f, token_create, TOKEN_CREATE, &create), CAIRN_EINVAL);
    create.expires_ms = T0 + 1000;
    create.user_id = 999;
    ASSERT_ERR(OP(f, token_create, TOKEN_CREATE, &create), CAIRN_ENOENT);
    create.user_id = OWNER;
    f->actor = OTHER;
    ASSERT_ERR(OP(f, token_create, TOKEN_CREATE, &create), CAIRN_EPERM);
}

static int user_disable(struct fixture *f, uint64_t user_id, bool disabled)
{
    Cairn__Cmd__UserDisable op = CAIRN__CMD__USER_DISABLE__INIT;

    op.user_id = user_id;
    op.disabled = disabled;
    return OP(f, user_disable, USER_DISABLE, &op);
}

TEST(user, admin_and_disabled_at_creation, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UserCreate op = CAIRN__CMD__USER_CREATE__INIT;
    Cairn__Cmd__User *user;
    char hash[META_PASSWORD_HASH_MAX];
    uint64_t user_id;

    ASSERT_OK(meta_get_user(f->sm, OWNER, &user));
    ASSERT_FALSE(user->admin);
    ASSERT_FALSE(user->disabled);
    meta_record_free(user);
    ASSERT_OK(meta_password_hash("pw", hash));
    op.user_id = OTHER;
    op.name = "root";
    op.password_hash = hash;
    op.admin = true;
    op.disabled = true;
    ASSERT_OK(OP(f, user_create, USER_CREATE, &op));
    ASSERT_OK(meta_get_user(f->sm, OTHER, &user));
    ASSERT_TRUE(user->admin);
    ASSERT_TRUE(user->disabled);
    meta_record_free(user);
    ASSERT_ERR(meta_check_password(f->sm, "root", "pw", &user_id), CAIRN_EAUTH);
    ASSERT_OK(user_disable(f, OTHER, false));
    ASSERT_OK(meta_check_password(f->sm, "root", "pw", &user_id));
    ASSERT_EQ(user_id, OTHER);
}

TEST(user, disable_stops_tokens_and_passwords, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__TokenCreate create = CAIRN__CMD__TOKEN_CREATE__INIT;
    Cairn__Cmd__Token *record;
    const char token[] = "bearer-token-disable";
    uint8_t hash[META_TOKEN_HASH_SIZE], unknown[META_TOKEN_HASH_SIZE] = {0};
    uint64_t user_id = 0;

    meta_token_hash(token, sizeof(token), hash);
    create.token_hash.data = hash;
    create.token_hash.len = sizeof(hash);
    create.user_id = OWNER;
    create.expires_ms = T0 + 1000;
    ASSERT_OK(OP(f, token_create, TOKEN_CREATE, &create));
    ASSERT_OK(meta_get_token(f->sm, hash, &record));
    ASSERT_EQ(record->user_id, OWNER);
    ASSERT_EQ(record->expires_ms, T0 + 1000);
    ASSERT_EQ(record->created_ms, T0);
    meta_record_free(record);
    ASSERT_ERR(meta_get_token(f->sm, unknown, &record), CAIRN_ENOENT);
    ASSERT_OK(meta_check_token(f->sm, token, sizeof(token), T0, &user_id));
    f->actor = OWNER;
    ASSERT_ERR(user_disable(f, OWNER, true), CAIRN_EPERM); /* the system only */
    f->actor = 0;
    ASSERT_ERR(user_disable(f, 999, true), CAIRN_ENOENT);
    ASSERT_OK(user_disable(f, OWNER, true));
    ASSERT_OK(user_disable(f, OWNER, true)); /* again: no change, no error */
    ASSERT_ERR(meta_check_token(f->sm, token, sizeof(token), T0, &user_id), CAIRN_EAUTH);
    ASSERT_ERR(meta_check_password(f->sm, "alice", "correct horse", &user_id), CAIRN_EAUTH);
    /* An expired token of a disabled user still says expired: no news leaks. */
    ASSERT_ERR(meta_check_token(f->sm, token, sizeof(token), T0 + 1000, &user_id), CAIRN_EEXPIRED);
    ASSERT_OK(user_disable(f, OWNER, false));
    user_id = 0;
    ASSERT_OK(meta_check_token(f->sm, token, sizeof(token), T0, &user_id));
    ASSERT_EQ(user_id, OWNER);
    ASSERT_OK(meta_check_password(f->sm, "alice", "correct horse", &user_id));
}

TEST(user, set_quota, user_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UserSetQuota op = CAIRN__CMD__USER_SET_QUOTA__INIT;
    Cairn__Cmd__User *user;

    op.user_id = OWNER;
    op.quota_bytes = 1u << 30;
    f->actor = OWNER;
    ASSERT_ERR(OP(f, user_set_quota, USER_SET_QUOTA, &op), CAIRN_EPERM); /* not one's own */
    f->actor = 0;
    ASSERT_OK(OP(f, user_set_quota, USER_SET_QUOTA, &op));
    ASSERT_OK(meta_get_user(f->sm, OWNER, &user));
    ASSERT_EQ(user->quota_bytes, 1u << 30);
    meta_record_free(user);
    op.user_id = 999;
    ASSERT_ERR(OP(f, user_set_quota, USER_SET_QUOTA, &op), CAIRN_ENOENT);
}
