family("comp")
setenv("COMP_NAME", myModuleFullName())
prepend_path("PATH", "/opt/compa/1.0/bin")
