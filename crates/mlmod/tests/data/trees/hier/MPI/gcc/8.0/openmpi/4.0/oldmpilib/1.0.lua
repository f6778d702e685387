setenv("HIER_OLDMPILIB", "1")
