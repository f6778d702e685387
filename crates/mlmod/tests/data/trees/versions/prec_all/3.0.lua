setenv("PREC_ALL_LOADED", myModuleFullName())
