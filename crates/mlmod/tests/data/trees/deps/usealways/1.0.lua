always_load("base")
setenv("USEALWAYS_SET", "1")
