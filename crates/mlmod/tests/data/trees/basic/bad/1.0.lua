setenv("BAD_SET", "1")
this is not ( valid lua
