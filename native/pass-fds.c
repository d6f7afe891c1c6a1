// Descriptors handed from root to the restore writer over a Unix socket pair (SCM_RIGHTS):
// root opens each stored file (a blob, or the archive) after the checks it makes for its own
// reads, and the writer reads, hashes and writes the content itself (restore-file.c,
// restoreFileFrom), instead of the bytes crossing a pipe between the two processes.
//   socketPair() -> [a, b]: AF_UNIX SOCK_STREAM, both close-on-exec.
//   sendWithFds(sock, data, fds, closeFds) -> Promise: all of `data` in order, the descriptors
//     (at most MAX_FDS) attached to its first byte; with closeFds they are closed after (or
//     when the send failed), on a pool thread.
//   recvWithFds(sock, buffer, offset, length) -> Promise<[bytes, fds]>: one recvmsg into the
//     buffer; the descriptors that came with those bytes (close-on-exec). Each must be a
//     regular file: anything else is closed and the receive fails with EBADF (root never sends
//     another kind; a socket that carries one is not root's).
// Linux's Unix stream sockets never join bytes that carry descriptors with the bytes of a later
// send, so the descriptors of a batch arrive no later than its first byte.
// The backup's descriptor channel, the other way (the account worker hands root the files it
// opened, backup-reader.ts), is synchronous on both ends:
//   sendFdSync(sock, fd): one byte with `fd` attached, blocking until the socket takes it.
//   takeFd(sock) -> fd: the next descriptor, without waiting (MSG_DONTWAIT): root asks only
//     once a record says one was sent before it, so none there is the worker's fault (EAGAIN).
//     Exactly one descriptor, of a regular file, or it fails (EBADF) with all of them closed.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-error.h"

#define MAX_FDS 250

typedef struct {
  int sock;
  char *data;
  size_t length;
  int fds[MAX_FDS];
  uint32_t nfds;
  int close_fds;
  napi_ref keep;
  ssize_t got;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} fd_job;

static void send_execute(napi_env env, void *data) {
  (void)env;
  fd_job *job = data;
  size_t sent = 0;
  int err = 0;
  while (sent < job->length || (job->length == 0 && job->nfds > 0 && sent == 0)) {
    struct iovec iov = { job->data + sent, job->length - sent };
    char one = 0;
    if (job->length == 0) { iov.iov_base = &one; iov.iov_len = 1; }
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; } control;
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sent == 0 && job->nfds > 0) {
      memset(&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * job->nfds);
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * job->nfds);
      memcpy(CMSG_DATA(c), job->fds, sizeof(int) * job->nfds);
    }
    ssize_t n = sendmsg(job->sock, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (job->length == 0) break;
    sent += (size_t)n;
  }
  if (job->close_fds) for (uint32_t i = 0; i < job->nfds; i++) close(job->fds[i]);
  job->err = err;
}

static void free_job(napi_env env, fd_job *job) {
  if (job->keep) napi_delete_reference(env, job->keep);
  free(job);
}

static void send_complete(napi_env env, napi_status status, void *data) {
  fd_job *job = data;
  settle_void(env, job->deferred, status, job->err);
  napi_delete_async_work(env, job->work);
  free_job(env, job);
}

napi_value send_with_fds(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t sock = -1;
  void *buf = NULL;
  size_t len = 0;
  bool is_array = false, close_fds = false;
  uint32_t nfds = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0
      || napi_get_buffer_info(env, argv[1], &buf, &len) != napi_ok
      || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, argv[2], &nfds) != napi_ok || nfds > MAX_FDS
      || napi_get_value_bool(env, argv[3], &close_fds) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendWithFds(sock, data: Buffer, fds: number[] (at most 250), closeFds: boolean)");
    return NULL;
  }
  fd_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    int32_t fd = -1;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok || fd < 0) {
      free(job);
      napi_throw_type_error(env, NULL, "sendWithFds: every descriptor must be a non-negative number");
      return NULL;
    }
    job->fds[i] = fd;
  }
  job->sock = sock;
  job->data = buf;
  job->length = len;
  job->nfds = nfds;
  job->close_fds = close_fds;
  napi_create_reference(env, argv[1], 1, &job->keep);
  return start_pool_job(env, "tidemark:sendWithFds", send_execute, send_complete, job, &job->deferred, &job->work);
}

static void recv_execute(napi_env env, void *data) {
  (void)env;
  fd_job *job = data;
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * 253)]; } control;
  for (;;) {
    struct iovec iov = { job->data, job->length };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n = recvmsg(job->sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { job->err = errno; return; }
    job->got = n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *fds = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) {
        if (job->nfds < MAX_FDS) job->fds[job->nfds++] = fds[i];
        else { close(fds[i]); job->err = EMSGSIZE; }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) job->err = EMSGSIZE;
    for (uint32_t i = 0; !job->err && i < job->nfds; i++) {
      struct stat st;
      if (fstat(job->fds[i], &st) != 0 || !S_ISREG(st.st_mode)) job->err = EBADF;
    }
    if (job->err) {
      for (uint32_t i = 0; i < job->nfds; i++) close(job->fds[i]);
      job->nfds = 0;
    }
    return;
  }
}

static void recv_complete(napi_env env, napi_status status, void *data) {
  fd_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value result, got, fds;
    napi_create_array_with_length(env, 2, &result);
    napi_create_int64(env, job->got, &got);
    napi_create_array_with_length(env, job->nfds, &fds);
    for (uint32_t i = 0; i < job->nfds; i++) {
      napi_value v;
      napi_create_int32(env, job->fds[i], &v);
      napi_set_element(env, fds, i, v);
    }
    napi_set_element(env, result, 0, got);
    napi_set_element(env, result, 1, fds);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->err ? job->err : EIO));
  }
  napi_delete_async_work(env, job->work);
  free_job(env, job);
}

napi_value recv_with_fds(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t sock = -1;
  void *buf = NULL;
  size_t len = 0;
  int64_t offset = 0, length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4
      || napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0
      || napi_get_buffer_info(env, argv[1], &buf, &len) != napi_ok
      || napi_get_value_int64(env, argv[2], &offset) != napi_ok
      || napi_get_value_int64(env, argv[3], &length) != napi_ok
      || offset < 0 || length <= 0 || (uint64_t)offset + (uint64_t)length > len) {
    napi_throw_type_error(env, NULL, "recvWithFds(sock, buffer, offset, length): a range inside the buffer");
    return NULL;
  }
  fd_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->sock = sock;
  job->data = (char *)buf + offset;
  job->length = (size_t)length;
  napi_create_reference(env, argv[1], 1, &job->keep);
  return start_pool_job(env, "tidemark:recvWithFds", recv_execute, recv_complete, job, &job->deferred, &job->work);
}

napi_value socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  napi_value result, a, b;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, sv[0], &a);
  napi_create_int32(env, sv[1], &b);
  napi_set_element(env, result, 0, a);
  napi_set_element(env, result, 1, b);
  return result;
}

napi_value send_fd_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t sock = -1, fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0
      || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "sendFdSync(sock, fd)");
    return NULL;
  }
  char one = 0;
  struct iovec iov = { &one, 1 };
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == 1) return NULL;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // A socket left non-blocking by whoever made it: wait until it takes the byte.
      struct timespec pause = { 0, 1000000 };
      nanosleep(&pause, NULL);
      continue;
    }
    napi_throw(env, errno_error(env, n < 0 ? errno : EIO));
    return NULL;
  }
}

napi_value take_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t sock = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1
      || napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0) {
    napi_throw_type_error(env, NULL, "takeFd(sock)");
    return NULL;
  }
  // Room for more than one: extra descriptors a hostile sender attached are received, then closed.
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * 8)]; } control;
  char byte;
  ssize_t n;
  struct msghdr msg;
  do {
    struct iovec iov = { &byte, 1 };
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) { napi_throw(env, errno_error(env, errno)); return NULL; }
  int got[16];
  size_t count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *fds = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) {
      if (count < 16) got[count++] = fds[i];
      else close(fds[i]);
    }
  }
  struct stat st;
  int err = 0;
  if (n == 0) err = EPIPE;
  else if (count != 1 || (msg.msg_flags & MSG_CTRUNC)) err = EBADF;
  else if (fstat(got[0], &st) != 0 || !S_ISREG(st.st_mode)) err = EBADF;
  if (err) {
    for (size_t i = 0; i < count; i++) close(got[i]);
    napi_throw(env, errno_error(env, err));
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, got[0], &result);
  return result;
}

// setSendBuffer(sock, bytes): the socket's send buffer, as large as asked where the caller may
// go beyond the system's limit (SO_SNDBUFFORCE, root), else up to that limit; answers the size
// the kernel set (it doubles what it is given, for its own bookkeeping).
napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t sock = -1, bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2
      || napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0
      || napi_get_value_int32(env, argv[1], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, NULL, "setSendBuffer(sock, bytes)");
    return NULL;
  }
  if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0
      && setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) {
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  int got = 0;
  socklen_t len = sizeof got;
  if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0) {
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, got, &result);
  return result;
}
