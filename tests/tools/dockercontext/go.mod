module wca.local/dockercontext

go 1.25

require github.com/moby/patternmatcher v0.6.1
