setenv("ERR_SET", "1")
prepend_path("PATH", "/opt/err/bin")
set_alias("errali", "true")
if mode() == "load" then
   LmodError("err refuses to load")
end
