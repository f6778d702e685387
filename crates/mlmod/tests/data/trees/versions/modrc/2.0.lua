setenv("MODRC_LOADED", myModuleFullName())
