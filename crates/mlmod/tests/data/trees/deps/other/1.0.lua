setenv("OTHER_SET", "1")
