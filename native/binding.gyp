{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c", "file-times.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
