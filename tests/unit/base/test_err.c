/* Error table: names and sentences, errno translation, errmsg formatting. */
#include <errno.h>

#include "test.h"

TEST(err, names_and_text, NULL, NULL)
{
    ASSERT_STR_EQ(cairn_errname(CAIRN_EIO), "CAIRN_EIO");
    ASSERT_STR_EQ(cairn_strerror(CAIRN_ECORRUPT), "stored data failed its checksum");
    ASSERT_STR_EQ(cairn_errname(0), "CAIRN_OK");
    ASSERT_STR_EQ(cairn_errname(-9999), "CAIRN_EUNKNOWN");
    ASSERT_STR_EQ(cairn_strerror(12345), "unknown error");
}

TEST(err, numbers_are_fixed, NULL, NULL)
{
    /* These travel on the wire: renumbering one breaks mixed-version clusters. */
    ASSERT_EQ(CAIRN_ENOMEM, -1);
    ASSERT_EQ(CAIRN_ECORRUPT, -3);
    ASSERT_EQ(CAIRN_ECONFLICT, -11);
    ASSERT_EQ(CAIRN_EINTERNAL, -29);
}

TEST(err, every_code_has_distinct_name, NULL, NULL)
{
    for (int a = 1; a <= 29; a++) {
        ASSERT_TRUE(strcmp(cairn_errname(-a), "CAIRN_EUNKNOWN") != 0);
        for (int b = a + 1; b <= 29; b++) {
            ASSERT_TRUE(strcmp(cairn_errname(-a), cairn_errname(-b)) != 0);
        }
    }
}

TEST(err, from_errno, NULL, NULL)
{
    ASSERT_ERR(cn_err_from_errno(ENOENT), CAIRN_ENOENT);
    ASSERT_ERR(cn_err_from_errno(ENOSPC), CAIRN_ENOSPACE);
    ASSERT_ERR(cn_err_from_errno(EIO), CAIRN_EIO);
    ASSERT_ERR(cn_err_from_errno(EBADF), CAIRN_EIO);
    ASSERT_EQ(cn_err_from_errno(0), 0);
}

TEST(err, errmsgf_formats_and_returns, NULL, NULL)
{
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_ERR(cn_errmsgf(errmsg, CAIRN_EIO, "open(%s): %s", "/x", "gone"), CAIRN_EIO);
    ASSERT_STR_EQ(errmsg, "open(/x): gone");
    ASSERT_ERR(cn_errmsgf(NULL, CAIRN_EINVAL, "ignored"), CAIRN_EINVAL);
}
