// syncfs(fd) -> Promise<void>: flushes the whole filesystem that holds fd (syncfs(2)), on a
// thread of libuv's pool so the event loop keeps running. syncfsSync(fd) does it in place
// (for the account worker, which has nothing else to do meanwhile).
// Node has no syncfs. One syncfs after a run that wrote thousands of files costs a fraction of
// an fsync per file; and the fd is opened before the writes, so a writeback error that
// happened during them is reported (Linux >= 5.8 reports errors to fds opened before them).
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

typedef struct {
  int fd;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} syncfs_job;

static int read_fd(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1
      || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, "syncfs(fd) needs a file descriptor");
    return 0;
  }
  return 1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  syncfs_job *job = data;
  job->err = syncfs(job->fd) == 0 ? 0 : errno;
}

static void complete(napi_env env, napi_status status, void *data) {
  syncfs_job *job = data;
  settle_void(env, job->deferred, status, job->err);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value syncfs_async(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!read_fd(env, info, &fd)) return NULL;
  syncfs_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->fd = fd;
  return start_pool_job(env, "tidemark:syncfs", execute, complete, job, &job->deferred, &job->work);
}

napi_value syncfs_sync(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!read_fd(env, info, &fd)) return NULL;
  if (syncfs(fd) != 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  return NULL;
}
