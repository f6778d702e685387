pushenv("STACK", "A")
