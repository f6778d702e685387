setenv("TCLVER_LOADED", myModuleFullName())
