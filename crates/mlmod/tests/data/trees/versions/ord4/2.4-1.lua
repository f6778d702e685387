setenv("ORD4_LOADED", myModuleFullName())
