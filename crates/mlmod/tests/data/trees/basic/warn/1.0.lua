LmodWarning("a warning from warn")
setenv("WARN_SET", "1")
