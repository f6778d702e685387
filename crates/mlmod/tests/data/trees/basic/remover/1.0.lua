remove_path("PATH", "/opt/old/bin")
remove_path("REMOVER_LIST", "r2")
remove_path{"REMOVER_SEMI", "x", delim=";"}
