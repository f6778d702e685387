setenv("PREC_LINKRC_LOADED", myModuleFullName())
