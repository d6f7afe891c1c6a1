{
  "variables": {
    "libdeflate%": "<!(test -f /usr/include/libdeflate.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "tidemark",
      "sources": ["module.c", "peercred.c", "file-times.c", "syncfs.c", "write-file.c", "restore-file.c", "iovec.c", "link-many.c", "sha256.c", "sha256-stream.c", "tar-pump.c", "splice-file.c", "pass-fds.c", "open-files.c", "malloc-policy.c", "exit-now.c", "io-priority.c", "sched-batch.c", "aligned-buffer.c", "list-dir.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-Werror=int-conversion", "-O2"],
      "conditions": [
        ["libdeflate==1", {
          "sources": ["gzip-block.c", "inflate-member.c"],
          "defines": ["TM_LIBDEFLATE"],
          "libraries": ["-ldeflate", "-lm"]
        }]
      ]
    }
  ]
}
