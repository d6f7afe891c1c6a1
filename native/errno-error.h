// An Error for a failed system call: `code` is the errno's name (ENOSPC, EROFS, ...), the
// message its text, as Node's own fs errors have them. Defined in module.c, with the helpers
// of the jobs run on libuv's pool.
#ifndef TIDEMARK_ERRNO_ERROR_H
#define TIDEMARK_ERRNO_ERROR_H
#include <node_api.h>

napi_value errno_error(napi_env env, int err);

// Starts `execute` on libuv's pool for `job` and returns the promise `complete` settles
// (through `*deferred`); `*work` is the job's handle, deleted by `complete`.
napi_value start_pool_job(napi_env env, const char *name, napi_async_execute_callback execute,
                          napi_async_complete_callback complete, void *job, napi_deferred *deferred, napi_async_work *work);

// For a job that resolves with nothing: resolves `deferred` when the job ran and `err` is 0,
// else rejects it with the errno's error (EIO when the job did not run).
void settle_void(napi_env env, napi_deferred deferred, napi_status status, int err);

#endif
