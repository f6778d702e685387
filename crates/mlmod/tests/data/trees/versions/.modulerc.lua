module_alias("mlalias", "aliased/1.0")
