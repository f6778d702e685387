prereq_any("missing", "other", "base")
setenv("USEPREREQANY_SET", "1")
