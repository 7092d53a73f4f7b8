{
  "targets": [{
    "target_name": "tidefs_fuse",
    "sources": ["tidefs-fuse.c"],
    "include_dirs": ["<!(node -e \"require('fuse-shared-library/include')\")"],
    "libraries": ["<!(node -e \"require('fuse-shared-library/lib')\")"],
    "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
  }]
}
