hide_version("hid/3.0")
