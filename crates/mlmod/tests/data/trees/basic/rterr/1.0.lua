setenv("RTERR_SET", "1")
local t = nil
t.field = 1
