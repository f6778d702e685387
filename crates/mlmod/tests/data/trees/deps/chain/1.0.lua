depends_on("usedep")
setenv("CHAIN_SET", "1")
