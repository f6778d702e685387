setenv("HID_LOADED", myModuleFullName())
