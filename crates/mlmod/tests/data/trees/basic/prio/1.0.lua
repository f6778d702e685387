prepend_path{"PATH", "/opt/prio/high", priority=100}
prepend_path("PATH", "/opt/prio/normal")
append_path{"PATH", "/opt/prio/last", priority=100}
append_path("PATH", "/opt/prio/tail")
