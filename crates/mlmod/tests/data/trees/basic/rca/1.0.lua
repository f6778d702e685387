prepend_path("PATH", "/opt/shared/bin")
prepend_path("PATH", "/opt/rca/bin")
prepend_path("LD_LIBRARY_PATH", "/opt/shared/lib")
