-- Plain variables: setenv with awkward values, unsetenv, pushenv.
whatis("Name: env")
help([[Sets, unsets and pushes plain variables.]])
setenv("ENV_A", "a1")
setenv("ENV_SPACES", "two words  and\ttab")
setenv("ENV_QUOTES", [[it's "quoted" $HOME `tick` \back ; & | * ?]])
setenv("ENV_UTF8", "grüße")
unsetenv("ENV_GONE")
pushenv("ENV_PUSHED", "from-env")
