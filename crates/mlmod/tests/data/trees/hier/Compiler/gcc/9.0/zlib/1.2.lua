local comp = myFileName():match("/Compiler/(.*)/[^/]+/[^/]+$")
prepend_path("LD_LIBRARY_PATH", pathJoin("/opt", comp, "zlib/lib"))
setenv("HIER_ZLIB", comp)
