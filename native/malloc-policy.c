// mallocPolicy(threshold[, trim]) -> number: fixes glibc's mmap threshold at `threshold` bytes
// (mallopt M_MMAP_THRESHOLD), which also stops glibc from raising it, and the trim threshold
// with it, on its own; `trim` sets that one too (M_TRIM_THRESHOLD). Returns the threshold set,
// or 0 where it cannot be set (not glibc).
//
// Why: glibc starts with a 128 KiB threshold and, each time a mapped block is freed, raises it
// to that block's size (up to 32 MiB). Node's Buffers of 1-4 MiB (stream chunks, read
// windows) then come from the brk heap and the threads' arenas, which keep their freed
// memory: at 200,000 files that was 10-25 MiB of each process's peak. With the threshold
// fixed, a large Buffer is its own mapping, returned to the system when it is freed.
#define _GNU_SOURCE
#include <node_api.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

napi_value malloc_policy(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int64_t threshold = 0, trim = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int64(env, argv[0], &threshold) != napi_ok || threshold < 4096 || threshold > (32 << 20)) {
    napi_throw_range_error(env, NULL, "mallocPolicy(threshold): threshold between 4096 and 32 MiB bytes");
    return NULL;
  }
  if (argc >= 2 && (napi_get_value_int64(env, argv[1], &trim) != napi_ok || trim < 4096 || trim > (64 << 20))) {
    napi_throw_range_error(env, NULL, "mallocPolicy(threshold, trim): trim between 4096 and 64 MiB bytes");
    return NULL;
  }
  int64_t set = 0;
#ifdef __GLIBC__
  if (mallopt(M_MMAP_THRESHOLD, (int)threshold) == 1) set = threshold;
  if (set && trim > 0 && mallopt(M_TRIM_THRESHOLD, (int)trim) != 1) set = 0;
#endif
  napi_create_int64(env, set, &out);
  return out;
}
