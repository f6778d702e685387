conflict("other")
setenv("USECONFLICT_SET", "1")
