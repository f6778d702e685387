setenv("ORD1_LOADED", myModuleFullName())
