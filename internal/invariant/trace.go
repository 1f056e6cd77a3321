package invariant

import "time"

// Transition is one step of the line, as the runtime reported it.
type Transition struct {
	At       time.Duration
	From, To string
	Event    string
	ID       string
	Server   int
	// Registrar is, behind outbound proxies, the registrar behind the
	// server (R22); 0 without.
	Registrar int
}

// EnvChange is a server changing behaviour: Up means it answers every
// request, promptly and without loss.
type EnvChange struct {
	At     time.Duration
	Server int
	Up     bool
}

// Trace is what the property suite saw of one run.
type Trace struct {
	Settings
	Now         time.Duration
	Transitions []Transition
	Sends       [][]Request       // by server: every request it received, delivered or not
	Keepalives  [][]time.Duration // by server: when each flow keep-alive packet went to it (no request)
	Bindings    [][]Binding       // by server: every binding it granted or removed
	Env         []EnvChange       // every server's initial behaviour at 0, then each change
	Users       []time.Duration   // user actions
	Requests    []RequestRecord   // out-of-dialog requests the user sent (R8)
	Holds       []HoldChange      // when calls began and stopped holding the line (R18)
}

// RequestRecord is one request the user sent: when, and when it ended (-1
// while it runs). New: a new request (a MESSAGE, a call's INVITE), not one
// of a dialog.
type RequestRecord struct {
	At, Ended time.Duration
	New       bool
}

// HoldChange says that from At a call of the line has a dialog (Holds), or
// none has.
type HoldChange struct {
	At    time.Duration
	Holds bool
}

// Request is one request a server received (or that was sent to it and
// lost): when, which, and what the server answered.
type Request struct {
	At         time.Duration // since the run began
	Seq        int           // order among every server's requests: sends at one instant differ here
	Method     string
	CallID     string
	Branch     string
	Expires    int  // -1 when absent
	Delivered  bool // false: ICMP, refused, or lost
	Answer     int  // the status code the server sent; 0 for none
	RetryAfter int  // seconds, with a 503
}

// Binding is a registration a server accepted, until Until (zero Until:
// removed by Expires 0).
type Binding struct {
	At     time.Duration
	CallID string
	Until  time.Duration
}
