setenv("PART_LOADED", myModuleFullName())
