setenv("DEFLINK_LOADED", myModuleFullName())
