setenv("ORD5_LOADED", myModuleFullName())
