package verify_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/internal/verify"
)

// machine is a generated Go machine seen by names, as the Promela names
// things.
type machine struct {
	fire   func(event string) (to string, err error)
	params reflect.Value // the machine's params struct, settable
	set    func()        // hands params to the machine
	vars   func() reflect.Value
}

// field is the Go field of a model name: server_count is ServerCount.
func field(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func (m machine) setParams(t *testing.T, vals map[string]int64) {
	t.Helper()
	for name, v := range vals {
		f := m.params.FieldByName(field(name))
		switch {
		case !f.IsValid():
			t.Fatalf("the Go params have no %s", field(name))
		case f.Kind() == reflect.Bool:
			f.SetBool(v != 0)
		default:
			f.SetInt(v)
		}
	}
	m.set()
}

// wrap is a generated machine m, its params p (a pointer) and its event
// parser seen through reflection: the five machines have the same methods
// over types of their own.
func wrap(t *testing.T, m, p, parse any) machine {
	t.Helper()
	mv := reflect.ValueOf(m)
	call := func(method string, args ...reflect.Value) []reflect.Value {
		return mv.MethodByName(method).Call(args)
	}
	failed := func(out []reflect.Value) error {
		err, _ := out[len(out)-1].Interface().(error)
		return err
	}
	if err := failed(call("Start")); err != nil {
		t.Fatal(err)
	}
	pv := reflect.ValueOf(p).Elem()
	return machine{
		fire: func(event string) (string, error) {
			parsed := reflect.ValueOf(parse).Call([]reflect.Value{reflect.ValueOf(event)})
			if err := failed(parsed); err != nil {
				return "", err
			}
			if err := failed(call("Fire", parsed[0])); err != nil {
				return "", err
			}
			return call("State")[0].Interface().(fmt.Stringer).String(), nil
		},
		params: pv,
		set:    func() { call("SetParams", pv) },
		vars:   func() reflect.Value { return call("Vars")[0] },
	}
}

// The machines with params the Promela does not vary (durations) set to
// working values; the simulation sets the rest before every event.

func lineMachine(t *testing.T) machine {
	p := fsm.LineParams{ServerCount: 1, RegistrarCount: 1, FailbackInterval: fsm.Duration(time.Minute), RetryCounts: 3,
		RetryTime: fsm.Duration(4 * time.Second), RefreshInterval: fsm.Duration(time.Minute),
		KeepaliveInterval: fsm.Duration(time.Minute), BackoffBase: fsm.Duration(time.Second), BackoffMax: fsm.Duration(time.Minute)}
	return wrap(t, fsm.NewLineMachine(p, nil), &p, fsm.ParseLineEvent)
}

func requestMachine(t *testing.T) machine {
	p := fsm.RequestParams{ServerCount: 1, RetryCounts: 3, InviteRetryCounts: 3, RetryTime: fsm.Duration(4 * time.Second),
		RingTimeout: fsm.Duration(3 * time.Minute)}
	return wrap(t, fsm.NewRequestMachine(p, nil), &p, fsm.ParseRequestEvent)
}

func bindingMachine(t *testing.T) machine {
	p := fsm.BindingParams{RetryCounts: 3, RetryTime: fsm.Duration(4 * time.Second), T1: fsm.Duration(500 * time.Millisecond),
		T2: fsm.Duration(4 * time.Second), RefreshInterval: fsm.Duration(time.Minute), KeepaliveInterval: fsm.Duration(time.Minute),
		BackoffBase: fsm.Duration(time.Second), BackoffMax: fsm.Duration(time.Minute), FailbackInterval: fsm.Duration(time.Minute)}
	return wrap(t, fsm.NewBindingMachine(p, nil), &p, fsm.ParseBindingEvent)
}

func callMachine(t *testing.T) machine {
	p := fsm.CallParams{T1: fsm.Duration(500 * time.Millisecond), MaxDuration: fsm.Duration(time.Hour)}
	return wrap(t, fsm.NewCallMachine(p, nil), &p, fsm.ParseCallEvent)
}

func concurrentMachine(t *testing.T) machine {
	p := fsm.ConcurrentParams{ServerCount: 2, BestUp: 2}
	return wrap(t, fsm.NewConcurrentMachine(p, nil), &p, fsm.ParseConcurrentEvent)
}

// TestSimulationMatchesGo: SPIN's random simulation of the generated
// Promela and the generated Go machine, driven through the same events with
// the same params, are in the same state with the same variables after
// every event, so the Promela the model checker proves things of cannot
// drift from the code that runs.
func TestSimulationMatchesGo(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of SPIN simulations")
	}
	tools(t)
	for _, m := range []struct {
		name   string
		new    func(*testing.T) machine
		seeds  int // a machine that ends after a few events takes more runs
		runs   int // at least this many runs whose params keep verify.requires
		events int // at least this many events compared
	}{{"line", lineMachine, 60, 12, 1000}, {"request", requestMachine, 200, 100, 500},
		{"binding", bindingMachine, 30, 15, 1000}, {"call", callMachine, 100, 50, 300},
		{"concurrent", concurrentMachine, 30, 15, 1000}} {
		t.Run(m.name, func(t *testing.T) {
			events, runs := 0, 0
			for seed := 1; seed <= m.seeds; seed++ {
				params, sim, err := verify.Simulate(context.Background(), "../../verify/"+m.name+".pml", seed, 20000)
				if err != nil {
					t.Fatal(err)
				}
				if len(sim) == 0 {
					continue // params drawn outside verify.requires: the run stops at once
				}
				runs++
				g := m.new(t)
				g.setParams(t, params)
				for i, s := range sim {
					where := fmt.Sprintf("seed %d, event %d (%s --%s--> %s)", seed, i+1, s.From, s.Event, s.To)
					g.setParams(t, s.Before)
					to, err := g.fire(s.Event)
					if err != nil {
						t.Fatalf("%s: the Go machine: %v", where, err)
					}
					if to != s.To {
						t.Fatalf("%s: the Go machine went to %s", where, to)
					}
					g.setParams(t, s.After)
					vars := g.vars()
					for name, want := range s.Vars {
						f := vars.FieldByName(field(name))
						got := int64(0)
						switch {
						case !f.IsValid():
							t.Fatalf("%s: the Go vars have no %s", where, field(name))
						case f.Kind() == reflect.Bool:
							if f.Bool() {
								got = 1
							}
						default:
							got = f.Int()
						}
						if got != want {
							t.Fatalf("%s: %s is %d in Go, %d in Promela", where, name, got, want)
						}
					}
					events++
				}
			}
			if runs < m.runs || events < m.events {
				t.Fatalf("%d runs of %d delivered %d events; too few to compare", runs, m.seeds, events)
			}
			t.Logf("%d runs, %d events, the same states and variables", runs, events)
		})
	}
}
