//go:build cgo

package cfsm

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// TestMain runs 1,000 drawn runs of each model (100 with -short, as the
// race detector's run has it) unless -rapid.checks says otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		f.Value.Set(map[bool]string{false: "1000", true: "100"}[testing.Short()])
	}
	os.Exit(m.Run())
}

// events is how many events each drawn run fires.
const events = 200

// TestCEqualsGo: for every model, the generated C machine and the Go
// machine, started with the same drawn params and fed the same 200 drawn
// events (every event, those a state ignores too; new params now and then;
// a new machine when one ends), take the same branch, move to the same
// state and ask for the same effects in the same order at every step, hold
// the same variables, and agree on which params are out of bounds and
// which invariants are violated.
func TestCEqualsGo(t *testing.T) {
	if len(pairs) != 5 {
		t.Fatalf("%d models bridged, want the 5 of model/", len(pairs))
	}
	for _, mk := range pairs {
		t.Run(mk.name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				p := mk.new(t)
				defer func() {
					if p != nil { // a draw that ran out of data (rapid shrinking) may leave none
						p.free()
					}
				}()
				same(t, "start", p)
				g, c := p.start()
				agree(t, "start", g, c)
				for i := range events {
					at := fmt.Sprintf("event %d", i+1)
					switch {
					case p.final():
						p.free()
						p = nil
						p = mk.new(t)
						same(t, at+": a new machine", p)
						g, c := p.start()
						agree(t, at+": start", g, c)
					case rapid.IntRange(0, 19).Draw(t, "new params") == 0:
						p.setParams(t)
						same(t, at+": new params", p)
					}
					p.drawGuards(t)
					g, c := p.fire(rapid.IntRange(1, p.events()).Draw(t, "event"))
					agree(t, at, g, c)
					same(t, at, p)
				}
			})
		})
	}
}

func agree(t *rapid.T, at string, g, c step) {
	if !reflect.DeepEqual(normal(g), normal(c)) {
		t.Fatalf("%s: the machines differ\n  Go: %+v\n  C:  %+v", at, g, c)
	}
}

// normal makes no effects and an empty list of them alike.
func normal(s step) step {
	if len(s.effects) == 0 {
		s.effects = nil
	}
	return s
}

// same checks state, variables and verdicts.
func same(t *rapid.T, at string, p pair) {
	if g, c := p.state(); g != c {
		t.Fatalf("%s: state %d in Go, %d in C", at, g, c)
	}
	if g, c := p.vars(); !reflect.DeepEqual(g, c) {
		t.Fatalf("%s: variables %v in Go, %v in C", at, g, c)
	}
	if g, c := p.validate(); !reflect.DeepEqual(g, c) {
		t.Fatalf("%s: params out of bounds %q in Go, %q in C", at, g, c)
	}
	if g, c := p.checkAlways(); !reflect.DeepEqual(g, c) {
		t.Fatalf("%s: invariants violated %q in Go, %q in C", at, g, c)
	}
}
