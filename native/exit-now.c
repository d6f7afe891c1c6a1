// exitNow(code): ends the process at once with `code` (_exit(2)): no atexit handlers, no
// static destructors, no tear-down of V8's platform or of libuv's thread pool.
//
// Why: Node's process.exit joins every helper thread (V8's platform workers, libuv's pool)
// before the process ends, and a backup's account worker runs its threads at nice 10 and
// SCHED_BATCH: on a busy machine each of them waited for a processor to end, and root waited
// for the worker's exit (measured: 5-40 ms between the worker's last write and its end, on
// the critical path of every backup). The caller has done every write it needs (Node's writes
// to pipes and files are synchronous on Linux) and run the 'exit' listeners itself.
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
