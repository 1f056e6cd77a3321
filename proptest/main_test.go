package proptest

import (
	"flag"
	"os"
	"testing"
)

// defaultSteps is the mean number of actions per rapid check here: a
// failover-and-failback story takes about ten directed steps among random
// ones, so rapid's default of 30 would seldom finish one.
const defaultSteps = "300"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.steps" })
	if !set {
		if err := flag.Set("rapid.steps", defaultSteps); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
