// gzipBlock(data, out, level) -> Promise<number>: one block of a compressed snapshot's .tar.gz
// (server/engine/format/parallel-gzip.ts) made on libuv's pool with libdeflate, written into
// `out` (the caller's, at least gzipBlockBound(data.length) bytes); resolves with the bytes
// written. The same plan as the JavaScript one: every 16 KiB cell is classified by the order-0
// entropy of every 4th byte (a level-1 trial decides doubtful cells, and the middle of a long
// run of stored cells); a run of cells that compresses is deflated at `level`, one that does not
// is stored. Each run is a gzip member of its own (libdeflate compresses whole buffers into a
// final deflate block, so runs cannot share one stream): their concatenation is still one
// gzip file for gzip, pigz, tar and zlib, and a block of one kind is one member as before.
// libdeflate's level 6 compresses as small as zlib's level 6 at 2-3 times its speed.
// Without libdeflate at build time (binding.gyp), gzipBlock is not exported and the caller
// uses zlib.
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <libdeflate.h>
#include "errno-error.h"

#define CELL (16 * 1024)
#define STORED_MAX 65535
#define MAX_LEVEL 12

static const uint8_t HEADER[10] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};

// libuv's pool threads live as long as the process: each keeps its compressors.
static __thread struct libdeflate_compressor *compressors[MAX_LEVEL + 1];

static struct libdeflate_compressor *compressor(int level) {
  if (!compressors[level]) compressors[level] = libdeflate_alloc_compressor(level);
  return compressors[level];
}

static double log2_table[4097];
static int log2_ready;

static double sampled_entropy(const uint8_t *d, size_t len) {
  uint32_t hist[256] = {0};
  uint32_t n = 0;
  for (size_t i = 0; i < len; i += 4) { hist[d[i]]++; n++; }
  double s = 0;
  for (int k = 0; k < 256; k++) {
    uint32_t c = hist[k];
    if (c > 1) s += c * (c < 4097 ? log2_table[c] : log2((double)c));
  }
  return log2((double)n) - s / n;
}

// True when a level-1 trial saves less than 3 %. `scratch`: room for the trial's output.
static int trial_says_store(const uint8_t *d, size_t len, uint8_t *scratch, size_t room) {
  struct libdeflate_compressor *c = compressor(1);
  if (!c) return 0;
  size_t n = libdeflate_deflate_compress(c, d, len, scratch, room);
  // 0: did not fit in `room` (about len): it did not compress.
  return n == 0 || n > len * 0.97;
}

enum { STORE = 0, COMPRESS = 1 };

static int classify(const uint8_t *d, size_t len, uint8_t *scratch, size_t room) {
  double h = sampled_entropy(d, len);
  if (h < 7.2) return COMPRESS;
  if (h >= 7.8) return STORE;
  return trial_says_store(d, len, scratch, room) ? STORE : COMPRESS;
}

static size_t stored_member(const uint8_t *d, size_t len, uint8_t *out) {
  uint8_t *o = out;
  memcpy(o, HEADER, sizeof HEADER);
  o += sizeof HEADER;
  if (len == 0) {
    const uint8_t empty[5] = {1, 0, 0, 0xff, 0xff};
    memcpy(o, empty, 5);
    o += 5;
  }
  for (size_t at = 0; at < len; at += STORED_MAX) {
    size_t n = len - at < STORED_MAX ? len - at : STORED_MAX;
    o[0] = at + n == len ? 1 : 0;
    o[1] = n & 0xff; o[2] = n >> 8; o[3] = ~n & 0xff; o[4] = (~n >> 8) & 0xff;
    memcpy(o + 5, d + at, n);
    o += 5 + n;
  }
  uint32_t crc = libdeflate_crc32(0, d, len);
  uint32_t size = (uint32_t)len;
  for (int i = 0; i < 4; i++) o[i] = (crc >> (8 * i)) & 0xff;
  for (int i = 0; i < 4; i++) o[4 + i] = (size >> (8 * i)) & 0xff;
  return (size_t)(o + 8 - out);
}

typedef struct {
  const uint8_t *data;
  size_t len;
  uint8_t *out;
  size_t room;
  int level;
  size_t written;
  int err;
  napi_ref keep_data, keep_out;
  napi_deferred deferred;
  napi_async_work work;
} block_job;

// Appends the member of data[start, end) to the job's output.
static int emit(block_job *job, size_t start, size_t end, int compress) {
  const uint8_t *d = job->data + start;
  size_t len = end - start;
  size_t left = job->room - job->written;
  uint8_t *o = job->out + job->written;
  if (compress) {
    struct libdeflate_compressor *c = compressor(job->level);
    if (!c) return ENOMEM;
    size_t n = libdeflate_gzip_compress(c, d, len, o, left);
    if (n > 0 && n < len + 18) { job->written += n; return 0; }
    // Did not fit or did not shrink: stored instead.
  }
  size_t need = 18 + len + 5 * (len / STORED_MAX + 1);
  if (need > left) return ENOBUFS;
  job->written += stored_member(d, len, o);
  return 0;
}

static void execute(napi_env env, void *data) {
  (void)env;
  block_job *job = data;
  size_t len = job->len;
  if (len == 0 || job->level <= 0) { job->err = emit(job, 0, len, 0); return; }
  size_t cells = (len + CELL - 1) / CELL;
  uint8_t *cls = malloc(cells);
  uint8_t *scratch = malloc(CELL);
  if (!cls || !scratch) { free(cls); free(scratch); job->err = ENOMEM; return; }
  for (size_t i = 0; i < cells; i++) {
    size_t start = i * CELL, end = start + CELL < len ? start + CELL : len;
    cls[i] = end - start < 1024 ? (i > 0 ? cls[i - 1] : COMPRESS) : classify(job->data + start, end - start, scratch, CELL);
  }
  for (size_t i = 0; i < cells && job->err == 0;) {
    size_t j = i + 1;
    while (j < cells && cls[j] == cls[i]) j++;
    size_t start = i * CELL, end = j * CELL < len ? j * CELL : len;
    int compress = cls[i] == COMPRESS;
    // A long stored run: one trial in its middle catches repeated data with high byte
    // entropy (which the entropy estimate cannot see).
    if (!compress && end - start >= 4 * CELL) {
      size_t mid = start + (end - start - CELL) / 2;
      compress = !trial_says_store(job->data + mid, CELL, scratch, CELL);
    }
    job->err = emit(job, start, end, compress);
    i = j;
  }
  free(cls);
  free(scratch);
}

static void complete(napi_env env, napi_status status, void *data) {
  block_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value n;
    napi_create_double(env, (double)job->written, &n);
    napi_resolve_deferred(env, job->deferred, n);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err ? job->err : EIO));
  }
  napi_delete_reference(env, job->keep_data);
  napi_delete_reference(env, job->keep_out);
  napi_delete_async_work(env, job->work);
  free(job);
}

static int bytes_of(napi_env env, napi_value v, uint8_t **base, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *base = p;
  return 1;
}

napi_value gzip_block(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint8_t *in = NULL, *out = NULL;
  size_t in_len = 0, out_len = 0;
  int32_t level = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !bytes_of(env, argv[0], &in, &in_len)
      || !bytes_of(env, argv[1], &out, &out_len) || napi_get_value_int32(env, argv[2], &level) != napi_ok || level < 0 || level > MAX_LEVEL) {
    napi_throw_type_error(env, NULL, "gzipBlock(data: Uint8Array, out: Uint8Array, level: 0-12)");
    return NULL;
  }
  if (!log2_ready) {
    for (int i = 1; i < 4097; i++) log2_table[i] = log2((double)i);
    log2_ready = 1;
  }
  block_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->data = in; job->len = in_len; job->out = out; job->room = out_len; job->level = level;
  napi_create_reference(env, argv[0], 1, &job->keep_data);
  napi_create_reference(env, argv[1], 1, &job->keep_out);
  return start_pool_job(env, "tidemark:gzipBlock", execute, complete, job, &job->deferred, &job->work);
}
