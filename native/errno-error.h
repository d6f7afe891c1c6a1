// An Error for a failed system call: `code` is the errno's name (ENOSPC, EROFS, ...), the
// message its text, as Node's own fs errors have them. Defined in module.c.
#ifndef TIDEMARK_ERRNO_ERROR_H
#define TIDEMARK_ERRNO_ERROR_H
#include <node_api.h>

napi_value errno_error(napi_env env, int err);

#endif
