setenv("ALIASED_LOADED", myModuleFullName())
