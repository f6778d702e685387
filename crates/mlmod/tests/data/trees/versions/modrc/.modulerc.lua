module_version("modrc/2.0", "default")
module_version("modrc/1.0", "stable", "old")
