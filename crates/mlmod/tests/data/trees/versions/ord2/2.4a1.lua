setenv("ORD2_LOADED", myModuleFullName())
