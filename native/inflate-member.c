// inflateMember(fd, offset, length, out[, crc]) -> Promise<number>: one entry of a compressed
// snapshot's member list (one or more gzip members, parallel-gzip.ts) read with pread into the
// pool thread's own buffer and inflated by libdeflate into `out`, which the caller reuses for
// the next member: a restore from a compressed snapshot no longer allocates a fresh Buffer for
// every compressed and every inflated MiB (the worker's garbage collection of those was its
// main cost, and every fresh page faults on its first touch). Resolves with the bytes written
// into `out`; rejects with an errno error (`stage` "read"), or with `stage` "damaged" and
// `damage` "short" (the file ends first), "data" (not gzip, or a CRC or length that does not
// match) or "long" (more bytes than `out` holds). With `crc` false the members' CRC-32 is not
// computed (a quarter of libdeflate's time on a backup's archive), only their length checked:
// for a caller that checks every byte it uses against a SHA-256. Built only with libdeflate.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include <libdeflate.h>
#include "errno-error.h"

typedef struct {
  int fd;
  int64_t offset;
  size_t length;
  uint8_t *out;
  size_t room;
  int crc; // 0: the CRC-32 of the members is not computed (the caller checks the content otherwise)
  napi_ref keep; // `out`: alive and in place until the job is done
  size_t produced;
  int err;
  const char *damage;
  napi_deferred deferred;
  napi_async_work work;
} inflate_job;

#define GZIP_HEADER 10
#define GZIP_TRAILER 8

static __thread uint8_t *raw_buf = NULL;
static __thread size_t raw_size = 0;
static __thread struct libdeflate_decompressor *decompressor = NULL;

static uint8_t *raw_buffer(size_t size) {
  if (size <= raw_size) return raw_buf;
  size_t want = raw_size > 0 ? raw_size : (1 << 20);
  while (want < size) want *= 2;
  uint8_t *grown = malloc(want);
  if (!grown) return NULL;
  free(raw_buf);
  raw_buf = grown;
  raw_size = want;
  return raw_buf;
}

static void execute(napi_env env, void *data) {
  (void)env;
  inflate_job *job = data;
  uint8_t *raw = raw_buffer(job->length > 0 ? job->length : 1);
  if (!decompressor) decompressor = libdeflate_alloc_decompressor();
  if (!raw || !decompressor) { job->err = ENOMEM; return; }
  for (size_t got = 0; got < job->length;) {
    ssize_t n = pread(job->fd, raw + got, job->length - got, (off_t)(job->offset + (int64_t)got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job->err = errno; return; }
    if (n == 0) { job->err = EIO; job->damage = "short"; return; }
    got += (size_t)n;
  }
  // One entry of the list may be several gzip members one after the other.
  for (size_t at = 0; at < job->length;) {
    size_t used = 0, made = 0;
    uint8_t *out = job->out + job->produced;
    size_t room = job->room - job->produced, left = job->length - at;
    enum libdeflate_result r;
    const uint8_t *m = raw + at;
    // Without the CRC: the header a backup writes (deflate, no flags), the deflate data, then
    // the trailer's length checked. Any other header goes through libdeflate's gzip path.
    if (!job->crc && left >= GZIP_HEADER + GZIP_TRAILER && m[0] == 0x1f && m[1] == 0x8b && m[2] == 8 && m[3] == 0) {
      r = libdeflate_deflate_decompress_ex(decompressor, m + GZIP_HEADER, left - GZIP_HEADER - GZIP_TRAILER, out, room, &used, &made);
      if (r == LIBDEFLATE_SUCCESS) {
        const uint8_t *t = m + GZIP_HEADER + used;
        uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        if (isize != (uint32_t)made) { job->err = EIO; job->damage = "data"; return; }
        used += GZIP_HEADER + GZIP_TRAILER;
      }
    } else {
      r = libdeflate_gzip_decompress_ex(decompressor, m, left, out, room, &used, &made);
    }
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE) { job->err = EIO; job->damage = "long"; return; }
    if (r != LIBDEFLATE_SUCCESS || used == 0) { job->err = EIO; job->damage = "data"; return; }
    at += used;
    job->produced += made;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  inflate_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value n;
    napi_create_double(env, (double)job->produced, &n);
    napi_resolve_deferred(env, job->deferred, n);
  } else {
    napi_value error = errno_error(env, job->err ? job->err : EIO), stage;
    napi_create_string_utf8(env, job->damage ? "damaged" : "read", NAPI_AUTO_LENGTH, &stage);
    napi_set_named_property(env, error, "stage", stage);
    if (job->damage) {
      napi_value text;
      napi_create_string_utf8(env, job->damage, NAPI_AUTO_LENGTH, &text);
      napi_set_named_property(env, error, "damage", text);
    }
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value inflate_member(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  bool crc = true;
  int32_t fd = -1;
  int64_t offset = -1, length = -1;
  void *out = NULL;
  size_t room = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0
      || napi_get_value_int64(env, argv[1], &offset) != napi_ok || offset < 0
      || napi_get_value_int64(env, argv[2], &length) != napi_ok || length < 0 || length > (1LL << 31)
      || napi_get_buffer_info(env, argv[3], &out, &room) != napi_ok
      || (argc >= 5 && napi_get_value_bool(env, argv[4], &crc) != napi_ok)) {
    napi_throw_type_error(env, NULL, "inflateMember(fd, offset, length (at most 2 GiB), out: Buffer, crc?: boolean)");
    return NULL;
  }
  inflate_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->offset = offset;
  job->length = (size_t)length;
  job->out = out;
  job->room = room;
  job->crc = crc;
  napi_create_reference(env, argv[3], 1, &job->keep);
  return start_pool_job(env, "tidemark:inflateMember", execute, complete, job, &job->deferred, &job->work);
}
