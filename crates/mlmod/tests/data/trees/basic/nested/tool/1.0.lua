setenv("NESTED_NAME", myModuleName())
setenv("NESTED_VERSION", myModuleVersion())
setenv("NESTED_FULL", myModuleFullName())
