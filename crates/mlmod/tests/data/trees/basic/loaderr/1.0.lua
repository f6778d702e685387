-- loads a module that raises LmodError: the whole load must fail
setenv("LOADERR_SET", "1")
prepend_path("PATH", "/opt/loaderr/bin")
load("err")
