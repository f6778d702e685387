module_version("prec_rcver/2.0", "default")
