// ioPriority() -> number: the calling thread's I/O priority as ioprio_get(2) gives it
// (class << 13 | level). ioPriority(value) sets it (ioprio_set(2)) and returns it. Only the
// calling thread: root's main thread takes a worker's priority for the moment it starts the
// worker, which inherits it (politeness.ts), instead of an ionice(1) process started first.
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <node_api.h>
#include "errno-error.h"

#define IOPRIO_WHO_PROCESS 1

napi_value io_priority(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) {
    int32_t value;
    if (napi_get_value_int32(env, argv[0], &value) != napi_ok || value < 0 || value > 0xffff) {
      napi_throw_range_error(env, NULL, "ioPriority(value): value is class << 13 | level");
      return NULL;
    }
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) != 0) {
      napi_throw(env, errno_error(env, errno));
      return NULL;
    }
  }
  long got = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
  if (got < 0) {
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  napi_create_int32(env, (int32_t)got, &out);
  return out;
}

// threadIoPriority(tid, value) -> number: ioprio_set(2) of one thread of this process (its tid);
// 0, or the errno (ESRCH: the thread has ended). An account worker, started at full priority,
// takes the configured I/O priority this way on each of its threads before it reads the home
// (politeness.ts): the priority is per thread, and libuv's pool threads do the reads.
napi_value thread_io_priority(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t tid = 0, value = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &tid) != napi_ok || tid <= 0
      || napi_get_value_int32(env, argv[1], &value) != napi_ok || value < 0 || value > 0xffff) {
    napi_throw_range_error(env, NULL, "threadIoPriority(tid, value): a thread id, and class << 13 | level");
    return NULL;
  }
  int err = syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, value) == 0 ? 0 : errno;
  napi_create_int32(env, err, &out);
  return out;
}
