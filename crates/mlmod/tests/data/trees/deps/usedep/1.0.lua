depends_on("base")
setenv("USEDEP_SET", "1")
