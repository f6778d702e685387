local stack = myFileName():match("/MPI/(.*)/[^/]+/[^/]+$")
prepend_path("LD_LIBRARY_PATH", pathJoin("/opt", stack, "fftw/lib"))
setenv("HIER_FFTW", stack)
