-- help and one whatis line, then a run-time error (as easybuild IRIS/2.0.1)
help([[help text of late/1.0]])
whatis("Description: given before the error")
no_such_function()
