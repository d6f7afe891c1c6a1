// The one native module of Tidemark (dist/server/native/tidemark.node): what Node.js has no
// call for. peercred.c: SO_PEERCRED of the bridge socket; file-times.c: utimensat/futimens with
// nanoseconds for restores; syncfs.c: syncfs(2) on libuv's pool, to flush a destination;
// write-file.c: a new file written (and hashed) in one job on libuv's pool, for backups;
// link-many.c: hard links in batches on libuv's pool, for incremental backups; sha256-stream.c:
// a SHA-256 updated on libuv's pool, for the hash of a whole archive; restore-file.c: a new
// file created, written and given its owner, mode and times in one job on libuv's pool, for restores;
// tar-pump.c: the archive structure's tar copied from the account worker's pipe to the destination
// file and hashed (each file, and the tar digest) on libuv's pool; splice-file.c: a large file's content
// moved into that pipe (or the entry stream's socket) by the account worker without copies;
// open-files.c: a folder's stored files opened for reads in one job on libuv's pool, for restores.
// io-priority.c: ioprio_get/ioprio_set(2) of the calling thread, or ioprio_set(2) of one thread by id,
// for the I/O priority of a worker.
// exit-now.c: _exit(2), the end of a process without the tear-down of its helper threads.
// gzip-block.c (where libdeflate was found at build time): a compressed snapshot's block of gzip
// members made on libuv's pool; inflate-member.c: one entry of its member list inflated on the
// pool into a Buffer the restore writer reuses.
// malloc-policy.c: glibc's mmap threshold fixed, so that freed large Buffers go back to the system.
// aligned-buffer.c: a Buffer that starts on a page, for content a pool job writes.
// list-dir.c: a folder's entries sorted, each with its lstat fields, in one call, for the account
// worker's walk; fstat and lstat into the same fields.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <node_api.h>
#include "errno-error.h"

napi_value get_peer_cred(napi_env env, napi_callback_info info);
napi_value set_times(napi_env env, napi_callback_info info);
napi_value set_fd_times(napi_env env, napi_callback_info info);
napi_value syncfs_async(napi_env env, napi_callback_info info);
napi_value syncfs_sync(napi_env env, napi_callback_info info);
napi_value write_new_file(napi_env env, napi_callback_info info);
napi_value write_new_files(napi_env env, napi_callback_info info);
napi_value sched_batch(napi_env env, napi_callback_info info);
napi_value restore_new_file(napi_env env, napi_callback_info info);
napi_value restore_file_from(napi_env env, napi_callback_info info);
napi_value restore_files_from(napi_env env, napi_callback_info info);
napi_value restore_new_files(napi_env env, napi_callback_info info);
napi_value send_with_fds(napi_env env, napi_callback_info info);
napi_value recv_with_fds(napi_env env, napi_callback_info info);
napi_value socket_pair(napi_env env, napi_callback_info info);
napi_value set_send_buffer(napi_env env, napi_callback_info info);
napi_value send_fd_sync(napi_env env, napi_callback_info info);
napi_value take_fd(napi_env env, napi_callback_info info);
napi_value hash_supported(napi_env env, napi_callback_info info);
napi_value link_many(napi_env env, napi_callback_info info);
napi_value thread_io_priority(napi_env env, napi_callback_info info);
napi_value link_blobs(napi_env env, napi_callback_info info);
napi_value sha256_open(napi_env env, napi_callback_info info);
napi_value sha256_update(napi_env env, napi_callback_info info);
napi_value sha256_digest(napi_env env, napi_callback_info info);
napi_value tar_pipe(napi_env env, napi_callback_info info);
napi_value splice_to_pipe(napi_env env, napi_callback_info info);
napi_value send_file_to(napi_env env, napi_callback_info info);
napi_value tar_pump_open(napi_env env, napi_callback_info info);
napi_value tar_pump_read(napi_env env, napi_callback_info info);
napi_value tar_pump_process(napi_env env, napi_callback_info info);
napi_value tar_pump_write(napi_env env, napi_callback_info info);
napi_value tar_pump_digest(napi_env env, napi_callback_info info);
napi_value open_files_at(napi_env env, napi_callback_info info);
napi_value malloc_policy(napi_env env, napi_callback_info info);
napi_value exit_now(napi_env env, napi_callback_info info);
napi_value io_priority(napi_env env, napi_callback_info info);
napi_value page_aligned_buffer(napi_env env, napi_callback_info info);
napi_value list_dir(napi_env env, napi_callback_info info);
napi_value fstat_fields(napi_env env, napi_callback_info info);
napi_value lstat_fields(napi_env env, napi_callback_info info);
#ifdef TM_LIBDEFLATE
napi_value gzip_block(napi_env env, napi_callback_info info);
napi_value inflate_member(napi_env env, napi_callback_info info);
#endif

napi_value errno_error(napi_env env, int err) {
  const char *name = strerrorname_np(err);
  napi_value code, msg, error;
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  return error;
}

napi_value start_pool_job(napi_env env, const char *name, napi_async_execute_callback execute,
                          napi_async_complete_callback complete, void *job, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, execute, complete, job, work);
  napi_queue_async_work(env, *work);
  return promise;
}

void settle_void(napi_env env, napi_deferred deferred, napi_status status, int err) {
  if (status == napi_ok && err == 0) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, deferred, undef);
  } else {
    napi_reject_deferred(env, deferred, errno_error(env, err ? err : EIO));
  }
}

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
  export_function(env, exports, "writeNewFile", write_new_file);
  export_function(env, exports, "writeNewFiles", write_new_files);
  export_function(env, exports, "schedBatch", sched_batch);
  export_function(env, exports, "restoreNewFile", restore_new_file);
  export_function(env, exports, "restoreFileFrom", restore_file_from);
  export_function(env, exports, "restoreFilesFrom", restore_files_from);
  export_function(env, exports, "restoreNewFiles", restore_new_files);
  export_function(env, exports, "sendWithFds", send_with_fds);
  export_function(env, exports, "recvWithFds", recv_with_fds);
  export_function(env, exports, "socketPair", socket_pair);
  export_function(env, exports, "setSendBuffer", set_send_buffer);
  export_function(env, exports, "sendFdSync", send_fd_sync);
  export_function(env, exports, "takeFd", take_fd);
  export_function(env, exports, "hashSupported", hash_supported);
  export_function(env, exports, "linkMany", link_many);
  export_function(env, exports, "linkBlobs", link_blobs);
  export_function(env, exports, "sha256Open", sha256_open);
  export_function(env, exports, "sha256Update", sha256_update);
  export_function(env, exports, "sha256Digest", sha256_digest);
  export_function(env, exports, "tarPipe", tar_pipe);
  export_function(env, exports, "spliceToPipe", splice_to_pipe);
  export_function(env, exports, "sendFileTo", send_file_to);
  export_function(env, exports, "tarPumpOpen", tar_pump_open);
  export_function(env, exports, "tarPumpRead", tar_pump_read);
  export_function(env, exports, "tarPumpProcess", tar_pump_process);
  export_function(env, exports, "tarPumpWrite", tar_pump_write);
  export_function(env, exports, "tarPumpDigest", tar_pump_digest);
  export_function(env, exports, "openFilesAt", open_files_at);
  export_function(env, exports, "mallocPolicy", malloc_policy);
  export_function(env, exports, "exitNow", exit_now);
  export_function(env, exports, "ioPriority", io_priority);
  export_function(env, exports, "threadIoPriority", thread_io_priority);
  export_function(env, exports, "pageAlignedBuffer", page_aligned_buffer);
  export_function(env, exports, "listDir", list_dir);
  export_function(env, exports, "fstatFields", fstat_fields);
  export_function(env, exports, "lstatFields", lstat_fields);
#ifdef TM_LIBDEFLATE
  export_function(env, exports, "gzipBlock", gzip_block);
  export_function(env, exports, "inflateMember", inflate_member);
#endif
  return exports;
}
