setenv("BASE_V", myModuleVersion())
prepend_path("PATH", pathJoin("/opt/base", myModuleVersion(), "bin"))
