// restoreNewFile(path, parts, mode, uid, gid, sec, nsec[, hash]) -> Promise<number>: one restored file
// in one job on libuv's pool: created with O_EXCL|O_NOFOLLOW (a name that exists, or a link
// planted at it, makes the job fail with EEXIST/ELOOP: nothing is followed or overwritten),
// the buffers of `parts` written in full, then owner (uid/gid -1: left as created), mode and
// times to the nanosecond, and closed. A file it created and could not complete is removed.
// With `hash` (32 bytes) the parts are first checked against that SHA-256: content that differs
// rejects with `stage` "damaged" (`damage` "hash") and nothing is created.
// Rejects with an errno error whose `stage` is "open" (nothing was created) or "write".
// Resolves with 0, or with 1 when the owner uid was refused and only the group was set, 2 when
// neither was (files are then the account's: the caller warns). Run by the restore writer,
// which is the account: the pool's threads are the account too.
// One job per file, several in flight, instead of six calls on the writer's one thread: the
// writer reads and parses the next files while the filesystem creates these.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"
#include "iovec.h"
#include "sha256.h"

typedef struct {
  char *path;
  int mode;
  int64_t uid, gid;
  struct timespec times[2];
  size_t count;
  struct iovec *iov;
  napi_ref keep; // the parts array: its buffers stay alive (and in place) until the job is done
  unsigned char hash[32];
  int has_hash;
  int err;
  int damaged; // the parts are not the content `hash` names: nothing was created
  int opened; // the create succeeded: a later error is a failed write, not a name that was taken
  int owner;
  napi_deferred deferred;
  napi_async_work work;
} restore_job;

static void new_run(restore_job *job) {
  if (job->has_hash) {
    unsigned char got[32];
    void *ctx = tm_sha256_new();
    int err = ctx ? 0 : ENOMEM;
    for (size_t i = 0; !err && i < job->count; i++) err = tm_sha256_update(ctx, job->iov[i].iov_base, job->iov[i].iov_len);
    if (!err) err = tm_sha256_final(ctx, got);
    if (ctx) tm_sha256_free(ctx);
    if (err) { job->err = err; return; }
    if (memcmp(got, job->hash, 32) != 0) { job->err = EIO; job->damaged = 1; return; }
  }
  int fd = open(job->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) { job->err = errno; return; }
  job->opened = 1;
  int err = tm_write_all(fd, job->iov, job->count);
  if (!err && (job->uid >= 0 || job->gid >= 0)) {
    if (fchown(fd, (uid_t)job->uid, (gid_t)job->gid) != 0) {
      // As the writer's JS path does: the group alone, else the account's owner stays.
      if (job->uid >= 0 && fchown(fd, (uid_t)-1, (gid_t)job->gid) == 0) job->owner = 1;
      else job->owner = 2;
    }
  }
  if (!err && fchmod(fd, (mode_t)job->mode) != 0) err = errno;
  if (!err && futimens(fd, job->times) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  // Created here (O_EXCL): removing it removes nothing of anyone else's.
  if (err) unlink(job->path);
  job->err = err;
}

static void execute(napi_env env, void *data) {
  (void)env;
  new_run(data);
}

static void free_job(napi_env env, restore_job *job) {
  if (job->keep) napi_delete_reference(env, job->keep);
  free(job->path);
  free(job->iov);
  free(job);
}

// Resolves with the owner the file got, or rejects with an errno error naming the stage that
// failed (and, for a content check, the damage found).
// The Error a job that failed settles with: errno's, with the stage it failed at and, for
// content that is not what it should be, what was wrong.
static napi_value outcome_error(napi_env env, int err, const char *stage_name, const char *damage) {
  napi_value error = errno_error(env, err ? err : EIO), stage;
  napi_create_string_utf8(env, stage_name, NAPI_AUTO_LENGTH, &stage);
  napi_set_named_property(env, error, "stage", stage);
  if (damage) {
    napi_value text;
    napi_create_string_utf8(env, damage, NAPI_AUTO_LENGTH, &text);
    napi_set_named_property(env, error, "damage", text);
  }
  return error;
}

static void settle(napi_env env, napi_deferred deferred, bool ok, int32_t owner, int err, const char *stage_name, const char *damage) {
  if (ok) {
    napi_value result;
    napi_create_int32(env, owner, &result);
    napi_resolve_deferred(env, deferred, result);
    return;
  }
  napi_reject_deferred(env, deferred, outcome_error(env, err, stage_name, damage));
}

static void complete(napi_env env, napi_status status, void *data) {
  restore_job *job = data;
  settle(env, job->deferred, status == napi_ok && job->err == 0, job->owner, job->err,
         job->damaged ? "damaged" : job->opened ? "write" : "open", job->damaged ? "hash" : NULL);
  napi_delete_async_work(env, job->work);
  free_job(env, job);
}

napi_value restore_new_file(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  uint32_t count = 0;
  void *hash_data = NULL;
  size_t hash_len = 0;
  napi_valuetype hash_type = napi_undefined;
  int32_t mode = 0, nsec = 0;
  int64_t uid = -1, gid = -1, sec = 0;
  bool is_array = false;
  void *path_data = NULL;
  size_t path_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7
      || napi_get_buffer_info(env, argv[0], &path_data, &path_len) != napi_ok || path_len == 0 || path_len > 4095
      || memchr(path_data, 0, path_len)
      || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[1], &count) != napi_ok
      || napi_get_value_int32(env, argv[2], &mode) != napi_ok || mode < 0 || mode > 07777
      || napi_get_value_int64(env, argv[3], &uid) != napi_ok || uid < -1 || uid > 0xfffffffe
      || napi_get_value_int64(env, argv[4], &gid) != napi_ok || gid < -1 || gid > 0xfffffffe
      || napi_get_value_int64(env, argv[5], &sec) != napi_ok
      || napi_get_value_int32(env, argv[6], &nsec) != napi_ok || nsec < 0 || nsec > 999999999
      || (argc >= 8 && napi_typeof(env, argv[7], &hash_type) != napi_ok)
      || (argc >= 8 && hash_type != napi_null && hash_type != napi_undefined
          && (napi_get_buffer_info(env, argv[7], &hash_data, &hash_len) != napi_ok || hash_len != 32))) {
    napi_throw_type_error(env, NULL, "restoreNewFile(path: Buffer without NUL, buffers, mode, uid, gid, sec, nsec, hash?: 32-byte Buffer | null)");
    return NULL;
  }
  if (hash_data && !tm_sha256_available()) {
    napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module");
    return NULL;
  }
  restore_job *job = calloc(1, sizeof *job);
  if (job) job->path = malloc(path_len + 1);
  if (job && count > 0) job->iov = calloc(count, sizeof *job->iov);
  if (!job || !job->path || (count > 0 && !job->iov)) {
    if (job) { free(job->path); free(job->iov); free(job); }
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  memcpy(job->path, path_data, path_len);
  job->path[path_len] = 0;
  job->mode = mode;
  job->uid = uid;
  job->gid = gid;
  job->times[0].tv_sec = job->times[1].tv_sec = (time_t)sec;
  job->times[0].tv_nsec = job->times[1].tv_nsec = nsec;
  job->count = count;
  if (hash_data) { memcpy(job->hash, hash_data, 32); job->has_hash = 1; }
  if (!tm_iovec_of_buffers(env, argv[1], count, job->iov)) {
    free_job(env, job);
    napi_throw_type_error(env, NULL, "restoreNewFile: every part must be a Buffer");
    return NULL;
  }
  napi_create_reference(env, argv[1], 1, &job->keep);
  return start_pool_job(env, "tidemark:restoreNewFile", execute, complete, job, &job->deferred, &job->work);
}

// restoreFileFrom(path, fd, offset, size, hash|null, mode, uid, gid, sec, nsec, closeFd) -> Promise<number>:
// the same for a file whose content is `size` bytes at `offset` of `fd` (a stored blob or the
// archive, handed over by root: pass-fds.c), read, checked against the 32-byte SHA-256 `hash`
// and written by this job. Up to SMALL bytes the content is read and checked before the file
// is created, so a damaged copy never gets a name; a larger one is written as it is read (1 MiB
// at a time) and removed when it turns out short or different. Rejects with `stage` "open"
// (nothing was created), "read" (the stored copy could not be read; nothing is left),
// "damaged" (`damage` "hash" or "short"; nothing is left) or "write". With closeFd the job
// closes `fd` when it is done, except after stage "open" (the caller then writes the file
// another way, from the same descriptor).
#define SMALL (4 << 20)
#define PIECE (1 << 20)

typedef struct {
  char *path;
  int fd;
  int64_t offset, size;
  unsigned char hash[32];
  int has_hash;
  int close_fd;
  int mode;
  int64_t uid, gid;
  struct timespec times[2];
  int err;
  const char *stage;
  const char *damage;
  int owner;
  napi_deferred deferred;
  napi_async_work work;
} from_job;

/** Reads exactly `len` bytes at `off`; 0, an errno, or -1 when the file ends first. */
static int read_exact(int fd, char *buf, size_t len, int64_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + (int64_t)got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

static int write_exact(int fd, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += (size_t)n;
  }
  return 0;
}

static void from_attributes(from_job *job, int out, int *err) {
  if (!*err && (job->uid >= 0 || job->gid >= 0)) {
    if (fchown(out, (uid_t)job->uid, (gid_t)job->gid) != 0) {
      if (job->uid >= 0 && fchown(out, (uid_t)-1, (gid_t)job->gid) == 0) job->owner = 1;
      else job->owner = 2;
    }
  }
  if (!*err && fchmod(out, (mode_t)job->mode) != 0) *err = errno;
  if (!*err && futimens(out, job->times) != 0) *err = errno;
}

// Each pool thread keeps one buffer (at most SMALL bytes) and one hash context for all the
// files it restores. A buffer malloc'd per file is above glibc's mmap threshold for most of
// them: every file then paid an mmap, a page fault per 4 KiB while pread filled it, and an
// munmap, which on this kind of VM cost the pool more than the SHA-256 itself.
static __thread char *thread_buf = NULL;
static __thread size_t thread_buf_size = 0;
static __thread void *thread_hash = NULL;

/**
 * This thread's buffer, at least `size` bytes (grown by doubling, up to SMALL), or NULL. On a
 * page boundary: malloc's large blocks start 16 bytes into a page, and the kernel's copy of a
 * write from there into the page cache (rep movsb, page-aligned destination) ran about ten
 * times slower on this VM's AMD EPYC: perf of an archive restore into a new folder gave that
 * copy 28 % of the restore's CPU, 2.4 % from an aligned buffer.
 */
static char *thread_buffer(size_t size) {
  if (size <= thread_buf_size) return thread_buf;
  size_t want = thread_buf_size > 0 ? thread_buf_size : (64 << 10);
  while (want < size) want *= 2;
  if (want > SMALL && size <= SMALL) want = SMALL;
  void *grown = NULL;
  if (posix_memalign(&grown, 4096, want) != 0) return NULL;
  free(thread_buf);
  thread_buf = grown;
  thread_buf_size = want;
  return thread_buf;
}

/** This thread's hash context, reset for a new file, or NULL. */
static void *thread_sha256(void) {
  if (thread_hash && tm_sha256_reset(thread_hash) == 0) return thread_hash;
  tm_sha256_free(thread_hash);
  thread_hash = tm_sha256_new();
  return thread_hash;
}

static void from_run(from_job *job) {
  void *ctx = NULL;
  char *buf = NULL;
  int out = -1, err = 0;
  unsigned char got[32];
  if (job->has_hash && !(ctx = thread_sha256())) { job->err = ENOMEM; job->stage = "read"; return; }
  size_t bufsize = job->size <= SMALL ? (size_t)(job->size > 0 ? job->size : 1) : PIECE;
  buf = thread_buffer(bufsize);
  if (!buf) { job->err = ENOMEM; job->stage = "read"; goto done; }
  if (job->size <= SMALL) {
    int r = read_exact(job->fd, buf, (size_t)job->size, job->offset);
    if (r == -1) { job->stage = "damaged"; job->damage = "short"; job->err = EIO; goto done; }
    if (r) { job->stage = "read"; job->err = r; goto done; }
    // Checked whole, in this thread's private copy, before the file is created: the bytes
    // written are the bytes checked, whatever happens to the stored file meanwhile.
    if (ctx) {
      if ((err = tm_sha256_update(ctx, buf, (size_t)job->size)) || (err = tm_sha256_final(ctx, got))) { job->stage = "read"; job->err = err; goto done; }
      if (memcmp(got, job->hash, 32) != 0) { job->stage = "damaged"; job->damage = "hash"; job->err = EIO; goto done; }
    }
    out = open(job->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) { job->err = errno; job->stage = "open"; goto done; }
    err = write_exact(out, buf, (size_t)job->size);
  } else {
    out = open(job->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) { job->err = errno; job->stage = "open"; goto done; }
    for (int64_t at = 0; !err && at < job->size;) {
      size_t len = (size_t)(job->size - at < PIECE ? job->size - at : PIECE);
      int r = read_exact(job->fd, buf, len, job->offset + at);
      if (r == -1) { job->stage = "damaged"; job->damage = "short"; err = EIO; break; }
      if (r) { job->stage = "read"; err = r; break; }
      if (ctx && (r = tm_sha256_update(ctx, buf, len))) { job->stage = "read"; err = r; break; }
      if ((err = write_exact(out, buf, len))) break;
      at += (int64_t)len;
    }
    if (!err && ctx) {
      if ((err = tm_sha256_final(ctx, got))) job->stage = "read";
      else if (memcmp(got, job->hash, 32) != 0) { job->stage = "damaged"; job->damage = "hash"; err = EIO; }
    }
  }
  from_attributes(job, out, &err);
  if (close(out) != 0 && !err) err = errno;
  // Created here (O_EXCL): removing it removes nothing of anyone else's.
  if (err) unlink(job->path);
  if (err && !job->stage) job->stage = "write";
  job->err = err;
done:
  if (job->close_fd && !(job->err && job->stage && strcmp(job->stage, "open") == 0)) close(job->fd);
}

static void from_execute(napi_env env, void *data) {
  (void)env;
  from_run(data);
}

static void from_complete(napi_env env, napi_status status, void *data) {
  from_job *job = data;
  settle(env, job->deferred, status == napi_ok && job->err == 0, job->owner, job->err, job->stage ? job->stage : "write", job->damage);
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job);
}

napi_value restore_file_from(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  bool close_fd = false;
  int32_t fd = -1, mode = 0, nsec = 0;
  int64_t offset = -1, size = -1, uid = -1, gid = -1, sec = 0;
  void *path_data = NULL, *hash_data = NULL;
  size_t path_len = 0, hash_len = 0;
  napi_valuetype hash_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 11
      || napi_get_value_bool(env, argv[10], &close_fd) != napi_ok
      || napi_get_buffer_info(env, argv[0], &path_data, &path_len) != napi_ok || path_len == 0 || path_len > 4095
      || memchr(path_data, 0, path_len)
      || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0
      || napi_get_value_int64(env, argv[2], &offset) != napi_ok || offset < 0
      || napi_get_value_int64(env, argv[3], &size) != napi_ok || size < 0
      || napi_typeof(env, argv[4], &hash_type) != napi_ok
      || (hash_type != napi_null && (napi_get_buffer_info(env, argv[4], &hash_data, &hash_len) != napi_ok || hash_len != 32))
      || napi_get_value_int32(env, argv[5], &mode) != napi_ok || mode < 0 || mode > 07777
      || napi_get_value_int64(env, argv[6], &uid) != napi_ok || uid < -1 || uid > 0xfffffffe
      || napi_get_value_int64(env, argv[7], &gid) != napi_ok || gid < -1 || gid > 0xfffffffe
      || napi_get_value_int64(env, argv[8], &sec) != napi_ok
      || napi_get_value_int32(env, argv[9], &nsec) != napi_ok || nsec < 0 || nsec > 999999999) {
    napi_throw_type_error(env, NULL, "restoreFileFrom(path: Buffer without NUL, fd, offset, size, hash: 32-byte Buffer | null, mode, uid, gid, sec, nsec, closeFd)");
    return NULL;
  }
  if (hash_data && !tm_sha256_available()) {
    napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module");
    return NULL;
  }
  from_job *job = calloc(1, sizeof *job);
  if (job) job->path = malloc(path_len + 1);
  if (!job || !job->path) {
    if (job) free(job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  memcpy(job->path, path_data, path_len);
  job->path[path_len] = 0;
  job->fd = fd;
  job->close_fd = close_fd;
  job->offset = offset;
  job->size = size;
  if (hash_data) { memcpy(job->hash, hash_data, 32); job->has_hash = 1; }
  job->mode = mode;
  job->uid = uid;
  job->gid = gid;
  job->times[0].tv_sec = job->times[1].tv_sec = (time_t)sec;
  job->times[0].tv_nsec = job->times[1].tv_nsec = nsec;
  return start_pool_job(env, "tidemark:restoreFileFrom", from_execute, from_complete, job, &job->deferred, &job->work);
}

// restoreFilesFrom(paths, numbers, hashes) -> Promise<(number | Error)[]>: restoreFileFrom for
// several files in one job on libuv's pool, one after the other, so that a batch of small
// files costs the writer's event loop one call, one wake-up and one promise instead of one
// each. `paths`: Buffers without NUL; `numbers`: a Float64Array of FROM_FIELDS numbers per
// file (fd, offset, size, mode, uid, gid, sec, nsec, closeFd 0/1, hashed 0/1); `hashes`: a
// Buffer of 32 bytes per file (ignored where hashed is 0). Resolves with one value per file,
// in order: its owner outcome, or the Error restoreFileFrom would have rejected with (its
// `stage`, `damage`): one file's failure does not stop the others.
#define FROM_FIELDS 10
#define MAX_BATCH 256

typedef struct {
  uint32_t count;
  from_job *jobs;
  napi_deferred deferred;
  napi_async_work work;
} from_batch;

static void batch_execute(napi_env env, void *data) {
  (void)env;
  from_batch *batch = data;
  for (uint32_t i = 0; i < batch->count; i++) from_run(&batch->jobs[i]);
}

static void batch_free(from_batch *batch) {
  for (uint32_t i = 0; i < batch->count; i++) free(batch->jobs[i].path);
  free(batch->jobs);
  free(batch);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  from_batch *batch = data;
  napi_value results;
  napi_create_array_with_length(env, batch->count, &results);
  for (uint32_t i = 0; i < batch->count; i++) {
    from_job *job = &batch->jobs[i];
    napi_value value;
    if (status == napi_ok && job->err == 0) napi_create_int32(env, job->owner, &value);
    else value = outcome_error(env, job->err, job->stage ? job->stage : "write", job->damage);
    napi_set_element(env, results, i, value);
  }
  napi_resolve_deferred(env, batch->deferred, results);
  napi_delete_async_work(env, batch->work);
  batch_free(batch);
}

static int whole(double v, double min, double max) { return v == v && v >= min && v <= max && v == (double)(int64_t)v; }

// A batch's path i as a NUL-terminated copy (the caller frees it): *out stays NULL and 0 is
// returned when it is not a Buffer of 1-4095 bytes without NUL; -1 when out of memory.
static int batch_path(napi_env env, napi_value paths, uint32_t i, char **out) {
  napi_value path;
  void *data = NULL;
  size_t len = 0;
  *out = NULL;
  if (napi_get_element(env, paths, i, &path) != napi_ok || napi_get_buffer_info(env, path, &data, &len) != napi_ok
      || len == 0 || len > 4095 || memchr(data, 0, len)) return 0;
  if (!(*out = malloc(len + 1))) return -1;
  memcpy(*out, data, len);
  (*out)[len] = 0;
  return 1;
}

// Whether a batch that has hashed files can check them: throws and answers false when not.
static bool hashes_checkable(napi_env env, int hashed) {
  if (!hashed || tm_sha256_available()) return true;
  napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module");
  return false;
}

napi_value restore_files_from(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool is_array = false, is_typed = false;
  uint32_t count = 0;
  napi_typedarray_type type;
  size_t length = 0, hashes_len = 0;
  void *numbers_data = NULL, *hashes_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3
      || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[0], &count) != napi_ok || count == 0 || count > MAX_BATCH
      || napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed
      || napi_get_typedarray_info(env, argv[1], &type, &length, &numbers_data, NULL, NULL) != napi_ok
      || type != napi_float64_array || length != (size_t)count * FROM_FIELDS
      || napi_get_buffer_info(env, argv[2], &hashes_data, &hashes_len) != napi_ok || hashes_len != (size_t)count * 32) {
    napi_throw_type_error(env, NULL, "restoreFilesFrom(paths: Buffer[] (1-256), numbers: Float64Array of 10 per file, hashes: Buffer of 32 bytes per file)");
    return NULL;
  }
  const double *n = numbers_data;
  int hashed = 0;
  for (uint32_t i = 0; i < count; i++) {
    const double *f = n + (size_t)i * FROM_FIELDS;
    if (!whole(f[0], 0, INT32_MAX) || !whole(f[1], 0, 9007199254740991.0) || !whole(f[2], 0, 9007199254740991.0)
        || !whole(f[3], 0, 07777) || !whole(f[4], -1, 0xfffffffe) || !whole(f[5], -1, 0xfffffffe)
        || !whole(f[6], -9007199254740991.0, 9007199254740991.0) || !whole(f[7], 0, 999999999)
        || !whole(f[8], 0, 1) || !whole(f[9], 0, 1)) {
      napi_throw_type_error(env, NULL, "restoreFilesFrom: a file's numbers are out of range");
      return NULL;
    }
    if (f[9] != 0) hashed = 1;
  }
  if (!hashes_checkable(env, hashed)) return NULL;
  from_batch *batch = calloc(1, sizeof *batch);
  if (batch) batch->jobs = calloc(count, sizeof *batch->jobs);
  if (!batch || !batch->jobs) {
    if (batch) free(batch);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  batch->count = count;
  for (uint32_t i = 0; i < count; i++) {
    const double *f = n + (size_t)i * FROM_FIELDS;
    from_job *job = &batch->jobs[i];
    int copied = batch_path(env, argv[0], i, &job->path);
    if (copied != 1) {
      batch_free(batch);
      if (copied == 0) napi_throw_type_error(env, NULL, "restoreFilesFrom: every path must be a Buffer without NUL");
      else napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    job->fd = (int)f[0];
    job->offset = (int64_t)f[1];
    job->size = (int64_t)f[2];
    job->mode = (int)f[3];
    job->uid = (int64_t)f[4];
    job->gid = (int64_t)f[5];
    job->times[0].tv_sec = job->times[1].tv_sec = (time_t)(int64_t)f[6];
    job->times[0].tv_nsec = job->times[1].tv_nsec = (long)f[7];
    job->close_fd = f[8] != 0;
    if (f[9] != 0) { memcpy(job->hash, (const unsigned char *)hashes_data + (size_t)i * 32, 32); job->has_hash = 1; }
  }
  return start_pool_job(env, "tidemark:restoreFilesFrom", batch_execute, batch_complete, batch, &batch->deferred, &batch->work);
}

// restoreNewFiles(paths, parts, numbers, hashes) -> Promise<(number | Error)[]>: restoreNewFile
// for several files whose content is here (gathered from a stream, or inflated from a
// compressed snapshot), in one job on libuv's pool, one after the other: one call, one
// wake-up and one promise for the batch instead of one each. `paths`: Buffers without NUL;
// `parts`: one array of Buffers per file (kept alive, and in place, until the job is done);
// `numbers`: a Float64Array of NEW_FIELDS numbers per file (mode, uid, gid, sec, nsec,
// hashed 0/1); `hashes`: 32 bytes per file (ignored where hashed is 0). Resolves with one
// value per file, in order: its owner outcome, or the Error restoreNewFile would have
// rejected with (`stage` "damaged" with `damage` "hash", "open" or "write"): each file is
// checked before it is created, and one file's failure does not stop the others.
#define NEW_FIELDS 6

typedef struct {
  uint32_t count;
  restore_job *jobs;
  napi_ref keep; // the array of parts arrays
  napi_deferred deferred;
  napi_async_work work;
} new_batch;

static void new_batch_execute(napi_env env, void *data) {
  (void)env;
  new_batch *batch = data;
  for (uint32_t i = 0; i < batch->count; i++) new_run(&batch->jobs[i]);
}

static void new_batch_free(napi_env env, new_batch *batch) {
  if (batch->keep) napi_delete_reference(env, batch->keep);
  for (uint32_t i = 0; i < batch->count; i++) { free(batch->jobs[i].path); free(batch->jobs[i].iov); }
  free(batch->jobs);
  free(batch);
}

static void new_batch_complete(napi_env env, napi_status status, void *data) {
  new_batch *batch = data;
  napi_value results;
  napi_create_array_with_length(env, batch->count, &results);
  for (uint32_t i = 0; i < batch->count; i++) {
    restore_job *job = &batch->jobs[i];
    napi_value value;
    if (status == napi_ok && job->err == 0) napi_create_int32(env, job->owner, &value);
    else value = outcome_error(env, job->err, job->damaged ? "damaged" : job->opened ? "write" : "open", job->damaged ? "hash" : NULL);
    napi_set_element(env, results, i, value);
  }
  napi_resolve_deferred(env, batch->deferred, results);
  napi_delete_async_work(env, batch->work);
  new_batch_free(env, batch);
}

napi_value restore_new_files(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool is_array = false, parts_array = false, is_typed = false;
  uint32_t count = 0, parts_count = 0;
  napi_typedarray_type type;
  size_t length = 0, hashes_len = 0;
  void *numbers_data = NULL, *hashes_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[0], &count) != napi_ok || count == 0 || count > MAX_BATCH
      || napi_is_array(env, argv[1], &parts_array) != napi_ok || !parts_array
      || napi_get_array_length(env, argv[1], &parts_count) != napi_ok || parts_count != count
      || napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed
      || napi_get_typedarray_info(env, argv[2], &type, &length, &numbers_data, NULL, NULL) != napi_ok
      || type != napi_float64_array || length != (size_t)count * NEW_FIELDS
      || napi_get_buffer_info(env, argv[3], &hashes_data, &hashes_len) != napi_ok || hashes_len != (size_t)count * 32) {
    napi_throw_type_error(env, NULL, "restoreNewFiles(paths: Buffer[] (1-256), parts: Buffer[][] (one per path), numbers: Float64Array of 6 per file, hashes: Buffer of 32 bytes per file)");
    return NULL;
  }
  const double *n = numbers_data;
  int hashed = 0;
  for (uint32_t i = 0; i < count; i++) {
    const double *f = n + (size_t)i * NEW_FIELDS;
    if (!whole(f[0], 0, 07777) || !whole(f[1], -1, 0xfffffffe) || !whole(f[2], -1, 0xfffffffe)
        || !whole(f[3], -9007199254740991.0, 9007199254740991.0) || !whole(f[4], 0, 999999999) || !whole(f[5], 0, 1)) {
      napi_throw_type_error(env, NULL, "restoreNewFiles: a file's numbers are out of range");
      return NULL;
    }
    if (f[5] != 0) hashed = 1;
  }
  if (!hashes_checkable(env, hashed)) return NULL;
  new_batch *batch = calloc(1, sizeof *batch);
  if (batch) batch->jobs = calloc(count, sizeof *batch->jobs);
  if (!batch || !batch->jobs) {
    if (batch) free(batch);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  batch->count = count;
  for (uint32_t i = 0; i < count; i++) {
    const double *f = n + (size_t)i * NEW_FIELDS;
    restore_job *job = &batch->jobs[i];
    napi_value parts;
    bool is_parts = false;
    uint32_t pieces = 0;
    int copied = batch_path(env, argv[0], i, &job->path);
    if (copied == 0 || napi_get_element(env, argv[1], i, &parts) != napi_ok
        || napi_is_array(env, parts, &is_parts) != napi_ok || !is_parts
        || napi_get_array_length(env, parts, &pieces) != napi_ok) {
      new_batch_free(env, batch);
      napi_throw_type_error(env, NULL, "restoreNewFiles: every path must be a Buffer without NUL, every file's parts an array");
      return NULL;
    }
    if (pieces > 0 && copied == 1) job->iov = calloc(pieces, sizeof *job->iov);
    if (copied == -1 || (pieces > 0 && !job->iov)) {
      new_batch_free(env, batch);
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    job->count = pieces;
    if (!tm_iovec_of_buffers(env, parts, pieces, job->iov)) {
      new_batch_free(env, batch);
      napi_throw_type_error(env, NULL, "restoreNewFiles: every part must be a Buffer");
      return NULL;
    }
    job->mode = (int)f[0];
    job->uid = (int64_t)f[1];
    job->gid = (int64_t)f[2];
    job->times[0].tv_sec = job->times[1].tv_sec = (time_t)(int64_t)f[3];
    job->times[0].tv_nsec = job->times[1].tv_nsec = (long)f[4];
    if (f[5] != 0) { memcpy(job->hash, (const unsigned char *)hashes_data + (size_t)i * 32, 32); job->has_hash = 1; }
  }
  napi_create_reference(env, argv[1], 1, &batch->keep);
  return start_pool_job(env, "tidemark:restoreNewFiles", new_batch_execute, new_batch_complete, batch, &batch->deferred, &batch->work);
}
