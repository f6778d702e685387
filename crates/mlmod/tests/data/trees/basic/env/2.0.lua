setenv("ENV_A", "a2")
setenv("ENV_TWO", "only-in-2.0")
