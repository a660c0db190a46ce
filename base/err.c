/*
 * Error names and sentences, generated from the one table in cairn_err.h,
 * and the translation of errno values into it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cn.h"

const char *cairn_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define X(NAME, N, TEXT) \
    case CAIRN_E##NAME:  \
        return TEXT;
        CAIRN_ERR_MAP(X)
#undef X
    default:
        return "unknown error";
    }
}

const char *cairn_errname(int rv)
{
    switch (rv) {
    case 0:
        return "CAIRN_OK";
#define X(NAME, N, TEXT) \
    case CAIRN_E##NAME:  \
        return "CAIRN_E" #NAME;
        CAIRN_ERR_MAP(X)
#undef X
    default:
        return "CAIRN_EUNKNOWN";
    }
}

int cn_err_from_errno(int err)
{
    switch (err) {
    case 0:
        return 0;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case ENOENT:
        return CAIRN_ENOENT;
    case EEXIST:
        return CAIRN_EEXIST;
    case ENOSPC:
    case EDQUOT:
        return CAIRN_ENOSPACE;
    case EAGAIN:
        return CAIRN_EBUSY;
    case EINVAL:
        return CAIRN_EINVAL;
    case EACCES:
    case EPERM:
        return CAIRN_EPERM;
    case ENOTDIR:
        return CAIRN_ENOTDIR;
    case EISDIR:
        return CAIRN_EISDIR;
    case ENOTEMPTY:
        return CAIRN_ENOTEMPTY;
    case ETIMEDOUT:
        return CAIRN_ETIMEOUT;
    case ECANCELED:
        return CAIRN_ECANCELED;
    case EFBIG:
    case E2BIG:
        return CAIRN_ETOOBIG;
    default:
        return CAIRN_EIO;
    }
}

int cn_errmsgf(char *errmsg, int rv, const char *fmt, ...)
{
    va_list args;

    if (errmsg != NULL) {
        va_start(args, fmt);
        vsnprintf(errmsg, CN_ERRMSG_SIZE, fmt, args);
        va_end(args);
    }
    return rv;
}
