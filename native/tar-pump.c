// The archive structure's copy of the account worker's tar into the destination file, on
// libuv's pool (server/native/tar-pump.ts drives it):
//   tarPipe() -> [readFd, writeFd]: a pipe (close-on-exec, 1 MiB when the kernel allows) whose
//     write end becomes the worker's fd 4;
//   tarPumpOpen(srcFd, dstFd) -> handle, with two slots of SLOT bytes;
//   tarPumpRead(handle, slot) -> Promise<number>: fills the slot from srcFd (0: end of stream);
//   tarPumpProcess(handle, slot, len) -> Promise<Buffer>: parses the slot's bytes as tar,
//     resolving with the SHA-256 of every regular file whose content ended in them (40-byte
//     records: offset of the entry's first header block, u64 LE; digest);
//   tarPumpWrite(handle, slot, len) -> Promise<void>: writes the slot's bytes to dstFd in full;
//   tarPumpDigest(handle) -> Buffer: the stream's tar digest (integrity version 2, see
//     docs/snapshot-format.md), once every job settled.
// The tar digest is made by the parse from what it already reads: the SHA-256 of every byte
// that is not a regular file's content, with each file's content replaced by that file's own
// digest. So no second SHA-256 pass runs over the content, and the digest still covers every
// byte (each file's bytes through its own hash, which the index keeps).
// Reading one slot while the other is written and parsed keeps the worker's pipe drained; in
// JavaScript the same copy cost a callback, a promise and a pool hop per 64 KiB the event loop
// read, and the per-file SHA-256 ran on the event loop.
// The parser follows server/engine/format/tar-hasher.ts (which the compressed structure and
// builds without this addon use): the stream comes from the account worker, so whatever it
// holds only yields hashes that do not match, never more memory or a crash.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"
#include "sha256.h"

#define SLOT (1 << 20)
#define PIECE (64 << 10)
#define BLOCK 512
#define TYPE_LONG_NAME 0x4c
#define TYPE_LONG_LINK 0x4b
#define RECORD 40
// The write-out of the archive is started every FLUSH_AHEAD bytes written (see write_job).
#define FLUSH_AHEAD (16 << 20)

typedef struct {
  int src, dst;
  unsigned char *slot[2];
  int slot_busy[2];
  int reading; // 1 + the slot being read, or 0
  int parsing, writing, finished;
  void *tar; // the tar digest: every byte but regular files' content, and each such file's digest
  void *file; // the current regular file's hash (re-initialised for each file)
  uint64_t total; // bytes parsed, trailing ones included
  uint64_t written, flushed; // bytes written to dst; where the write-out started last ends
  // Parser state, as TarHasher's.
  unsigned char header[BLOCK];
  size_t header_fill;
  uint64_t pos, content_left, pad_left;
  int skipping, ended;
  int64_t entry_start;
  // Records of the current process job.
  unsigned char *out;
  size_t out_len, out_cap;
} pump;

typedef struct {
  pump *p;
  int slot;
  size_t len;
  int kind; // 0 read, 1 process, 2 write
  int err;
  size_t result;
  napi_ref keep;
  napi_deferred deferred;
  napi_async_work work;
} pump_job;

static void finalize_pump(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  pump *p = data;
  // Every job holds a reference to the handle: none is running when it is collected.
  free(p->slot[0]);
  free(p->slot[1]);
  free(p->out);
  tm_sha256_free(p->tar);
  tm_sha256_free(p->file);
  free(p);
}

static pump *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

napi_value tar_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  // A larger pipe lets the worker read ahead while a slot is written and hashed; without it, 64 KiB.
  (void)fcntl(fds[1], F_SETPIPE_SZ, SLOT);
  napi_value arr, r, w;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, arr, 0, r);
  napi_set_element(env, arr, 1, w);
  return arr;
}

napi_value tar_pump_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t src = -1, dst = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_get_value_int32(env, argv[0], &src) != napi_ok || napi_get_value_int32(env, argv[1], &dst) != napi_ok || src < 0 || dst < 0) {
    napi_throw_type_error(env, NULL, "tarPumpOpen(srcFd, dstFd)");
    return NULL;
  }
  if (!tm_sha256_available()) { napi_throw_error(env, "ENOTSUP", "SHA-256 is not available to the native module"); return NULL; }
  pump *p = calloc(1, sizeof *p);
  if (p) {
    p->src = src;
    p->dst = dst;
    p->entry_start = -1;
    p->slot[0] = malloc(SLOT);
    p->slot[1] = malloc(SLOT);
    p->tar = tm_sha256_new();
    p->file = tm_sha256_new();
  }
  if (!p || !p->slot[0] || !p->slot[1] || !p->tar || !p->file) {
    if (p) finalize_pump(env, p, NULL);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_value ext;
  napi_create_external(env, p, finalize_pump, NULL, &ext);
  return ext;
}

/** Octal or GNU base-256 (the two forms tarHeaders writes), as TarHasher's readSize. */
static uint64_t read_size(const unsigned char *h) {
  uint64_t v = 0;
  if (h[124] & 0x80) {
    for (int i = 125; i < 136; i++) v = v * 256 + h[i];
    return v;
  }
  for (int i = 124; i < 136; i++) {
    unsigned char c = h[i];
    if (c == 0x20 || c == 0) { if (v > 0) break; continue; }
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (uint64_t)(c - 0x30);
  }
  return v;
}

static int add_record(pump *p, uint64_t offset, const unsigned char digest[32]) {
  if (p->out_len + RECORD > p->out_cap) {
    size_t cap = p->out_cap ? p->out_cap * 2 : 64 * RECORD;
    unsigned char *n = realloc(p->out, cap);
    if (!n) return ENOMEM;
    p->out = n;
    p->out_cap = cap;
  }
  for (int i = 0; i < 8; i++) p->out[p->out_len + i] = (unsigned char)(offset >> (8 * i));
  memcpy(p->out + p->out_len + 8, digest, 32);
  p->out_len += RECORD;
  return 0;
}

static int end_content(pump *p) {
  int err = 0;
  if (!p->skipping) {
    unsigned char digest[32];
    err = tm_sha256_final(p->file, digest);
    if (!err) err = tm_sha256_update(p->tar, digest, 32);
    if (!err) err = add_record(p, (uint64_t)p->entry_start, digest);
  }
  // After a long-name block the real header of the same entry follows.
  unsigned char type = p->header[156];
  if (!p->skipping || (type != TYPE_LONG_NAME && type != TYPE_LONG_LINK)) p->entry_start = -1;
  p->skipping = 0;
  return err;
}

static int on_header(pump *p) {
  const unsigned char *h = p->header;
  int zero = 1;
  for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
  if (zero) { p->ended = 1; return 0; }
  unsigned char type = h[156];
  uint64_t size = read_size(h);
  p->pad_left = (BLOCK - (size % BLOCK)) % BLOCK;
  p->content_left = size;
  if (type == TYPE_LONG_NAME || type == TYPE_LONG_LINK) {
    // Part of the next entry's headers: its start stays where the first block was.
    p->skipping = 1;
    return 0;
  }
  p->skipping = !(type == 0 || type == 0x30 || type == 0x37);
  if (!p->skipping) {
    // A context whose digest was taken starts again (EVP_DigestInit_ex through tm_sha256_reset).
    int err = tm_sha256_reset(p->file);
    if (err) return err;
  }
  if (size == 0) return end_content(p);
  return 0;
}

static int scan(pump *p, const unsigned char *b, size_t len) {
  size_t o = 0;
  int err = 0;
  p->total += len;
  while (o < len && !p->ended && !err) {
    if (p->content_left > 0) {
      size_t n = len - o < p->content_left ? len - o : (size_t)p->content_left;
      // A regular file's content goes into its own hash only; anything else into the tar digest.
      err = tm_sha256_update(p->skipping ? p->tar : p->file, b + o, n);
      o += n; p->pos += n; p->content_left -= n;
      if (!err && p->content_left == 0) err = end_content(p);
      continue;
    }
    if (p->pad_left > 0) {
      size_t n = len - o < p->pad_left ? len - o : (size_t)p->pad_left;
      err = tm_sha256_update(p->tar, b + o, n);
      o += n; p->pos += n; p->pad_left -= n;
      continue;
    }
    size_t n = BLOCK - p->header_fill < len - o ? BLOCK - p->header_fill : len - o;
    memcpy(p->header + p->header_fill, b + o, n);
    err = tm_sha256_update(p->tar, b + o, n);
    if (p->header_fill == 0 && p->entry_start < 0) p->entry_start = (int64_t)p->pos;
    p->header_fill += n; o += n; p->pos += n;
    if (!err && p->header_fill == BLOCK) { p->header_fill = 0; err = on_header(p); }
  }
  // After the end-of-archive block: every byte as it is.
  if (!err && o < len) err = tm_sha256_update(p->tar, b + o, len - o);
  return err;
}

/** The end of the tar digest: a file cut short by the stream's end adds the digest of what it had, then the stream's length. */
static int finish_tar_digest(pump *p, unsigned char out[32]) {
  int err = 0;
  if (!p->ended && !p->skipping && p->content_left > 0) {
    unsigned char digest[32];
    err = tm_sha256_final(p->file, digest);
    if (!err) err = tm_sha256_update(p->tar, digest, 32);
  }
  unsigned char length[8];
  for (int i = 0; i < 8; i++) length[i] = (unsigned char)(p->total >> (8 * i));
  if (!err) err = tm_sha256_update(p->tar, length, 8);
  if (!err) err = tm_sha256_final(p->tar, out);
  return err;
}

static int read_slot(pump *p, unsigned char *b, size_t *got) {
  size_t n = 0;
  while (n < SLOT) {
    ssize_t r = read(p->src, b + n, SLOT - n);
    if (r > 0) { n += (size_t)r; continue; }
    if (r == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      // A descriptor left non-blocking: wait for it instead of spinning.
      struct pollfd pfd = { .fd = p->src, .events = POLLIN };
      (void)poll(&pfd, 1, -1);
      continue;
    }
    return errno;
  }
  *got = n;
  return 0;
}

static int write_slot(int fd, const unsigned char *b, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, b + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += (size_t)w;
  }
  return 0;
}

static void execute(napi_env env, void *data) {
  (void)env;
  pump_job *job = data;
  pump *p = job->p;
  unsigned char *b = p->slot[job->slot];
  if (job->kind == 0) {
    job->err = read_slot(p, b, &job->result);
  } else if (job->kind == 1) {
    job->err = scan(p, b, job->len);
  } else {
    // In pieces of 64 KiB, not the slot at once: the page cache takes a write into folios up to
    // the write's size, and 1 MiB folios cost the kernel compaction on a fragmented memory (the
    // copy's system time doubled, measured).
    for (size_t off = 0; off < job->len && !job->err; off += PIECE) job->err = write_slot(p->dst, b + off, job->len - off < PIECE ? job->len - off : PIECE);
    if (!job->err) {
      p->written += job->len;
      // The disk writes while the copy goes on, so the flush before the manifest waits for
      // little (the kernel's flusher would not start before the dirty limit, far above an
      // archive). Only started, never waited for: a write-out error is reported by that flush
      // (syncfs through a descriptor opened before the writes). Not a regular file (a test's
      // /dev/null): nothing to start, ESPIPE, ignored like any error here.
      if (p->written - p->flushed >= FLUSH_AHEAD) {
        (void)sync_file_range(p->dst, (off64_t)p->flushed, (off64_t)(p->written - p->flushed), SYNC_FILE_RANGE_WRITE);
        p->flushed = p->written;
      }
    }
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  pump_job *job = data;
  pump *p = job->p;
  if (job->kind == 0) { p->reading = 0; p->slot_busy[job->slot]--; }
  else if (job->kind == 1) { p->parsing = 0; p->slot_busy[job->slot]--; }
  else { p->writing = 0; p->slot_busy[job->slot]--; }
  if (status != napi_ok || job->err) {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err ? job->err : EIO));
  } else if (job->kind == 0) {
    napi_value n;
    napi_create_double(env, (double)job->result, &n);
    napi_resolve_deferred(env, job->deferred, n);
  } else if (job->kind == 1) {
    napi_value buf;
    napi_create_buffer_copy(env, p->out_len, p->out_len ? p->out : (const void *)"", NULL, &buf);
    napi_resolve_deferred(env, job->deferred, buf);
  } else {
    settle_void(env, job->deferred, status, 0);
  }
  if (job->kind == 1) p->out_len = 0;
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value start(napi_env env, napi_callback_info info, int kind) {
  static const char *const usage[] = { "tarPumpRead(handle, slot)", "tarPumpProcess(handle, slot, length)", "tarPumpWrite(handle, slot, length)" };
  size_t argc = 3;
  napi_value argv[3];
  pump *p = NULL;
  int32_t slot = -1;
  double len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (kind == 0 ? 2u : 3u) || !(p = unwrap(env, argv[0]))
      || napi_get_value_int32(env, argv[1], &slot) != napi_ok || slot < 0 || slot > 1
      || (kind != 0 && (napi_get_value_double(env, argv[2], &len) != napi_ok || len < 0 || len > SLOT))) {
    napi_throw_type_error(env, NULL, usage[kind]);
    return NULL;
  }
  // One job of each kind at a time; a slot is read only when nothing else uses it.
  int busy = p->finished || (kind == 0 ? p->reading || p->slot_busy[slot] : (kind == 1 ? p->parsing : p->writing) || p->reading == slot + 1);
  if (busy) { napi_throw_error(env, "EBUSY", "tar pump: that job or slot is busy, or the digest was taken"); return NULL; }
  pump_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->p = p;
  job->slot = slot;
  job->len = (size_t)len;
  job->kind = kind;
  if (kind == 0) p->reading = slot + 1; else if (kind == 1) p->parsing = 1; else p->writing = 1;
  p->slot_busy[slot]++;
  // The handle stays alive until the job is done.
  napi_create_reference(env, argv[0], 1, &job->keep);
  return start_pool_job(env, "tidemark:tarPump", execute, complete, job, &job->deferred, &job->work);
}

napi_value tar_pump_read(napi_env env, napi_callback_info info) { return start(env, info, 0); }
napi_value tar_pump_process(napi_env env, napi_callback_info info) { return start(env, info, 1); }
napi_value tar_pump_write(napi_env env, napi_callback_info info) { return start(env, info, 2); }

napi_value tar_pump_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  pump *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !(p = unwrap(env, argv[0]))) {
    napi_throw_type_error(env, NULL, "tarPumpDigest(handle)");
    return NULL;
  }
  if (p->finished || p->reading || p->parsing || p->writing) {
    napi_throw_error(env, "EBUSY", "tarPumpDigest: a job has not settled, or the digest was taken");
    return NULL;
  }
  unsigned char out[32];
  p->finished = 1;
  int err = finish_tar_digest(p, out);
  if (err) { napi_throw(env, errno_error(env, err)); return NULL; }
  napi_value result;
  napi_create_buffer_copy(env, 32, out, NULL, &result);
  return result;
}
