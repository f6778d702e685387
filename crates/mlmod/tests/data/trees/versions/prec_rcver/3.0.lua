setenv("PREC_RCVER_LOADED", myModuleFullName())
