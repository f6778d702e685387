setenv("ORD9_LOADED", myModuleFullName())
