//go:build cgo

package cfsm

// #include "sipfailover_fsm.h"
// #cgo CFLAGS: -std=c99 -I${SRCDIR}/../../fsm/c
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/fsm"
)

// pair is one model's Go machine and C machine, driven together.
type pair interface {
	events() int // the model's events are 1..events()
	final() bool // the Go machine is in a final state
	drawGuards(t *rapid.T)
	setParams(t *rapid.T)
	validate() (goProblems, cProblems []string)
	start() (goStep, cStep step)
	fire(ev int) (goStep, cStep step)
	state() (goState, cState int)
	vars() (goVars, cVars []int64)
	checkAlways() (goIDs, cIDs []string)
	free()
}

// maker makes a model's pair with params drawn by t.
type maker struct {
	name string
	new  func(t *rapid.T) pair
}

// pairs has a maker for every model, each added by its generated file.
var pairs []maker

// step is a step of either machine in one comparable form.
type step struct {
	from, to, event int
	branch          string // "unknown" when none was taken
	ignored         bool
	effects         []effect
	status          string // "ok", "unhandled", "range VAR VALUE [MIN, MAX]"
}

type effect struct {
	kind, action, timer int
	after, jitter       int64
}

// status is a Go machine's error in the form cStatus gives a C status.
func status(err error) string {
	var unhandled *fsm.UnhandledError
	var r *fsm.VarRangeError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &unhandled):
		return "unhandled"
	case errors.As(err, &r):
		return fmt.Sprintf("range %s %d [%d, %d]", r.Var, r.Value, r.Min, r.Max)
	}
	return "error: " + err.Error()
}

func cStatus(s C.sf_status, v string, value, min, max int64) string {
	switch s {
	case C.SF_OK:
		return "ok"
	case C.SF_UNHANDLED:
		return "unhandled"
	case C.SF_VAR_RANGE:
		return fmt.Sprintf("range %s %d [%d, %d]", v, value, min, max)
	case C.SF_BAD_EVENT:
		return "bad event"
	case C.SF_EFFECTS_FULL:
		return "effects full"
	}
	return fmt.Sprintf("status %d", int(s))
}

// problem is a param outside its bounds, as both machines report it.
func problem(param string, above bool) string {
	if above {
		return param + " above its maximum"
	}
	return param + " below its minimum"
}

// paramProblems is a Go Validate's verdict as problems.
func paramProblems(err error) []string {
	return each(err, func(p *fsm.ParamError) string { return problem(p.Param, strings.Contains(p.Msg, "above the maximum")) })
}

// invariantIDs is a Go CheckAlways's verdict as the ids violated.
func invariantIDs(err error) []string {
	return each(err, func(inv *fsm.InvariantError) string { return inv.ID })
}

// each is what f says of every error joined in err, each of type E; one
// of another type is listed as such, so that a comparison shows it.
func each[E error](err error, f func(E) string) []string {
	var out []string
	for _, e := range unjoin(err) {
		var x E
		if !errors.As(e, &x) {
			out = append(out, fmt.Sprintf("not a %T: %v", x, e))
			continue
		}
		out = append(out, f(x))
	}
	return out
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func ptr(v int64) *int64 { return &v }

// drawInt draws an int or duration param: often one of its bounds or one
// past them (where a wrong comparison shows), or, where the model sets no
// bound, an edge of int64 (where overflow shows); else a value inside.
// A bounded param is never drawn far past its bounds: a count of
// transmissions of 2^63 takes either machine an age to sum Timer E over.
func drawInt(t *rapid.T, label string, min, max *int64, duration bool) int64 {
	lo, hi := int64(0), int64(10)
	if duration {
		lo, hi = 1e6, 10e9 // 1 ms to 10 s
	}
	if min != nil {
		lo = *min
	}
	if max != nil {
		hi = *max
	}
	if hi < lo {
		hi = lo
	}
	edges := []int64{lo, hi, lo - 1, hi + 1}
	if min == nil {
		edges = append(edges, math.MinInt64, -1, 0)
	}
	if max == nil {
		edges = append(edges, math.MaxInt64, math.MaxInt64/64, math.MaxInt64/64+1)
	}
	if rapid.IntRange(0, 2).Draw(t, label+" edge") == 0 {
		return rapid.SampledFrom(edges).Draw(t, label)
	}
	return rapid.Int64Range(lo, hi).Draw(t, label)
}
