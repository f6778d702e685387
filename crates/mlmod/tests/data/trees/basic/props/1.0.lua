whatis("Name: props")
whatis("Description: properties, whatis, help and extensions")
help([[Long help
over two lines.]])
add_property("state", "testing")
add_property("arch", "gpu")
extensions("numpy/1.26, scipy/1.11")
setenv("PROPS_SET", "1")
