// Command fsmgen regenerates fsm/ and docs/ from model/: the same as
// sipfailover gen, without building the runtime, so that go generate works
// even while the runtime does not compile against a changed model.
//
//	go run ./gen/cmd/fsmgen [-check] [-root DIR]
package main

import (
	"os"

	"github.com/sipfailover/sipfailover/gen"
)

func main() {
	os.Exit(gen.Main("gen", os.Args[1:], os.Stdout, os.Stderr))
}
