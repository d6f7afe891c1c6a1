// exitNow(code): ends the process at once with `code` (_exit(2)): no atexit handlers, no
// static destructors, no tear-down of V8's platform or of libuv's thread pool.
//
// Why: Node's process.exit still disposes of V8's platform (joining its worker threads) and
// runs the C library's exit handlers and static destructors (libuv's pool joined) before the
// process ends: 3-8 ms of CPU for a bare `node -e` (perf stat, 4 x 20 runs, 19-27 against
// 22-30 ms), paid by root and by the account worker of every backup. The caller has done every
// write it needs (Node's writes to pipes and files are synchronous on Linux) and run the 'exit'
// listeners itself.
#define _GNU_SOURCE
#include <node_api.h>
#include <unistd.h>

napi_value exit_now(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &code) != napi_ok || code < 0 || code > 255) {
    napi_throw_range_error(env, NULL, "exitNow(code): code between 0 and 255");
    return NULL;
  }
  _exit(code);
}
