-- Loads itself, as easybuild's SUM/2.5.2 does: Lmod loads it once.
conflict("selfload")
if not ( isloaded("selfload/1.0") ) then
    load("selfload/1.0")
end
prepend_path("PATH", "/opt/selfload/bin")
setenv("SELFLOAD", "1")
