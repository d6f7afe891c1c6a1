// linkMany(existing[], created[]) -> Promise<Int32Array>: link(2) of each pair, in order, as one
// job on a thread of libuv's pool; the array holds 0 or the errno of each pair. An incremental
// backup makes one hard link per unchanged file (tens of thousands): made in batches off the
// event loop, they overlap with reading the account worker's stream instead of queueing behind it.
// link(2) never follows a symbolic link at `existing`: it links the symlink itself.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

typedef struct {
  uint32_t count;
  char **paths; // existing0, created0, existing1, created1, ...
  int32_t *errs;
  napi_deferred deferred;
  napi_async_work work;
} link_job;

static void free_job(link_job *job) {
  if (job->paths) for (uint32_t i = 0; i < 2 * job->count; i++) free(job->paths[i]);
  free(job->paths);
  free(job->errs);
  free(job);
}

static void execute(napi_env env, void *data) {
  (void)env;
  link_job *job = data;
  for (uint32_t i = 0; i < job->count; i++) job->errs[i] = link(job->paths[2 * i], job->paths[2 * i + 1]) == 0 ? 0 : errno;
}

static void complete(napi_env env, napi_status status, void *data) {
  link_job *job = data;
  napi_value ab, arr;
  void *raw = NULL;
  if (status == napi_ok && napi_create_arraybuffer(env, job->count * sizeof(int32_t), &raw, &ab) == napi_ok) {
    if (job->count) memcpy(raw, job->errs, job->count * sizeof(int32_t));
    napi_create_typedarray(env, napi_int32_array, job->count, ab, 0, &arr);
    napi_resolve_deferred(env, job->deferred, arr);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "linkMany: the job did not run", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static char *string_at(napi_env env, napi_value array, uint32_t i) {
  napi_value v;
  size_t len = 0;
  if (napi_get_element(env, array, i, &v) != napi_ok || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len == 0) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { free(s); return NULL; } // a NUL inside
  return s;
}

napi_value link_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool a = false, b = false;
  uint32_t n = 0, m = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_is_array(env, argv[0], &a) != napi_ok || !a || napi_is_array(env, argv[1], &b) != napi_ok || !b
      || napi_get_array_length(env, argv[0], &n) != napi_ok || napi_get_array_length(env, argv[1], &m) != napi_ok || n != m) {
    napi_throw_type_error(env, NULL, "linkMany(existing[], created[]) with arrays of the same length");
    return NULL;
  }
  link_job *job = calloc(1, sizeof *job);
  if (job) {
    job->count = n;
    job->paths = calloc(2 * (size_t)n + 1, sizeof *job->paths);
    job->errs = calloc((size_t)n + 1, sizeof *job->errs);
  }
  if (!job || !job->paths || !job->errs) {
    if (job) free_job(job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    job->paths[2 * i] = string_at(env, argv[0], i);
    job->paths[2 * i + 1] = string_at(env, argv[1], i);
    if (!job->paths[2 * i] || !job->paths[2 * i + 1]) {
      free_job(job);
      napi_throw_type_error(env, NULL, "linkMany: every path must be a non-empty string without NUL");
      return NULL;
    }
  }
  return start_pool_job(env, "tidemark:linkMany", execute, complete, job, &job->deferred, &job->work);
}
