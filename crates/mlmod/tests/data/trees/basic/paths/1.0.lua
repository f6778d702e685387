-- Path-like variables: prepend/append/remove, several entries at once,
-- a custom delimiter (positional and table form).
prepend_path("PATH", "/opt/paths/bin")
append_path("PATH", "/opt/paths/tail")
prepend_path("MANPATH", "/opt/paths/man")
prepend_path("PATHS_MULTI", "/m/one:/m/two")
append_path("PATHS_MULTI", "/m/three")
append_path("PATHS_SEMI", "s1", ";")
append_path("PATHS_SEMI", "s2", ";")
prepend_path{"PATHS_SEMI", "s0", delim=";"}
append_path{"PATHS_SPACE", "w1", delim=" "}
append_path{"PATHS_SPACE", "w2", delim=" "}
prepend_path("PATHS_TWICE", "/t/a")
prepend_path("PATHS_TWICE", "/t/b")
prepend_path("PATHS_TWICE", "/t/a")
