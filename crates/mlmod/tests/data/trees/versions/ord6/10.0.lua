setenv("ORD6_LOADED", myModuleFullName())
