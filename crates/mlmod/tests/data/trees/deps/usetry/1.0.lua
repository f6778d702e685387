try_load("missing")
try_load("other")
setenv("USETRY_SET", "1")
