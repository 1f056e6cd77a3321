module github.com/sipfailover/sipfailover

go 1.26.0

require (
	github.com/looplab/fsm v1.0.3
	go.yaml.in/yaml/v3 v3.0.6
)

require golang.org/x/tools v0.39.0

require pgregory.net/rapid v1.3.0 // indirect
