prepend_path("PATH", "/opt/prio2/bin")
append_path("PATH", "/opt/prio2/tail")
