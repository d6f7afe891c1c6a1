{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c", "file-times.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "syncfs",
      "sources": ["syncfs.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
