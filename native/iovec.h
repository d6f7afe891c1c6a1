// The buffers of a JS array as an iovec, and writing an iovec in full: shared by the pool jobs
// that create a file and write its content (write-file.c, restore-file.c).
#ifndef TIDEMARK_IOVEC_H
#define TIDEMARK_IOVEC_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <node_api.h>

// Fills iov[0..count) with the memory of the Buffers in `array`; false when an element is not
// a Buffer. The caller keeps a reference to `array` until the memory is no longer used.
bool tm_iovec_of_buffers(napi_env env, napi_value array, uint32_t count, struct iovec *iov);

// Writes every byte of iov[0..count) (short writes and EINTR go on where they stopped; the
// iovec is consumed); 0 or the errno of the failing write.
int tm_write_all(int fd, struct iovec *iov, size_t count);

#endif
