-- a whatis line, then a syntax error: Lmod's help and whatis show what they have
whatis("Description: early")
if then
