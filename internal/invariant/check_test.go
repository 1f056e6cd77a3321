package invariant

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const s = time.Second

// base is a two-server line (N=3, T1=500ms: budgets 3.5s and 32s) that
// registered on the primary at 20ms and stays there, both servers up.
func base() *Trace {
	return &Trace{
		Settings: Settings{Servers: 2, CountMode: true, RetryCounts: 3, RetryTime: 4 * s, T1: 500 * time.Millisecond,
			T2: 4 * s, FailbackEnabled: true, FailbackInterval: 60 * s, BackoffMax: 60 * s, RTT: 10 * time.Millisecond},
		Now: 100 * s,
		Transitions: []Transition{
			{At: 0, From: "idle", To: "registering", Event: "user.register", ID: "register", Server: 0},
			{At: 20 * time.Millisecond, From: "registering", To: "primary_registered", Event: "resp.2xx", ID: "registered_primary", Server: 0},
		},
		Sends: [][]Request{
			{{At: 0, Method: "REGISTER", CallID: "reg", Branch: "b1", Expires: 3600, Delivered: true, Answer: 401},
				{At: 10 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b2", Expires: 3600, Delivered: true, Answer: 200}},
			nil,
		},
		Bindings: [][]Binding{{{At: 10 * time.Millisecond, CallID: "reg", Until: 3600 * s}}, nil},
		Env:      []EnvChange{{At: 0, Server: 0, Up: true}, {At: 0, Server: 1, Up: true}},
		Users:    []time.Duration{0},
	}
}

func ids(v []Violation) []string {
	var out []string
	for _, x := range v {
		if !slices.Contains(out, x.ID) {
			out = append(out, x.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestGoodTracePasses(t *testing.T) {
	if v := Check(base()); len(v) > 0 {
		t.Fatalf("a good trace is reported: %v", v)
	}
}

// TestEachCheckCanFail feeds the checker one bad trace per invariant and
// requires that exactly that invariant is reported.
func TestEachCheckCanFail(t *testing.T) {
	tests := []struct {
		id   string
		bad  string
		edit func(*Trace)
	}{
		{"I9", "a state change the model does not have", func(tr *Trace) {
			tr.Transitions = append(tr.Transitions, Transition{At: 30 * s, From: "primary_registered", To: "probing", Event: "timer.failback", ID: "failback_due"})
		}},
		{"I3", "a round that begins at the backup", func(tr *Trace) {
			tr.Transitions[0].Server = 1
		}},
		{"I3", "the primary passed over without a request", func(tr *Trace) {
			tr.Transitions[1] = Transition{At: 5 * s, From: "registering", To: "retrying", Event: "timer.budget", ID: "unavailable/2", Server: 1}
			tr.Transitions = append(tr.Transitions, Transition{At: 5*s + 20*time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Server: 1})
			tr.Sends[0] = nil
			tr.Bindings = [][]Binding{nil, {{At: 5 * s, CallID: "reg", Until: 3600 * s}}}
			tr.Env[0].Up = false
		}},
		{"I3", "a round that goes from the primary to server 3, skipping server 2", func(tr *Trace) {
			onBackupTrace(tr)
			tr.Servers = 3
			tr.Transitions[1].Server, tr.Transitions[2].Server = 2, 2
			tr.Sends = append([][]Request{tr.Sends[0], nil}, tr.Sends[1])
			tr.Bindings = append([][]Binding{nil, nil}, tr.Bindings[1])
			tr.Env = []EnvChange{{At: 0, Server: 0, Up: false}, {At: 0, Server: 1, Up: true}, {At: 0, Server: 2, Up: true}}
		}},
		{"I4", "four transmissions of one request with Signal Retry Counts 3", func(tr *Trace) {
			for _, at := range []time.Duration{30 * s, 30*s + 500*time.Millisecond, 31*s + 500*time.Millisecond, 33*s + 500*time.Millisecond} {
				tr.Sends[0] = append(tr.Sends[0], Request{At: at, Method: "OPTIONS", Branch: "ka", Delivered: true})
			}
		}},
		{"I6", "a round that never ends", func(tr *Trace) {
			tr.Transitions = tr.Transitions[:1]
			tr.Sends[0] = tr.Sends[0][:1]
			tr.Bindings[0] = nil
			tr.Env[0].Up = false
			tr.Now = 200 * s // the bound is 4 * (3.5s + 32s) + round trips: 142.16s
		}},
		{"I6", "all-failed, never trying again", func(tr *Trace) {
			tr.Transitions[1] = Transition{At: 3 * s, From: "registering", To: "retrying", Event: "timer.budget", ID: "unavailable/2", Server: 1}
			tr.Transitions = append(tr.Transitions, Transition{At: 35 * s, From: "retrying", To: "all_failed", Event: "timer.budget", ID: "unavailable/1", Server: 1})
			tr.Now = 200 * s
			tr.Bindings[0] = nil
			tr.Env = []EnvChange{{At: 0, Server: 0, Up: false}, {At: 0, Server: 1, Up: false}}
			tr.Sends[1] = []Request{{At: 3 * s, Method: "REGISTER", Branch: "b3", Expires: 3600}}
		}},
		{"I7", "a probe with failback off", func(tr *Trace) {
			tr.FailbackEnabled = false
			onBackupTrace(tr)
			tr.Transitions = append(tr.Transitions, Transition{At: 70 * s, From: "backup_registered", To: "probing", Event: "timer.failback", ID: "failback_due/1", Server: 1})
		}},
		{"I7", "two probes in one probing visit", func(tr *Trace) {
			onBackupTrace(tr)
			tr.Transitions = append(tr.Transitions, Transition{At: 70 * s, From: "backup_registered", To: "probing", Event: "timer.failback", ID: "failback_due/1", Server: 1})
			tr.Sends[0] = append(tr.Sends[0],
				Request{At: 70 * s, Method: "REGISTER", CallID: "probe1", Branch: "p1", Expires: 3600},
				Request{At: 71 * s, Method: "REGISTER", CallID: "probe2", Branch: "p2", Expires: 3600})
			tr.Now = 72 * s
		}},
		{"I8", "registered on an up server whose binding expired", func(tr *Trace) {
			tr.Bindings[0][0].Until = 60 * s
		}},
		{"I1", "on the backup with the primary up, never failing back", func(tr *Trace) {
			onBackupTrace(tr)
			tr.Env = append(tr.Env, EnvChange{At: 20 * s, Server: 0, Up: true})
			tr.Now = 200 * s
		}},
		{"I5", "a MESSAGE to the backup while the line is on the primary", func(tr *Trace) {
			tr.Sends[1] = append(tr.Sends[1], Request{At: 50 * s, Method: "MESSAGE", CallID: "msg", Branch: "m1", Delivered: true, Answer: 200})
		}},
		{"I5", "an INVITE to the backup while the line is on the primary", func(tr *Trace) {
			tr.Sends[1] = append(tr.Sends[1], Request{At: 50 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
		}},
		{"I10", "the first BYE of a call through the primary goes to the backup", func(tr *Trace) {
			tr.Sends[0] = append(tr.Sends[0],
				Request{At: 40 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200},
				Request{At: 40 * s, Method: "ACK", CallID: "call", Branch: "a1", Delivered: true})
			tr.Sends[1] = append(tr.Sends[1], Request{At: 50 * s, Method: "BYE", CallID: "call", Branch: "b1", Delivered: true, Answer: 200})
		}},
		{"I6", "a request that never ends", func(tr *Trace) {
			tr.Requests = []RequestRecord{{At: 10 * s, Ended: -1}}
			tr.Now = 300 * s // the bound is 3 * 2 servers * 64*T1 + round trips: 192.1s
		}},
		{"I2", "the primary failed with the backup up, and the line gave up", func(tr *Trace) {
			tr.BackoffMax = 600 * s
			tr.Env = append(tr.Env, EnvChange{At: 9 * s, Server: 0, Up: false})
			tr.Transitions = append(tr.Transitions,
				Transition{At: 10 * s, From: "primary_registered", To: "retrying", Event: "timer.budget", ID: "primary_lost/2", Server: 1},
				Transition{At: 42 * s, From: "retrying", To: "all_failed", Event: "timer.budget", ID: "unavailable/1", Server: 1})
			tr.Sends[0] = append(tr.Sends[0], Request{At: 6500 * time.Millisecond, Method: "REGISTER", Branch: "b9", Expires: 3600})
			tr.Sends[1] = []Request{{At: 10 * s, Method: "REGISTER", Branch: "b10", Expires: 3600}}
			tr.Now = 200 * s // the bound is 142.16s from 10s
		}},
		{"I2", "the primary silent, the line leaves it 1.5 s past its budget, well within the round's bound", func(tr *Trace) {
			tr.Env = []EnvChange{{At: 0, Server: 0, Up: false}, {At: 0, Server: 1, Up: true}}
			tr.Transitions = []Transition{
				{At: 0, From: "idle", To: "registering", Event: "user.register", ID: "register", Server: 0},
				{At: 5 * s, From: "registering", To: "retrying", Event: "timer.budget", ID: "unavailable/2", Server: 1},
				{At: 5020 * time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Server: 1}}
			tr.Sends[0] = []Request{{At: 0, Method: "REGISTER", CallID: "reg", Branch: "b1", Expires: 3600},
				{At: 500 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b1", Expires: 3600},
				{At: 1500 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b1", Expires: 3600}}
			tr.Sends[1] = []Request{{At: 5 * s, Method: "REGISTER", CallID: "reg", Branch: "b2", Expires: 3600, Delivered: true, Answer: 200}}
			tr.Bindings = [][]Binding{nil, {{At: 5010 * time.Millisecond, CallID: "reg", Until: 3600 * s}}}
		}},
		{"I11", "one transaction more in a minute than the bound", func(tr *Trace) {
			registerBurst(tr, 85)
		}},
		{"I12", "a registered line that leaves its server on a rejection", func(tr *Trace) {
			tr.Env = append(tr.Env, EnvChange{At: 50 * s, Server: 0, Up: false})
			tr.Transitions = append(tr.Transitions,
				Transition{At: 50 * s, From: "primary_registered", To: "retrying", Event: "resp.rejected", ID: "primary_lost/2", Server: 1},
				Transition{At: 50*s + 20*time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Server: 1})
			tr.Sends[0] = append(tr.Sends[0], Request{At: 49990 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b19", Expires: 3600, Delivered: true, Answer: 403})
			tr.Sends[1] = []Request{{At: 50 * s, Method: "REGISTER", CallID: "reg", Branch: "b20", Expires: 3600, Delivered: true, Answer: 200}}
			tr.Bindings[1] = []Binding{{At: 50 * s, CallID: "reg", Until: 3650 * s}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id+": "+tt.bad, func(t *testing.T) {
			tr := base()
			tt.edit(tr)
			got := ids(Check(tr))
			if !slices.Equal(got, []string{tt.id}) {
				t.Fatalf("reported %v, want exactly [%s]: %v", got, tt.id, Check(tr))
			}
		})
	}
}

// onBackupTrace rewrites tr as a line that failed over to the backup at 5s
// (the primary down since before), registered there until now.
func onBackupTrace(tr *Trace) {
	tr.Transitions = []Transition{
		{At: 0, From: "idle", To: "registering", Event: "user.register", ID: "register", Server: 0},
		{At: 10 * time.Millisecond, From: "registering", To: "retrying", Event: "transport.icmp", ID: "unavailable/2", Server: 1},
		{At: 30 * time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Server: 1},
	}
	tr.Sends = [][]Request{
		{{At: 0, Method: "REGISTER", CallID: "reg", Branch: "b1", Expires: 3600}},
		{{At: 10 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b2", Expires: 3600, Delivered: true, Answer: 401},
			{At: 20 * time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b3", Expires: 3600, Delivered: true, Answer: 200}},
	}
	tr.Bindings = [][]Binding{nil, {{At: 20 * time.Millisecond, CallID: "reg", Until: 3600 * s}}}
	tr.Env = []EnvChange{{At: 0, Server: 0, Up: false}, {At: 0, Server: 1, Up: true}}
}

// registerBurst adds n REGISTER transactions to the primary, half a second
// apart from 40.5s, each answered 200: a line refreshing far too often.
// With a Failback Interval of 60 s and a back-off base of 30 s, docs/requirements.md's
// I11 allows 4 * (15 + 1 + 4 + 0 + 1) = 84 in a minute without user
// requests.
func registerBurst(tr *Trace, n int) {
	tr.BackoffBase = 30 * s
	for k := range n {
		at := 40*s + time.Duration(k+1)*500*time.Millisecond
		tr.Sends[0] = append(tr.Sends[0], Request{At: at, Method: "REGISTER", CallID: "reg",
			Branch: fmt.Sprintf("burst%d", k), Expires: 3600, Delivered: true, Answer: 200})
	}
}

// TestBoundsAreTight: for each bounded invariant, a trace exactly at the
// bound passes and one just past it fails with that invariant alone, so
// that a checker whose bound is loosened or tightened fails here.
func TestBoundsAreTight(t *testing.T) {
	const ms = time.Millisecond
	for _, tt := range []struct {
		id   string
		what string
		edit func(tr *Trace, past bool)
	}{
		{"I1", "on the backup, the primary up for Failback Interval + 64*T1 + round trips (92.04s)", func(tr *Trace, past bool) {
			onBackupTrace(tr)
			tr.Env = append(tr.Env, EnvChange{At: 20 * s, Server: 0, Up: true})
			tr.Now = 20*s + 92040*ms + pastBy(past)
		}},
		{"I2", "the primary failed with the backup up, for every budget four times (142.16s)", func(tr *Trace, past bool) {
			tr.BackoffMax = 600 * s
			tr.Env = append(tr.Env, EnvChange{At: 9 * s, Server: 0, Up: false})
			tr.Transitions = append(tr.Transitions,
				Transition{At: 10 * s, From: "primary_registered", To: "retrying", Event: "timer.budget", ID: "primary_lost/2", Server: 1},
				Transition{At: 42 * s, From: "retrying", To: "all_failed", Event: "timer.budget", ID: "unavailable/1", Server: 1})
			tr.Sends[0] = append(tr.Sends[0], Request{At: 6500 * ms, Method: "REGISTER", Branch: "b9", Expires: 3600})
			tr.Sends[1] = []Request{{At: 10 * s, Method: "REGISTER", Branch: "b10", Expires: 3600}}
			tr.Now = 10*s + 142160*ms + pastBy(past)
		}},
		{"I3", "a REGISTER as the primary's Retry-After of 10 s ends", func(tr *Trace, past bool) {
			tr.Sends[0] = append(tr.Sends[0],
				Request{At: 50 * s, Method: "REGISTER", CallID: "reg", Branch: "b20", Expires: 3600, Delivered: true, Answer: 503, RetryAfter: 10},
				Request{At: 60*s - pastBy(past), Method: "REGISTER", CallID: "reg", Branch: "b21", Expires: 3600, Delivered: true, Answer: 200})
		}},
		{"I3", "an INVITE as soon as a 2xx that ends a Retry-After can have come", func(tr *Trace, past bool) {
			tr.Sends[0] = append(tr.Sends[0],
				Request{At: 50 * s, Method: "REGISTER", CallID: "reg", Branch: "b20", Expires: 3600, Delivered: true, Answer: 503, RetryAfter: 10},
				// sent before the 503 can have come back; its retransmission
				// is answered 2xx
				Request{At: 50*s + 5*ms, Method: "REGISTER", CallID: "reg", Branch: "b21", Expires: 3600},
				Request{At: 51 * s, Method: "REGISTER", CallID: "reg", Branch: "b21", Expires: 3600, Delivered: true, Answer: 200},
				Request{At: 51*s - pastBy(past), Method: "INVITE", CallID: "call", Branch: "b22", Delivered: true})
			slices.SortStableFunc(tr.Sends[0], func(a, b Request) int { return int(a.At - b.At) })
		}},
		{"I4", "Signal Retry Counts (3) transmissions of one request", func(tr *Trace, past bool) {
			at := []time.Duration{30 * s, 30*s + 500*ms, 31*s + 500*ms}
			if past {
				at = append(at, 33*s+500*ms)
			}
			for _, a := range at {
				tr.Sends[0] = append(tr.Sends[0], Request{At: a, Method: "OPTIONS", Branch: "ka", Delivered: true})
			}
		}},
		{"I11", "84 transactions in a minute", func(tr *Trace, past bool) {
			n := 84
			if past {
				n++
			}
			registerBurst(tr, n)
		}},
	} {
		t.Run(tt.id+": "+tt.what, func(t *testing.T) {
			at := base()
			tt.edit(at, false)
			if v := Check(at); len(v) > 0 {
				t.Fatalf("a trace at the bound is reported: %v", v)
			}
			past := base()
			tt.edit(past, true)
			if got := ids(Check(past)); !slices.Equal(got, []string{tt.id}) {
				t.Fatalf("a trace just past the bound: reported %v, want exactly [%s]: %v", got, tt.id, Check(past))
			}
		})
	}
}

// pastBy is how far past its bound a trace goes: a millisecond, or none.
func pastBy(past bool) time.Duration {
	if past {
		return time.Millisecond
	}
	return 0
}

// TestI10SameInstant: a line on the backup sets up a call there, then
// registers on the primary again; at one instant of virtual time its BYE
// finds the backup gone (ICMP) and goes through the primary. Which of the
// two BYEs was the first is the order the network took them in, not the
// order the servers are listed in.
func TestI10SameInstant(t *testing.T) {
	const ms = time.Millisecond
	trace := func(byeToBackup, byeToPrimary int) *Trace {
		tr := base()
		onBackupTrace(tr)
		tr.Env = append(tr.Env, EnvChange{At: 45 * s, Server: 0, Up: true}, EnvChange{At: 50 * s, Server: 1, Up: false})
		tr.Users = append(tr.Users, 49*s)
		tr.Transitions = append(tr.Transitions,
			Transition{At: 49 * s, From: "backup_registered", To: "registering", Event: "user.register", ID: "register_from_backup", Server: 0},
			Transition{At: 49*s + 20*ms, From: "registering", To: "primary_registered", Event: "resp.2xx", ID: "registered_primary", Server: 0})
		tr.Sends[0] = append(tr.Sends[0],
			Request{At: 49 * s, Method: "REGISTER", CallID: "reg", Branch: "b4", Expires: 3600, Delivered: true, Answer: 401},
			Request{At: 49*s + 10*ms, Method: "REGISTER", CallID: "reg", Branch: "b5", Expires: 3600, Delivered: true, Answer: 200},
			Request{At: 50 * s, Seq: byeToPrimary, Method: "BYE", CallID: "call", Branch: "y2", Delivered: true, Answer: 200})
		tr.Sends[1] = append(tr.Sends[1],
			Request{At: 40 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200},
			Request{At: 40 * s, Method: "ACK", CallID: "call", Branch: "a1", Delivered: true},
			Request{At: 50 * s, Seq: byeToBackup, Method: "BYE", CallID: "call", Branch: "y1"})
		tr.Bindings[0] = append(tr.Bindings[0], Binding{At: 49*s + 10*ms, CallID: "reg", Until: 3649 * s})
		return tr
	}
	if v := Check(trace(1, 2)); len(v) > 0 {
		t.Errorf("the BYE through the call's server first, then through the primary: reported %v", v)
	}
	if got := ids(Check(trace(2, 1))); !slices.Equal(got, []string{"I10"}) {
		t.Errorf("the BYE through the primary first: reported %v, want exactly [I10]", got)
	}
}

// TestI1NewRequestDuringProbe: in failback mode new_requests, a request
// that comes while a probe is out waits for that probe (R18) and starts no
// other. The probe went out while the primary was down and failed; the
// primary came up in between. The request that rode on it is not owed a
// failback; the next one, which finds no probe out, is.
func TestI1NewRequestDuringProbe(t *testing.T) {
	const ms = time.Millisecond
	trace := func(second time.Duration) *Trace {
		tr := base()
		onBackupTrace(tr)
		tr.FailbackMode = "new_requests"
		tr.Env = append(tr.Env, EnvChange{At: 41 * s, Server: 0, Up: true})
		tr.Requests = []RequestRecord{{At: 40 * s, Ended: 43500 * ms, New: true}, {At: second, Ended: 43520 * ms, New: true}}
		tr.Transitions = append(tr.Transitions,
			Transition{At: 40 * s, From: "backup_registered", To: "probing", Event: "request.new", ID: "request_due/1", Server: 1},
			Transition{At: 43500 * ms, From: "probing", To: "backup_registered", Event: "timer.probe", ID: "probe_failed", Server: 1})
		tr.Sends[0] = append(tr.Sends[0], Request{At: 40 * s, Method: "REGISTER", CallID: "probe", Branch: "p1", Expires: 3600})
		return tr
	}
	if v := Check(trace(42 * s)); len(v) > 0 {
		t.Errorf("a request while the probe was out: reported %v", v)
	}
	if got := ids(Check(trace(44 * s))); !slices.Equal(got, []string{"I1"}) {
		t.Errorf("a request after the probe failed, with the primary up: reported %v, want exactly [I1]", got)
	}
}

// TestI5SharedAndUnregistered: R23's readings of I5. An INVITE that the
// primary left unanswered and that goes on to the backup while the line is
// on the primary is I5 unless the backup shares the primary's
// registrations; an INVITE to the primary while the line is still
// registering there is I5 unless only_signal_with_registered is 0.
func TestI5SharedAndUnregistered(t *testing.T) {
	toBackup := func(tr *Trace) {
		tr.Sends[0] = append(tr.Sends[0], Request{At: 46 * s, Method: "INVITE", CallID: "call", Branch: "i0", Delivered: true})
		tr.Sends[1] = append(tr.Sends[1], Request{At: 50 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
	}
	early := func(tr *Trace) {
		tr.Sends[0] = append(tr.Sends[0], Request{At: 5 * time.Millisecond, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
	}
	for _, c := range []struct {
		name  string
		edit  func(*Trace)
		relax func(*Trace)
	}{
		{"to a backup that shares registrations", toBackup, func(tr *Trace) { tr.Shared = []bool{false, true} }},
		{"to the primary while registering there", early, func(tr *Trace) { tr.SignalUnregistered = true }},
	} {
		tr := base()
		c.edit(tr)
		if got := ids(Check(tr)); !slices.Equal(got, []string{"I5"}) {
			t.Errorf("%s, with the defaults: %v, want I5", c.name, got)
		}
		c.relax(tr)
		if v := Check(tr); len(v) > 0 {
			t.Errorf("%s, as R23 allows: %v", c.name, v)
		}
	}
	// Sharing lets a request go on there, not start there, nor go before
	// the line registered anywhere.
	tr := base()
	tr.Shared = []bool{false, true}
	tr.Sends[1] = append(tr.Sends[1], Request{At: 50 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
	if got := ids(Check(tr)); !slices.Equal(got, []string{"I5"}) {
		t.Errorf("a new INVITE to a shared backup: %v, want I5", got)
	}
	tr = base()
	tr.Shared = []bool{false, true}
	tr.Sends[0] = append(tr.Sends[0], Request{At: 1 * time.Millisecond, Method: "INVITE", CallID: "call", Branch: "i0", Delivered: true})
	tr.Sends[1] = append(tr.Sends[1], Request{At: 5 * time.Millisecond, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
	if got := ids(Check(tr)); !slices.Contains(got, "I5") {
		t.Errorf("to a shared backup before any registration: %v, want I5", got)
	}
	// A new request passes over the primary while its Retry-After runs
	// (R1) and starts on the shared backup; without the Retry-After it
	// should have gone to the primary.
	for _, ra := range []int{30, 0} {
		tr = base()
		tr.Shared = []bool{false, true}
		tr.Sends[0] = append(tr.Sends[0], Request{At: 45 * s, Method: "MESSAGE", CallID: "m0", Branch: "m0", Delivered: true, Answer: 503, RetryAfter: ra})
		tr.Sends[1] = append(tr.Sends[1], Request{At: 46 * s, Method: "INVITE", CallID: "call", Branch: "i1", Delivered: true, Answer: 200})
		if got := slices.Contains(ids(Check(tr)), "I5"); got != (ra == 0) {
			t.Errorf("a new INVITE to a shared backup, the primary's Retry-After %ds: I5 %v, want %v", ra, got, ra == 0)
		}
	}
}

// TestRegistrarMoves: behind outbound proxies (R22) the line moves along
// (proxy, registrar) pairs. The primary proxy answers the refresh for the
// first registrar, and the line registers on the second through it: I3
// and I12 hold. A jump from the first registrar to the third, or a round
// that begins at another registrar than the first, breaks I3.
func TestRegistrarMoves(t *testing.T) {
	proxied := func(moves ...Transition) *Trace {
		tr := base()
		tr.Registrars = 3
		for i := range tr.Transitions {
			tr.Transitions[i].Registrar = 1
		}
		tr.Sends[0] = append(tr.Sends[0],
			Request{At: 30 * s, Method: "REGISTER", CallID: "reg", Branch: "b3", Expires: 3600, Delivered: true, Answer: 408},
			Request{At: 30*s + 10*time.Millisecond, Method: "REGISTER", CallID: "reg", Branch: "b4", Expires: 3600, Delivered: true, Answer: 200})
		tr.Transitions = append(tr.Transitions, moves...)
		return tr
	}
	lost := Transition{At: 30*s + 10*time.Millisecond, From: "primary_registered", To: "retrying", Event: "resp.registrar_down", ID: "primary_registrar_lost/2", Registrar: 2}
	registered := Transition{At: 30*s + 20*time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Registrar: 2}
	if v := Check(proxied(lost, registered)); len(v) > 0 {
		t.Errorf("the next registrar through the same proxy: %v", v)
	}
	jump, jumped := lost, registered
	jump.Registrar, jumped.Registrar = 3, 3
	if got := ids(Check(proxied(jump, jumped))); !slices.Equal(got, []string{"I3"}) {
		t.Errorf("from registrar 1 to 3: %v, want I3", got)
	}
	round := Transition{At: 30*s + 10*time.Millisecond, From: "primary_registered", To: "registering", Event: "user.register", ID: "register", Registrar: 2}
	if got := ids(Check(proxied(round))); !slices.Contains(got, "I3") {
		t.Errorf("a round that begins at registrar 2: %v, want I3 among them", got)
	}
}

// TestOwnRefreshIsNoProbe: behind outbound proxies the line's own
// registration may go through the primary proxy (to another registrar,
// R22) while a probe to the first registrar is out: its refresh, of a
// Call-ID the line used before, is no second probe (I7).
func TestOwnRefreshIsNoProbe(t *testing.T) {
	tr := base()
	tr.Transitions = append(tr.Transitions,
		Transition{At: 30 * s, From: "primary_registered", To: "retrying", Event: "resp.registrar_down", ID: "primary_registrar_lost/2", Registrar: 2},
		Transition{At: 30*s + 20*time.Millisecond, From: "retrying", To: "backup_registered", Event: "resp.2xx", ID: "registered_backup", Registrar: 2},
		Transition{At: 50 * s, From: "backup_registered", To: "probing", Event: "timer.refresh", ID: "refresh_backup/1"},
		Transition{At: 50*s + 20*time.Millisecond, From: "probing", To: "backup_registered", Event: "probe.failed", ID: "probe_failed"})
	tr.Sends[0] = append(tr.Sends[0],
		Request{At: 50 * s, Method: "REGISTER", CallID: "reg", Branch: "b5", Expires: 3600, Delivered: true, Answer: 200},
		Request{At: 50 * s, Method: "REGISTER", CallID: "probe", Branch: "b6", Expires: 3600, Delivered: true, Answer: 504})
	if got := ids(Check(tr)); slices.Contains(got, "I7") {
		t.Errorf("the line's refresh beside its probe: I7 reported")
	}
	tr.Sends[0][len(tr.Sends[0])-2].CallID = "probe2"
	if got := ids(Check(tr)); !slices.Contains(got, "I7") {
		t.Errorf("two new Call-IDs in one probing visit: %v, want I7", got)
	}
}
