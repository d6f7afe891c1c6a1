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
