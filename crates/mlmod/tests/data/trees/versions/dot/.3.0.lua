setenv("DOT_LOADED", myModuleFullName())
