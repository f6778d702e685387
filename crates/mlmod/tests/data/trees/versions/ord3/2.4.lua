setenv("ORD3_LOADED", myModuleFullName())
