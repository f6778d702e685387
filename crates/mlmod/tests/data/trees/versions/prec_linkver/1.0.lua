setenv("PREC_LINKVER_LOADED", myModuleFullName())
