-- Introspection functions.
setenv("INFO_NAME", myModuleName())
setenv("INFO_VERSION", myModuleVersion())
setenv("INFO_FULL", myModuleFullName())
setenv("INFO_FILE", myFileName())
setenv("INFO_MODE", mode())
setenv("INFO_JOIN", pathJoin("/a/", "b", "c/", "d"))
setenv("INFO_JOIN2", pathJoin("rel", "x//y", ""))
setenv("INFO_GETENV", (os.getenv("MLDIFF_INPUT") or "none") .. "!")
if isloaded("env") then
   setenv("INFO_ISLOADED", "yes")
else
   setenv("INFO_ISLOADED", "no")
end
if mode() == "load" then
   setenv("INFO_LOADING", "1")
end
