prepend_path("PATH", "/opt/cmake/3.0/bin")
