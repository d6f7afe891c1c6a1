#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include "sha256.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;

static struct {
  int resolved;
  EVP_MD_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_MD_CTX *);
  const EVP_MD *(*sha256)(void);
  int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
  int (*update)(EVP_MD_CTX *, const void *, size_t);
  int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
} ossl;

// Called first on the main thread (by the functions that start jobs), so the pool's threads
// only ever read what it resolved.
int tm_sha256_available(void) {
  if (!ossl.resolved) {
    ossl.ctx_new = (EVP_MD_CTX * (*)(void)) dlsym(RTLD_DEFAULT, "EVP_MD_CTX_new");
    ossl.ctx_free = (void (*)(EVP_MD_CTX *))dlsym(RTLD_DEFAULT, "EVP_MD_CTX_free");
    ossl.sha256 = (const EVP_MD *(*)(void))dlsym(RTLD_DEFAULT, "EVP_sha256");
    ossl.init = (int (*)(EVP_MD_CTX *, const EVP_MD *, ENGINE *))dlsym(RTLD_DEFAULT, "EVP_DigestInit_ex");
    ossl.update = (int (*)(EVP_MD_CTX *, const void *, size_t))dlsym(RTLD_DEFAULT, "EVP_DigestUpdate");
    ossl.final = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))dlsym(RTLD_DEFAULT, "EVP_DigestFinal_ex");
    ossl.resolved = ossl.ctx_new && ossl.ctx_free && ossl.sha256 && ossl.init && ossl.update && ossl.final ? 1 : -1;
  }
  return ossl.resolved == 1;
}

void *tm_sha256_new(void) {
  if (!tm_sha256_available()) return NULL;
  EVP_MD_CTX *ctx = ossl.ctx_new();
  if (ctx && ossl.init(ctx, ossl.sha256(), NULL) != 1) {
    ossl.ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

int tm_sha256_reset(void *ctx) {
  return ossl.init((EVP_MD_CTX *)ctx, ossl.sha256(), NULL) == 1 ? 0 : EIO;
}

int tm_sha256_update(void *ctx, const void *data, size_t len) {
  return ossl.update((EVP_MD_CTX *)ctx, data, len) == 1 ? 0 : EIO;
}

int tm_sha256_final(void *ctx, unsigned char out[32]) {
  unsigned int len = 0;
  return ossl.final((EVP_MD_CTX *)ctx, out, &len) == 1 && len == 32 ? 0 : EIO;
}

void tm_sha256_free(void *ctx) {
  if (ctx) ossl.ctx_free((EVP_MD_CTX *)ctx);
}
