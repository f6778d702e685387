family("comp")
setenv("COMP_NAME", myModuleFullName())
prepend_path("PATH", "/opt/compb/2.0/bin")
