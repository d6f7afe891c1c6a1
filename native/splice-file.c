// spliceToPipe(fileFd, pipeFd, length) -> number: moves up to `length` bytes of a file, from its
// current position, into a pipe with splice(2), blocking while the pipe is full; returns how
// many moved (fewer at the end of the file, or before an error thrown by the next call). For the
// account worker's tar in the archive structure: the page cache's pages go into the pipe root
// reads, without the read into the worker's buffer and the write out of it (two copies of every
// byte of a large file).
//
// sendFileTo(fileFd, outFd, length) -> number: the same with sendfile(2), for an output that is
// a socket (the account worker's entry stream to root, a socket pair).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

typedef ssize_t (*move_fn)(int from, int to, size_t count);

static ssize_t by_splice(int from, int to, size_t count) { return splice(from, NULL, to, NULL, count, SPLICE_F_MOVE); }
static ssize_t by_sendfile(int from, int to, size_t count) { return sendfile(to, from, NULL, count); }

static napi_value move_file_bytes(napi_env env, napi_callback_info info, move_fn move, const char *usage) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t from = -1, to = -1;
  double length = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3
      || napi_get_value_int32(env, argv[0], &from) != napi_ok || napi_get_value_int32(env, argv[1], &to) != napi_ok
      || napi_get_value_double(env, argv[2], &length) != napi_ok || from < 0 || to < 0 || !(length >= 0) || length > 9007199254740991.0) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  size_t left = (size_t)length, moved = 0;
  while (left > 0) {
    ssize_t n = move(from, to, left < (1u << 30) ? left : (1u << 30));
    if (n > 0) { moved += (size_t)n; left -= (size_t)n; continue; }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      // An output left non-blocking: wait for room instead of spinning.
      struct pollfd pfd = { .fd = to, .events = POLLOUT };
      (void)poll(&pfd, 1, -1);
      continue;
    }
    // What moved is reported; the error comes again, with nothing moved, on the next call.
    if (moved > 0) break;
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  napi_value result;
  napi_create_double(env, (double)moved, &result);
  return result;
}

napi_value splice_to_pipe(napi_env env, napi_callback_info info) {
  return move_file_bytes(env, info, by_splice, "spliceToPipe(fileFd, pipeFd, length)");
}

napi_value send_file_to(napi_env env, napi_callback_info info) {
  return move_file_bytes(env, info, by_sendfile, "sendFileTo(fileFd, outFd, length)");
}
