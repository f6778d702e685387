setenv("PART2_LOADED", myModuleFullName())
