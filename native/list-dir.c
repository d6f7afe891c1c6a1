// listDir(path) -> [names, fields]: a folder's entries, sorted by their bytes, each with the
// fields of its lstat taken relative to the open folder (fstatat, AT_SYMLINK_NOFOLLOW), in one
// call; fstatFields(fd) and lstatFields(path) -> fields of one. For the account worker's walk:
// lstat of each whole path through Node made a BigIntStats (14 BigInts, 4 Dates) per entry,
// and with them a quarter of a second incremental's walk went to the garbage collector.
//
// `names` is a Buffer of the names end to end; `fields` a Float64Array of FIELDS numbers per
// entry, in the order of the F_ constants below (server/native/list-dir.ts names them). An
// entry whose fstatat failed (removed since the listing) has its errno in F_ERRNO and no
// other fields. The folder is opened with O_DIRECTORY | O_NOFOLLOW: a folder replaced by a
// symbolic link after the caller's lstat is refused (ENOTDIR), never followed.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

enum { F_NAME_START, F_NAME_LENGTH, F_ERRNO, F_MODE, F_UID, F_GID, F_SIZE, F_MTIME_SEC, F_MTIME_NSEC, F_NLINK,
       F_DEV_HIGH, F_DEV_LOW, F_INO_HIGH, F_INO_LOW, FIELDS };

typedef struct { char *name; size_t length; } listed;

static int by_bytes(const void *a, const void *b) {
  const listed *x = a, *y = b;
  size_t n = x->length < y->length ? x->length : y->length;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->length > y->length) - (x->length < y->length);
}

static void put_stat(double *f, const struct stat *st) {
  f[F_MODE] = st->st_mode;
  f[F_UID] = st->st_uid;
  f[F_GID] = st->st_gid;
  f[F_SIZE] = (double)st->st_size;
  f[F_MTIME_SEC] = (double)st->st_mtim.tv_sec;
  f[F_MTIME_NSEC] = (double)st->st_mtim.tv_nsec;
  f[F_NLINK] = (double)st->st_nlink;
  f[F_DEV_HIGH] = (double)((uint64_t)st->st_dev >> 32);
  f[F_DEV_LOW] = (double)((uint64_t)st->st_dev & 0xffffffffu);
  f[F_INO_HIGH] = (double)((uint64_t)st->st_ino >> 32);
  f[F_INO_LOW] = (double)((uint64_t)st->st_ino & 0xffffffffu);
}

static napi_value float_array(napi_env env, size_t count, double **data) {
  napi_value ab, arr;
  void *raw;
  if (napi_create_arraybuffer(env, count * sizeof(double), &raw, &ab) != napi_ok) return NULL;
  if (napi_create_typedarray(env, napi_float64_array, count, ab, 0, &arr) != napi_ok) return NULL;
  if (count) memset(raw, 0, count * sizeof(double));
  *data = raw;
  return arr;
}

/** A path argument given as a Buffer, copied NUL-terminated (a path may hold any byte but NUL). */
static char *path_arg(napi_env env, napi_value v) {
  bool is_buffer = false;
  void *data;
  size_t len;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, v, &data, &len) != napi_ok
      || memchr(data, 0, len)) return NULL;
  char *p = malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, data, len);
  p[len] = 0;
  return p;
}

static char *one_path(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  char *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1) p = path_arg(env, argv[0]);
  if (!p) napi_throw_type_error(env, NULL, usage);
  return p;
}

napi_value list_dir(napi_env env, napi_callback_info info) {
  char *path = one_path(env, info, "listDir(path): the folder's path as a Buffer without NUL");
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  free(path);
  if (fd < 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  DIR *dir = fdopendir(fd);
  if (!dir) { int e = errno; close(fd); napi_throw(env, errno_error(env, e)); return NULL; }

  listed *items = NULL;
  size_t count = 0, room = 0, bytes = 0;
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (!d) { err = errno; break; }
    if (d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0))) continue;
    if (count == room) {
      size_t more = room ? room * 2 : 256;
      listed *grown = realloc(items, more * sizeof *items);
      if (!grown) { err = ENOMEM; break; }
      items = grown;
      room = more;
    }
    size_t length = strlen(d->d_name);
    char *name = malloc(length + 1);
    if (!name) { err = ENOMEM; break; }
    memcpy(name, d->d_name, length + 1);
    items[count++] = (listed){ name, length };
    bytes += length;
  }
  napi_value result = NULL;
  if (!err) {
    qsort(items, count, sizeof *items, by_bytes);
    double *f;
    void *names;
    napi_value names_buffer, fields = float_array(env, count * FIELDS, &f);
    if (fields && napi_create_buffer(env, bytes, &names, &names_buffer) == napi_ok
        && napi_create_array_with_length(env, 2, &result) == napi_ok) {
      size_t at = 0;
      for (size_t i = 0; i < count; i++, f += FIELDS) {
        memcpy((char *)names + at, items[i].name, items[i].length);
        f[F_NAME_START] = (double)at;
        f[F_NAME_LENGTH] = (double)items[i].length;
        at += items[i].length;
        struct stat st;
        if (fstatat(dirfd(dir), items[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0) put_stat(f, &st);
        else f[F_ERRNO] = errno;
      }
      napi_set_element(env, result, 0, names_buffer);
      napi_set_element(env, result, 1, fields);
    } else {
      result = NULL;
      err = ENOMEM;
    }
  }
  for (size_t i = 0; i < count; i++) free(items[i].name);
  free(items);
  closedir(dir);
  if (err) { napi_throw(env, errno_error(env, err)); return NULL; }
  return result;
}

static napi_value stat_result(napi_env env, int err, const struct stat *st) {
  if (err) { napi_throw(env, errno_error(env, err)); return NULL; }
  double *f;
  napi_value arr = float_array(env, FIELDS, &f);
  if (arr) put_stat(f, st);
  return arr;
}

napi_value fstat_fields(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "fstatFields(fd)");
    return NULL;
  }
  struct stat st;
  int err = fstat(fd, &st) == 0 ? 0 : errno;
  return stat_result(env, err, &st);
}

napi_value lstat_fields(napi_env env, napi_callback_info info) {
  char *path = one_path(env, info, "lstatFields(path): the path as a Buffer without NUL");
  if (!path) return NULL;
  struct stat st;
  int err = lstat(path, &st) == 0 ? 0 : errno;
  free(path);
  return stat_result(env, err, &st);
}
