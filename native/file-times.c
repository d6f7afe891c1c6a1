// setTimes(path, sec, nsec, noFollow) and setFdTimes(fd, sec, nsec): access and modification
// times to the nanosecond (utimensat/futimens). Node's utimes takes a double of seconds and
// libuv keeps microseconds, so restored files would differ from the originals and be stored
// again by the next incremental run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <node_api.h>
#include "errno-error.h"

static int read_times(napi_env env, napi_value sec_v, napi_value nsec_v, struct timespec ts[2]) {
  int64_t sec;
  int32_t nsec;
  if (napi_get_value_int64(env, sec_v, &sec) != napi_ok || napi_get_value_int32(env, nsec_v, &nsec) != napi_ok || nsec < 0 || nsec > 999999999) {
    napi_throw_type_error(env, NULL, "times are whole seconds and 0-999999999 nanoseconds");
    return -1;
  }
  ts[0].tv_sec = ts[1].tv_sec = (time_t)sec;
  ts[0].tv_nsec = ts[1].tv_nsec = nsec;
  return 0;
}

napi_value set_times(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "setTimes(path, sec, nsec, noFollow)");
    return NULL;
  }
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || len == 0 || len > 4095 || memchr(data, 0, len)) {
    napi_throw_type_error(env, NULL, "setTimes: the path is a Buffer without NUL bytes");
    return NULL;
  }
  char path[4096];
  memcpy(path, data, len);
  path[len] = 0;
  struct timespec ts[2];
  if (read_times(env, argv[1], argv[2], ts) != 0) return NULL;
  bool no_follow = false;
  napi_get_value_bool(env, argv[3], &no_follow);
  if (utimensat(AT_FDCWD, path, ts, no_follow ? AT_SYMLINK_NOFOLLOW : 0) != 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  return NULL;
}

napi_value set_fd_times(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "setFdTimes(fd, sec, nsec)");
    return NULL;
  }
  struct timespec ts[2];
  if (read_times(env, argv[1], argv[2], ts) != 0) return NULL;
  if (futimens(fd, ts) != 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  return NULL;
}
