setenv("ORD7_LOADED", myModuleFullName())
