prepend_path("PATH", "/opt/shared/bin")
prepend_path("PATH", "/opt/rcb/bin")
append_path("LD_LIBRARY_PATH", "/opt/shared/lib")
