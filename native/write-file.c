// writeNewFile(path, parts, mode, hash) -> Promise<Buffer | undefined>: creates (or truncates)
// `path` without following a symlink at it, writes the buffers of `parts` in full, closes it,
// and with `hash` resolves with the SHA-256 of what it wrote; all on a thread of libuv's pool.
// One pool job per file instead of an open, a write and a close on the event loop: creating a
// file costs the filesystem its inode and directory work, and a backup creates tens of
// thousands of them while the event loop has the account worker's stream to read.
// SHA-256 is OpenSSL's, the copy inside Node.js (found by name at run time, so a Node.js
// without it only loses `hash`: hashSupported() says whether it is there).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"
#include "iovec.h"
#include "sha256.h"

typedef struct {
  char *path;
  int mode;
  int hash;
  size_t count;
  struct iovec *iov;
  napi_ref keep; // the parts array: its buffers stay alive (and in place) until the job is done
  int err;
  unsigned char digest[32];
  napi_deferred deferred;
  napi_async_work work;
} write_job;

static int digest_all(const struct iovec *iov, size_t count, unsigned char out[32]) {
  void *ctx = tm_sha256_new();
  if (!ctx) return ENOMEM;
  int err = 0;
  for (size_t i = 0; !err && i < count; i++) err = tm_sha256_update(ctx, iov[i].iov_base, iov[i].iov_len);
  if (!err) err = tm_sha256_final(ctx, out);
  tm_sha256_free(ctx);
  return err;
}

// Hashed (with `digest`) before writing: tm_write_all moves the iovecs along as it goes.
static int write_one(const char *path, struct iovec *iov, size_t count, int mode, unsigned char *digest) {
  int err;
  if (digest && (err = digest_all(iov, count, digest)) != 0) return err;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  err = tm_write_all(fd, iov, count);
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

static void execute(napi_env env, void *data) {
  (void)env;
  write_job *job = data;
  job->err = write_one(job->path, job->iov, job->count, job->mode, job->hash ? job->digest : NULL);
}

static void free_job(napi_env env, write_job *job) {
  if (job->keep) napi_delete_reference(env, job->keep);
  free(job->path);
  free(job->iov);
  free(job);
}

static void complete(napi_env env, napi_status status, void *data) {
  write_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value result;
    if (job->hash) napi_create_buffer_copy(env, 32, job->digest, NULL, &result);
    else napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err ? job->err : EIO));
  }
  napi_delete_async_work(env, job->work);
  free_job(env, job);
}

napi_value write_new_file(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t count = 0;
  int32_t mode = 0;
  bool hash = false, is_array = false;
  size_t path_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok || path_len == 0
      || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[1], &count) != napi_ok
      || napi_get_value_int32(env, argv[2], &mode) != napi_ok || mode < 0 || mode > 07777
      || napi_get_value_bool(env, argv[3], &hash) != napi_ok) {
    napi_throw_type_error(env, NULL, "writeNewFile(path, buffers, mode, hash)");
    return NULL;
  }
  if (hash && !tm_sha256_available()) {
    napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module");
    return NULL;
  }
  write_job *job = calloc(1, sizeof *job);
  if (job) job->path = malloc(path_len + 1);
  if (job && count > 0) job->iov = calloc(count, sizeof *job->iov);
  if (!job || !job->path || (count > 0 && !job->iov)) {
    if (job) { free(job->path); free(job->iov); free(job); }
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], job->path, path_len + 1, &path_len);
  if (strlen(job->path) != path_len) {
    free_job(env, job);
    napi_throw_type_error(env, NULL, "writeNewFile: a path with a NUL byte");
    return NULL;
  }
  job->mode = mode;
  job->hash = hash;
  job->count = count;
  if (!tm_iovec_of_buffers(env, argv[1], count, job->iov)) {
    free_job(env, job);
    napi_throw_type_error(env, NULL, "writeNewFile: every part must be a Buffer");
    return NULL;
  }
  napi_create_reference(env, argv[1], 1, &job->keep);
  return start_pool_job(env, "tidemark:writeNewFile", execute, complete, job, &job->deferred, &job->work);
}

napi_value hash_supported(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, tm_sha256_available(), &result);
  return result;
}

// writeNewFiles(paths, parts, counts, mode) -> Promise<Array<Buffer | number>>: writeNewFile with
// `hash` for several files as ONE job on the pool: file i is paths[i], its content the next
// counts[i] buffers of `parts`. Each result is the file's SHA-256 or the errno that failed it
// (one file's failure leaves the others alone). A backup of many small files otherwise queues
// one job per file, and each queueing wakes a pool thread that, on a busy machine, takes the
// event loop's processor from it (measured: most of root's involuntary switches were there).
typedef struct {
  uint32_t files;
  char **paths;
  uint32_t *counts;
  struct iovec *iov;
  int mode;
  int *errs;
  unsigned char (*digests)[32];
  napi_ref keep;
  napi_deferred deferred;
  napi_async_work work;
} batch_job;

static void execute_batch(napi_env env, void *data) {
  (void)env;
  batch_job *job = data;
  size_t first = 0;
  for (uint32_t i = 0; i < job->files; i++) {
    struct iovec *iov = job->iov + first;
    size_t count = job->counts[i];
    first += count;
    job->errs[i] = write_one(job->paths[i], iov, count, job->mode, job->digests[i]);
  }
}

static void free_batch(napi_env env, batch_job *job) {
  if (job->keep) napi_delete_reference(env, job->keep);
  if (job->paths) for (uint32_t i = 0; i < job->files; i++) free(job->paths[i]);
  free(job->paths);
  free(job->counts);
  free(job->iov);
  free(job->errs);
  free(job->digests);
  free(job);
}

static void complete_batch(napi_env env, napi_status status, void *data) {
  batch_job *job = data;
  if (status != napi_ok) {
    napi_reject_deferred(env, job->deferred, errno_error(env, EIO));
  } else {
    napi_value results;
    napi_create_array_with_length(env, job->files, &results);
    for (uint32_t i = 0; i < job->files; i++) {
      napi_value r;
      if (job->errs[i] == 0) napi_create_buffer_copy(env, 32, job->digests[i], NULL, &r);
      else napi_create_int32(env, job->errs[i], &r);
      napi_set_element(env, results, i, r);
    }
    napi_resolve_deferred(env, job->deferred, results);
  }
  napi_delete_async_work(env, job->work);
  free_batch(env, job);
}

napi_value write_new_files(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t files = 0, parts = 0, counted = 0;
  int32_t mode = 0;
  bool paths_array = false, parts_array = false, counts_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_is_array(env, argv[0], &paths_array) != napi_ok || !paths_array
      || napi_is_array(env, argv[1], &parts_array) != napi_ok || !parts_array
      || napi_is_array(env, argv[2], &counts_array) != napi_ok || !counts_array
      || napi_get_array_length(env, argv[0], &files) != napi_ok
      || napi_get_array_length(env, argv[1], &parts) != napi_ok
      || napi_get_array_length(env, argv[2], &counted) != napi_ok || counted != files
      || napi_get_value_int32(env, argv[3], &mode) != napi_ok || mode < 0 || mode > 07777) {
    napi_throw_type_error(env, NULL, "writeNewFiles(paths, buffers, counts, mode)");
    return NULL;
  }
  if (!tm_sha256_available()) {
    napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module");
    return NULL;
  }
  batch_job *job = calloc(1, sizeof *job);
  if (job) {
    job->files = files;
    job->paths = calloc(files ? files : 1, sizeof *job->paths);
    job->counts = calloc(files ? files : 1, sizeof *job->counts);
    job->iov = calloc(parts ? parts : 1, sizeof *job->iov);
    job->errs = calloc(files ? files : 1, sizeof *job->errs);
    job->digests = calloc(files ? files : 1, sizeof *job->digests);
  }
  if (!job || !job->paths || !job->counts || !job->iov || !job->errs || !job->digests) {
    if (job) free_batch(env, job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  size_t total = 0;
  for (uint32_t i = 0; i < files; i++) {
    napi_value p, c;
    size_t len = 0;
    uint32_t n = 0;
    if (napi_get_element(env, argv[0], i, &p) != napi_ok || napi_get_value_string_utf8(env, p, NULL, 0, &len) != napi_ok || len == 0
        || napi_get_element(env, argv[2], i, &c) != napi_ok || napi_get_value_uint32(env, c, &n) != napi_ok) {
      free_batch(env, job);
      napi_throw_type_error(env, NULL, "writeNewFiles: every path a non-empty string, every count a whole number");
      return NULL;
    }
    job->paths[i] = malloc(len + 1);
    if (!job->paths[i]) {
      free_batch(env, job);
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    napi_get_value_string_utf8(env, p, job->paths[i], len + 1, &len);
    if (strlen(job->paths[i]) != len) {
      free_batch(env, job);
      napi_throw_type_error(env, NULL, "writeNewFiles: a path with a NUL byte");
      return NULL;
    }
    job->counts[i] = n;
    total += n;
  }
  if (total != parts || !tm_iovec_of_buffers(env, argv[1], parts, job->iov)) {
    free_batch(env, job);
    napi_throw_type_error(env, NULL, "writeNewFiles: the counts must add up to the parts, every part a Buffer");
    return NULL;
  }
  job->mode = mode;
  napi_create_reference(env, argv[1], 1, &job->keep);
  return start_pool_job(env, "tidemark:writeNewFiles", execute_batch, complete_batch, job, &job->deferred, &job->work);
}
