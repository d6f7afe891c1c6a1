// SHA-256 from the OpenSSL inside Node.js, found by name at run time (sha256.c): a Node.js
// built without its own OpenSSL symbols only loses what needs it (tm_sha256_available).
#ifndef TIDEMARK_SHA256_H
#define TIDEMARK_SHA256_H
#include <stddef.h>

int tm_sha256_available(void);
/** NULL when out of memory or unavailable. */
void *tm_sha256_new(void);
/** Starts the context again, a digest taken or not; 0, or an errno. */
int tm_sha256_reset(void *ctx);
/** 0, or an errno. */
int tm_sha256_update(void *ctx, const void *data, size_t len);
/** Writes the 32-byte digest; 0, or an errno. The context can no longer be updated. */
int tm_sha256_final(void *ctx, unsigned char out[32]);
void tm_sha256_free(void *ctx);

#endif
