// A SHA-256 whose updates run on libuv's pool: sha256Open() -> handle; sha256Update(handle, buf)
// -> Promise<void>; sha256Digest(handle) -> Buffer. The caller starts an update only once the
// previous one has settled (server/native/hash-off-loop.ts keeps them in order). Hashing a whole
// archive (hundreds of MiB) on the event loop would take it from reading the account worker.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <node_api.h>
#include "errno-error.h"
#include "sha256.h"

typedef struct {
  void *ctx;
  int busy;
  int finished;
} hasher;

typedef struct {
  hasher *h;
  const void *data;
  size_t len;
  napi_ref keep;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} update_job;

static void finalize_hasher(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  hasher *h = data;
  // An update still running holds a reference to the handle: it cannot be collected meanwhile.
  tm_sha256_free(h->ctx);
  free(h);
}

static hasher *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

napi_value sha256_open(napi_env env, napi_callback_info info) {
  (void)info;
  if (!tm_sha256_available()) { napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module"); return NULL; }
  hasher *h = calloc(1, sizeof *h);
  if (h) h->ctx = tm_sha256_new();
  if (!h || !h->ctx) { free(h); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  napi_value ext;
  napi_create_external(env, h, finalize_hasher, NULL, &ext);
  return ext;
}

static void execute(napi_env env, void *data) {
  (void)env;
  update_job *job = data;
  job->err = tm_sha256_update(job->h->ctx, job->data, job->len);
}

static void complete(napi_env env, napi_status status, void *data) {
  update_job *job = data;
  job->h->busy = 0;
  settle_void(env, job->deferred, status, job->err);
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value sha256_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool is_buffer = false;
  void *base = NULL;
  size_t len = 0;
  hasher *h = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !(h = unwrap(env, argv[0]))
      || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &base, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "sha256Update(handle, buffer)");
    return NULL;
  }
  if (h->busy || h->finished) { napi_throw_error(env, "EBUSY", "sha256Update: the previous update has not settled, or the digest was taken"); return NULL; }
  update_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->h = h;
  job->data = base;
  job->len = len;
  h->busy = 1;
  napi_value pair;
  // The buffer and the handle stay alive until the job is done.
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, argv[0]);
  napi_set_element(env, pair, 1, argv[1]);
  napi_create_reference(env, pair, 1, &job->keep);
  return start_pool_job(env, "tidemark:sha256Update", execute, complete, job, &job->deferred, &job->work);
}

napi_value sha256_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  hasher *h = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !(h = unwrap(env, argv[0]))) {
    napi_throw_type_error(env, NULL, "sha256Digest(handle)");
    return NULL;
  }
  if (h->busy || h->finished) { napi_throw_error(env, "EBUSY", "sha256Digest: an update has not settled, or the digest was taken"); return NULL; }
  unsigned char out[32];
  h->finished = 1;
  int err = tm_sha256_final(h->ctx, out);
  if (err) { napi_throw(env, errno_error(env, err)); return NULL; }
  napi_value result;
  napi_create_buffer_copy(env, 32, out, NULL, &result);
  return result;
}
