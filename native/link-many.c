// linkMany(joined, count) -> Promise<Int32Array>: link(2) of each pair, in order, as one
// job on a thread of libuv's pool; the array holds 0 or the errno of each pair. An incremental
// backup makes one hard link per unchanged file (tens of thousands): made in batches off the
// event loop, they overlap with reading the account worker's stream instead of queueing behind it.
// link(2) never follows a symbolic link at `existing`: it links the symlink itself. The pairs
// come as one string (existing0 NUL created0 NUL existing1 ...): one conversion instead of two
// array lookups and two string conversions per pair on the event loop.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

typedef struct {
  uint32_t count;
  char *text;   // the paths as passed, NUL-terminated each
  char **paths; // into text: existing0, created0, existing1, created1, ...
  int32_t *errs;
  napi_deferred deferred;
  napi_async_work work;
} link_job;

static void free_job(link_job *job) {
  free(job->text);
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

napi_value link_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t0 = napi_undefined;
  uint32_t n = 0;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_typeof(env, argv[0], &t0) != napi_ok || t0 != napi_string
      || napi_get_value_uint32(env, argv[1], &n) != napi_ok
      || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "linkMany(joined, count): the paths joined by NUL, and how many pairs");
    return NULL;
  }
  link_job *job = calloc(1, sizeof *job);
  if (job) {
    job->count = n;
    job->text = malloc(len + 1);
    job->paths = calloc(2 * (size_t)n + 1, sizeof *job->paths);
    job->errs = calloc((size_t)n + 1, sizeof *job->errs);
  }
  if (!job || !job->text || !job->paths || !job->errs) {
    if (job) free_job(job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], job->text, len + 1, &len);
  // existing0 NUL created0 NUL existing1 ...: exactly 2n non-empty parts.
  uint32_t parts = 0;
  size_t begin = 0;
  for (size_t i = 0; n > 0 && i <= len; i++) {
    if (i < len && job->text[i] != '\0') continue;
    if (i == begin || parts == 2 * n) { parts = UINT32_MAX; break; }
    job->paths[parts++] = job->text + begin;
    begin = i + 1;
  }
  if (parts != 2 * n) {
    free_job(job);
    napi_throw_type_error(env, NULL, "linkMany: every path must be a non-empty string without NUL");
    return NULL;
  }
  return start_pool_job(env, "tidemark:linkMany", execute, complete, job, &job->deferred, &job->work);
}
