family("comp")
setenv("COMP_NAME", myModuleFullName())
prepend_path("PATH", "/opt/compb/1.0/bin")
