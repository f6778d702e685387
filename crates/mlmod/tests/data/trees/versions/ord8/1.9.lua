setenv("ORD8_LOADED", myModuleFullName())
