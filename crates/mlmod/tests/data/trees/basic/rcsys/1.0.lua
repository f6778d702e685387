-- Touches entries that were in PATH before any module was loaded.
prepend_path("PATH", "/bin")
append_path("PATH", "/usr/bin")
