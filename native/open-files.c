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
//   openFilesAt(dirFd, names) -> Promise<number[]>: three numbers per name, in order:
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
  char (*names)[MAX_NAME + 1];
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
    napi_value result;
    napi_create_array_with_length(env, 3 * job->count, &result);
    for (uint32_t i = 0; i < 3 * job->count; i++) {
      napi_value v;
      napi_create_double(env, job->out[i], &v);
      napi_set_element(env, result, i, v);
    }
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
  bool is_array = false;
  uint32_t count = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &dir) != napi_ok || dir < 0
      || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[1], &count) != napi_ok || count > MAX_NAMES) {
    napi_throw_type_error(env, NULL, "openFilesAt(dirFd, names): a descriptor and an array of at most 4096 names");
    return NULL;
  }
  open_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw(env, errno_error(env, ENOMEM)); return NULL; }
  job->dir = dir;
  job->count = count;
  job->names = calloc(count ? count : 1, sizeof *job->names);
  job->bad_name = calloc(count ? count : 1, 1);
  job->out = calloc(count ? 3 * (size_t)count : 1, sizeof(double));
  if (!job->names || !job->bad_name || !job->out) { free_job(job); napi_throw(env, errno_error(env, ENOMEM)); return NULL; }
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    size_t len = 0;
    // A buffer one longer than the longest name: a longer one is cut, and found by its length.
    if (napi_get_element(env, argv[1], i, &v) != napi_ok
        || napi_get_value_string_utf8(env, v, job->names[i], MAX_NAME + 1, &len) != napi_ok) {
      free_job(job);
      napi_throw_type_error(env, NULL, "openFilesAt: every name must be a string");
      return NULL;
    }
    const char *n = job->names[i];
    job->bad_name[i] = len == 0 || len >= MAX_NAME || strlen(n) != len || strchr(n, '/') != NULL
      || strcmp(n, ".") == 0 || strcmp(n, "..") == 0;
  }
  return start_pool_job(env, "tidemark.openFilesAt", open_execute, open_complete, job, &job->deferred, &job->work);
}
