LmodMessage("a message from msg")
setenv("MSG_SET", "1")
