// linkMany(joined, count) -> Promise<Int32Array>: link(2) of each pair, in order, as one
// job on a thread of libuv's pool; the array holds 0 or the errno of each pair. An incremental
// backup makes one hard link per unchanged file (tens of thousands): made in batches off the
// event loop, they overlap with reading the account worker's stream instead of queueing behind it.
// link(2) never follows a symbolic link at `existing`: it links the symlink itself. The pairs
// come as one string (existing0 NUL created0 NUL existing1 ...): one conversion instead of two
// array lookups and two string conversions per pair on the event loop.
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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

// linkBlobs(from, to, blobs) -> Promise<Int32Array>: for each blob number n (a Uint32Array),
// link(2) of from/XXXX/NNNNNNNN to to/XXXX/NNNNNNNN (the incremental blob layout: n / 1024
// and n in lowercase hex, at least 4 and 8 digits), as one job on libuv's pool. An unchanged
// file then costs the event loop one number in an array instead of two paths.
typedef struct {
  uint32_t count;
  char *from;
  char *to;
  uint32_t *blobs;
  int32_t *errs;
  napi_deferred deferred;
  napi_async_work work;
} blobs_job;

static void free_blobs_job(blobs_job *job) {
  free(job->from);
  free(job->to);
  free(job->blobs);
  free(job->errs);
  free(job);
}

static void execute_blobs(napi_env env, void *data) {
  (void)env;
  blobs_job *job = data;
  size_t from_len = strlen(job->from), to_len = strlen(job->to);
  char *a = malloc(from_len + 32), *b = malloc(to_len + 32);
  if (!a || !b) {
    for (uint32_t i = 0; i < job->count; i++) job->errs[i] = ENOMEM;
    free(a);
    free(b);
    return;
  }
  for (uint32_t i = 0; i < job->count; i++) {
    uint32_t n = job->blobs[i];
    snprintf(a, from_len + 32, "%s/%04x/%08x", job->from, n / 1024, n);
    snprintf(b, to_len + 32, "%s/%04x/%08x", job->to, n / 1024, n);
    job->errs[i] = link(a, b) == 0 ? 0 : errno;
  }
  free(a);
  free(b);
}

static void complete_blobs(napi_env env, napi_status status, void *data) {
  blobs_job *job = data;
  napi_value ab, arr;
  void *raw = NULL;
  if (status == napi_ok && napi_create_arraybuffer(env, job->count * sizeof(int32_t), &raw, &ab) == napi_ok) {
    if (job->count) memcpy(raw, job->errs, job->count * sizeof(int32_t));
    napi_create_typedarray(env, napi_int32_array, job->count, ab, 0, &arr);
    napi_resolve_deferred(env, job->deferred, arr);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "linkBlobs: the job did not run", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_async_work(env, job->work);
  free_blobs_job(job);
}

/** A copy of a non-empty JS string without NUL, or NULL. */
static char *copy_path(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len == 0) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { free(s); return NULL; }
  return s;
}

napi_value link_blobs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool typed = false;
  napi_typedarray_type type;
  size_t count = 0;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3
      || napi_is_typedarray(env, argv[2], &typed) != napi_ok || !typed
      || napi_get_typedarray_info(env, argv[2], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "linkBlobs(from, to, blobs): two folders and a Uint32Array of blob numbers");
    return NULL;
  }
  blobs_job *job = calloc(1, sizeof *job);
  if (job) {
    job->count = (uint32_t)count;
    job->from = copy_path(env, argv[0]);
    job->to = copy_path(env, argv[1]);
    job->blobs = malloc((count + 1) * sizeof *job->blobs);
    job->errs = calloc(count + 1, sizeof *job->errs);
  }
  if (!job || !job->from || !job->to || !job->blobs || !job->errs) {
    bool bad_path = job && job->blobs && job->errs;
    if (job) free_blobs_job(job);
    if (bad_path) napi_throw_type_error(env, NULL, "linkBlobs: each folder must be a non-empty string without NUL");
    else napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (count) memcpy(job->blobs, data, count * sizeof *job->blobs);
  return start_pool_job(env, "tidemark:linkBlobs", execute_blobs, complete_blobs, job, &job->deferred, &job->work);
}
