prereq("base")
setenv("USEPREREQ_SET", "1")
