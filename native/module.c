// The one native module of Tidemark (dist/server/native/tidemark.node): what Node.js has no
// call for. peercred.c: SO_PEERCRED of the bridge socket; file-times.c: utimensat/futimens with
// nanoseconds for restores; syncfs.c: syncfs(2) on libuv's pool, to flush a destination.
#include <node_api.h>

napi_value get_peer_cred(napi_env env, napi_callback_info info);
napi_value set_times(napi_env env, napi_callback_info info);
napi_value set_fd_times(napi_env env, napi_callback_info info);
napi_value syncfs_async(napi_env env, napi_callback_info info);
napi_value syncfs_sync(napi_env env, napi_callback_info info);

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  export_function(env, exports, "getPeerCred", get_peer_cred);
  export_function(env, exports, "setTimes", set_times);
  export_function(env, exports, "setFdTimes", set_fd_times);
  export_function(env, exports, "syncfs", syncfs_async);
  export_function(env, exports, "syncfsSync", syncfs_sync);
  return exports;
}
