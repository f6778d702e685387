-- A dependency name with a trailing space, as easybuild's DiMSum has: Lmod trims it.
if not ( isloaded("base/1.0 ") ) then
    load("base/1.0 ")
end
setenv("SPACEDEP", "1")
