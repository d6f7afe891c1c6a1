#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include "iovec.h"

bool tm_iovec_of_buffers(napi_env env, napi_value array, uint32_t count, struct iovec *iov) {
  for (uint32_t i = 0; i < count; i++) {
    napi_value part;
    bool is_buffer = false;
    void *base = NULL;
    size_t len = 0;
    if (napi_get_element(env, array, i, &part) != napi_ok || napi_is_buffer(env, part, &is_buffer) != napi_ok || !is_buffer
        || napi_get_buffer_info(env, part, &base, &len) != napi_ok) {
      return false;
    }
    iov[i].iov_base = base;
    iov[i].iov_len = len;
  }
  return true;
}

int tm_write_all(int fd, struct iovec *iov, size_t count) {
  size_t i = 0;
  while (i < count) {
    if (iov[i].iov_len == 0) { i++; continue; }
    int n = count - i > IOV_MAX ? IOV_MAX : (int)(count - i);
    ssize_t w = writev(fd, iov + i, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    // A short write: skip what went out and go on from there.
    size_t left = (size_t)w;
    while (i < count && left >= iov[i].iov_len) left -= iov[i++].iov_len;
    if (i < count && left > 0) {
      iov[i].iov_base = (char *)iov[i].iov_base + left;
      iov[i].iov_len -= left;
    }
  }
  return 0;
}
