pushenv("STACK", "B")
setenv("PUSHB_SET", "1")
