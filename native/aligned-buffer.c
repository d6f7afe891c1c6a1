// pageAlignedBuffer(size) -> Buffer: `size` bytes (not cleared) starting on a page boundary,
// freed when the Buffer is collected. For memory that is reused to hold file content a pool
// job writes: the kernel copies a write into the page cache about ten times slower on this
// kind of AMD machine when the source is not aligned as the page cache's pages are (malloc's
// large blocks, and with them Node's large Buffers, start 16 bytes into a page).
#define _GNU_SOURCE
#include <stdlib.h>
#include <node_api.h>

static void release(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

napi_value page_aligned_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t size = 0;
  void *mem = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1
      || napi_get_value_int64(env, argv[0], &size) != napi_ok || size < 1 || size > (1LL << 30)) {
    napi_throw_range_error(env, NULL, "pageAlignedBuffer(size): size between 1 byte and 1 GiB");
    return NULL;
  }
  if (posix_memalign(&mem, 4096, (size_t)size) != 0) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (napi_create_external_buffer(env, (size_t)size, mem, release, NULL, &out) != napi_ok) {
    free(mem);
    napi_throw_error(env, NULL, "pageAlignedBuffer: no external Buffer");
    return NULL;
  }
  return out;
}
