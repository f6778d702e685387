setenv("ORD10_LOADED", myModuleFullName())
