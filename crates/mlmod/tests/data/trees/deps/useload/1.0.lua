load("base/1.0")
setenv("USELOAD_SET", "1")
