-- An MPI library built with one compiler: unlocks MPI/<compiler>/<mpi>.
local root, comp = myFileName():match("^(.*)/Compiler/(.*)/[^/]+/[^/]+$")
family("mpi")
prepend_path("MODULEPATH", pathJoin(root, "MPI", comp, myModuleName(), myModuleVersion()))
prepend_path("PATH", pathJoin("/opt", comp, myModuleFullName(), "bin"))
setenv("HIER_MPI", myModuleFullName() .. " for " .. comp)
