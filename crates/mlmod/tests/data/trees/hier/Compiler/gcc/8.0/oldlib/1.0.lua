setenv("HIER_OLDLIB", "1")
