depends_on("base")
setenv("USEDEP2_SET", "1")
