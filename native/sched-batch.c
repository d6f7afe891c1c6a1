// schedBatch(tid) -> number: puts one thread of this process under SCHED_BATCH (its nice value
// is kept); 0, or the errno of sched_setscheduler.
//
// Why: root's event loop hands work to libuv's pool thread by thread, and each hand-over wakes a
// pool thread. A woken SCHED_OTHER thread may take the processor from the thread that woke it,
// so on a busy machine the event loop, which feeds every other thread, lost its processor once
// per file handed over. A SCHED_BATCH thread never preempts on wake-up (the scheduler's tick
// decides), so the pool works through its queue while the event loop keeps running.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <node_api.h>

napi_value sched_batch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t tid = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &tid) != napi_ok || tid <= 0) {
    napi_throw_range_error(env, NULL, "schedBatch(tid): a thread id");
    return NULL;
  }
  struct sched_param param = { .sched_priority = 0 };
  int err = sched_setscheduler(tid, SCHED_BATCH, &param) == 0 ? 0 : errno;
  napi_create_int32(env, err, &out);
  return out;
}
