package labserver

import (
	"fmt"
	"slices"
	"time"
)

// Fault is a way a server breaks, as a real network shows it to a phone
// (R1).
type Fault string

// The faults a Registrar can be put in.
const (
	// Kill closes the port: a datagram to it draws ICMP port unreachable,
	// a connection is refused (RST), and open connections are closed.
	Kill Fault = "kill"
	// Freeze keeps the port open and reads every request, answering none:
	// a hung server process.
	Freeze Fault = "freeze"
	// Unavailable answers every request 503 Service Unavailable.
	Unavailable Fault = "503"
	// RetryAfter answers every request 503 with a Retry-After.
	RetryAfter Fault = "503-retry-after"
	// Drop lets nothing come back, not even ICMP: datagrams are read and
	// ignored, and a connection attempt is never answered (a host that is
	// gone, a firewall that drops).
	Drop Fault = "drop"
	// Slow answers every request, but only after a delay: a loaded server
	// that is still up.
	Slow Fault = "slow"
	// Reset ends every TCP connection open to the server with a reset (a
	// NAT or firewall that lost it, a restarted front end); the server
	// listens and answers on, and a new connection finds it. Over UDP
	// there is nothing to reset.
	Reset Fault = "reset"
)

// Faults lists every fault in the order the lab plays them.
var Faults = []Fault{Kill, Freeze, Unavailable, RetryAfter, Drop, Slow, Reset}

// Options are a fault's figures.
type Options struct {
	RetryAfter int           // seconds, for RetryAfter
	Delay      time.Duration // for Slow
}

// ParseFault reads a fault's name.
func ParseFault(s string) (Fault, error) {
	if f := Fault(s); slices.Contains(Faults, f) {
		return f, nil
	}
	return "", fmt.Errorf("%q is no fault (%v)", s, Faults)
}

// Break puts the server in fault f, with its figures. A server already
// broken is mended first.
func (r *Registrar) Break(f Fault, o Options) error {
	if err := r.Mend(); err != nil {
		return err
	}
	switch f {
	case Kill:
		r.Stop()
	case Freeze:
		r.SetMode(Silent)
	case Unavailable:
		r.SetAnswer(503, 0)
	case RetryAfter:
		if o.RetryAfter <= 0 {
			return fmt.Errorf("%s: a Retry-After of %d s", f, o.RetryAfter)
		}
		r.SetAnswer(503, o.RetryAfter)
	case Slow:
		if o.Delay <= 0 {
			return fmt.Errorf("%s: a delay of %v", f, o.Delay)
		}
		r.mu.Lock()
		r.delay = o.Delay
		r.mu.Unlock()
	case Reset:
		if r.Network != "tcp" {
			return fmt.Errorf("%s: a %s server has no connections to reset", f, r.Network)
		}
		r.mu.Lock()
		l := r.server
		r.mu.Unlock()
		l.resetConnections()
	case Drop:
		// Nothing comes back: requests are read and not answered, and over
		// TCP the open connections stay open and silent while a new one is
		// never answered.
		r.SetMode(Silent)
		if r.Network != "tcp" {
			break
		}
		r.mu.Lock()
		l := r.server
		r.mu.Unlock()
		l.closeListener()
		hole, err := NewBlackhole(r.Addr)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.hole = hole
		r.mu.Unlock()
	default:
		return fmt.Errorf("%q is no fault", f)
	}
	r.mu.Lock()
	r.fault = f
	r.mu.Unlock()
	return nil
}

// Mend ends the server's fault: it listens again where it did and answers
// as it did, its registrations kept.
func (r *Registrar) Mend() error {
	r.mu.Lock()
	hole, running := r.hole, r.server != nil
	r.hole, r.fault, r.delay = nil, "", 0
	r.mu.Unlock()
	if hole != nil {
		hole.Close()
		r.Stop() // the silent connections go with the fault
		running = false
	}
	r.SetMode(Up)
	if !running {
		return r.Start()
	}
	return nil
}

// Fault is the fault the server is in, "" when none.
func (r *Registrar) Fault() Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fault
}
