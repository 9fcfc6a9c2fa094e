# Settings for every host. Every key, its default and meaning: README.md "Settings"
# (generated from the SETTINGS of each deploys/<tier>.py). No secrets here.
