// Stored files opened for reads in batches, on libuv's pool: root opens the blobs of an
// incremental snapshot for a restore (to hand their descriptors to the account's writer,
// pass-fds.c) with one call per batch instead of three synchronous system calls per blob on
// its main thread. Each file gets the checks of LocalDestination.openForReads:
//   - fstatat(AT_SYMLINK_NOFOLLOW) first, so that nothing but a regular file is ever opened
//     (opening a device or a fifo can have effects, or block);
//   - openat relative to the folder's descriptor (which the caller opened after checking the
//     folder), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC: a link put there
//     after the fstatat is never followed (ELOOP);
//   - fstat of what was opened: a regular file, the same device and inode as the fstatat saw
//     (else it was replaced in between, and is refused).
// A name must be one component (no '/', not empty, not "." or ".."): it can never reach
// outside the folder.
//   openFilesAt(dirFd, names) -> Promise<Float64Array>: `names` is one string, the names
//     joined by '/' (which no name can hold); three numbers per name, in order:
//     kind (0 a regular file, opened; 1 missing; 2 a directory; 3 a symbolic link; 4 anything
//     else, or replaced while opened; 5 a failed system call), then the descriptor (kind 0)
//     or the errno (kind 5), then the size (kind 0). The caller closes the descriptors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

#define MAX_NAMES 4096
#define MAX_NAME 255

enum { OPENED = 0, MISSING = 1, DIRECTORY = 2, LINK = 3, OTHER = 4, FAILED = 5 };

typedef struct {
  int dir;
  uint32_t count;
  char *text;
  char **names;
  uint8_t *bad_name;
  double *out;
  napi_deferred deferred;
  napi_async_work work;
} open_job;

static void open_one(int dir, const char *name, double *out) {
  struct stat st, opened;
  out[0] = OPENED;
  out[1] = -1;
  out[2] = 0;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) out[0] = MISSING;
    else { out[0] = FAILED; out[1] = errno; }
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    out[0] = S_ISDIR(st.st_mode) ? DIRECTORY : S_ISLNK(st.st_mode) ? LINK : OTHER;
    return;
  }
  int fd;
  do fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) out[0] = LINK;
    else if (errno == ENOENT) out[0] = MISSING;
    else { out[0] = FAILED; out[1] = errno; }
    return;
  }
  if (fstat(fd, &opened) != 0) {
    out[0] = FAILED;
    out[1] = errno;
    close(fd);
    return;
  }
  if (!S_ISREG(opened.st_mode) || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
    out[0] = OTHER;
    close(fd);
    return;
  }
  out[1] = fd;
  out[2] = (double)opened.st_size;
}

static void open_execute(napi_env env, void *data) {
  (void)env;
  open_job *job = data;
  for (uint32_t i = 0; i < job->count; i++) {
    double *out = job->out + 3 * i;
    if (job->bad_name[i]) {
      out[0] = FAILED;
      out[1] = EINVAL;
      out[2] = 0;
      continue;
    }
    open_one(job->dir, job->names[i], out);
  }
}

static void free_job(open_job *job) {
  free(job->text);
  free(job->names);
  free(job->bad_name);
  free(job->out);
  free(job);
}

static void open_complete(napi_env env, napi_status status, void *data) {
  open_job *job = data;
  if (status != napi_ok) {
    // Not run (cancelled): nothing was opened.
    napi_reject_deferred(env, job->deferred, errno_error(env, EIO));
  } else {
    napi_value buffer, result;
    void *bytes = NULL;
    size_t length = 3 * (size_t)job->count * sizeof(double);
    napi_create_arraybuffer(env, length, &bytes, &buffer);
    if (length > 0) memcpy(bytes, job->out, length);
    napi_create_typedarray(env, napi_float64_array, 3 * (size_t)job->count, buffer, 0, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

napi_value open_files_at(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t dir;
  size_t length = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &dir) != napi_ok || dir < 0
      || napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok || length > MAX_NAMES * (MAX_NAME + 1)) {
    napi_throw_type_error(env, NULL, "openFilesAt(dirFd, names): a descriptor and the names joined by '/'");
    return NULL;
  }
  open_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw(env, errno_error(env, ENOMEM)); return NULL; }
  job->dir = dir;
  job->text = malloc(length + 1);
  if (!job->text) { free_job(job); napi_throw(env, errno_error(env, ENOMEM)); return NULL; }
  napi_get_value_string_utf8(env, argv[1], job->text, length + 1, &length);
  // One name per '/'-separated piece (an empty string: one empty name, refused below).
  uint32_t count = 1;
  for (size_t i = 0; i < length; i++) if (job->text[i] == '/') count++;
  if (count > MAX_NAMES) { free_job(job); napi_throw_type_error(env, NULL, "openFilesAt: at most 4096 names"); return NULL; }
  job->count = count;
  job->names = calloc(count, sizeof *job->names);
  job->bad_name = calloc(count, 1);
  job->out = calloc(3 * (size_t)count, sizeof(double));
  if (!job->names || !job->bad_name || !job->out) { free_job(job); napi_throw(env, errno_error(env, ENOMEM)); return NULL; }
  char *p = job->text;
  char *end = job->text + length;
  for (uint32_t i = 0; i < count; i++) {
    char *slash = memchr(p, '/', (size_t)(end - p));
    char *stop = slash ? slash : end;
    *stop = '\0';
    size_t len = (size_t)(stop - p);
    job->names[i] = p;
    // A NUL inside a name would cut it short: refused, as are "", ".", ".." and over-long names.
    job->bad_name[i] = len == 0 || len > MAX_NAME || strlen(p) != len || strcmp(p, ".") == 0 || strcmp(p, "..") == 0;
    p = stop + 1;
  }
  return start_pool_job(env, "tidemark.openFilesAt", open_execute, open_complete, job, &job->deferred, &job->work);
}
