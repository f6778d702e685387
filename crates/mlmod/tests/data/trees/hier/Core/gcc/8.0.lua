-- A compiler: unlocks its own sub-tree of MODULEPATH.
local root = myFileName():match("^(.*)/Core/")
family("compiler")
prepend_path("MODULEPATH", pathJoin(root, "Compiler", myModuleName(), myModuleVersion()))
prepend_path("PATH", pathJoin("/opt/gcc", myModuleVersion(), "bin"))
setenv("HIER_CC", myModuleFullName())
