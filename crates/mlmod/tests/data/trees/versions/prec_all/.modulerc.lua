module_version("prec_all/2.0", "default")
