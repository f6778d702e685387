module_version("prec_linkrc/2.0", "default")
