package capture

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/sipfailover/sipfailover/internal/invariant"
)

// Settings are the phone's settings the bounds come from, and its servers.
type Settings struct {
	Servers           []netip.AddrPort // in priority order, the primary first
	T1, T2            time.Duration
	CountMode         bool // the retry budget counts transmissions (else RetryTime)
	RetryCounts       int  // transmissions of a request to a non-last server
	InviteRetryCounts int  // an INVITE's own; 0: RetryCounts
	RetryTime         time.Duration
	FailbackEnabled   bool
	FailbackInterval  time.Duration
	Keepalive         time.Duration // 0: off
	BackoffBase       time.Duration
	UnavailableCodes  []int // answers that make a server unavailable (R1)
	Concurrent        bool  // registration_mode concurrent (R17): a binding on every server at once
	// Transport, "udp" or "tcp", keeps only that transport's messages;
	// "" keeps both.
	Transport string
	// FromBoot says the capture began before the phone started: what is
	// not in it did not happen.
	FromBoot bool
	// Slack is what the bounds allow beyond the phone's timers: round trips
	// and the phone's own pace between a verdict and its next request.
	Slack time.Duration
}

// DefaultSettings are the seed's defaults (docs/settings.md).
func DefaultSettings() Settings {
	return Settings{T1: 500 * time.Millisecond, T2: 4 * time.Second, CountMode: true, RetryCounts: 3, RetryTime: 4 * time.Second,
		FailbackEnabled: true, FailbackInterval: 1800 * time.Second, BackoffBase: 30 * time.Second,
		UnavailableCodes: []int{500, 503}, Slack: time.Second}
}

// bounds are the settings as the property checker reads them: its budgets
// and rate bound are the ones the runtime is held to.
func (s Settings) bounds() invariant.Settings {
	return invariant.Settings{Servers: len(s.Servers), CountMode: s.CountMode, RetryCounts: s.RetryCounts,
		InviteRetryCounts: s.InviteRetryCounts, RetryTime: s.RetryTime, T1: s.T1, T2: s.T2,
		FailbackEnabled: s.FailbackEnabled, FailbackInterval: s.FailbackInterval, BackoffBase: s.BackoffBase,
		BackoffMax: s.BackoffBase, Keepalive: s.Keepalive, RTT: s.Slack}
}

// Txn is one client transaction of the phone with one server: its
// transmissions, the server's answers, and the fault that ended it.
type Txn struct {
	Line      string // the From's address of record
	Server    int
	Transport string
	Method    string
	CallID    string
	Branch    string
	CSeq      int
	InDialog  bool
	Expires   int // what a REGISTER asked; -1: not said
	Sends     []*Message
	Answers   []*Message
	Final     *Message // the first final answer
	Fault     *Fault   // ICMP unreachable or a TCP reset that ended it
	Probe     bool     // a REGISTER to the primary while registered on a backup only
}

// Fault is ICMP unreachable for a datagram, or a TCP reset or refusal.
type Fault struct {
	Frame int
	At    time.Time
	What  string
}

func (t *Txn) start() time.Time { return t.Sends[0].At }

// Outcome is how a transaction ended, as the wire shows it.
type Outcome struct {
	Kind  string // ok, challenged, unavailable, rejected, timeout, pending
	At    time.Time
	Frame int // the answer or fault; 0 for a timeout
	What  string
}

// outcome says how t ended by the end of the capture.
func (a *Analysis) outcome(t *Txn) Outcome {
	s := a.Settings
	if t.Method == "ACK" {
		return Outcome{Kind: "sent", At: t.start()} // no answer is due
	}
	if t.Final != nil {
		o := Outcome{At: t.Final.At, Frame: t.Final.Frame, What: fmt.Sprintf("%d", t.Final.Code)}
		switch c := t.Final.Code; {
		case c < 300:
			o.Kind = "ok"
		case c == 401 || c == 407:
			o.Kind = "challenged"
		case c == 408 || slices.Contains(s.UnavailableCodes, c):
			o.Kind = "unavailable"
		default:
			o.Kind = "rejected"
		}
		return o
	}
	if t.Fault != nil {
		return Outcome{Kind: "unavailable", At: t.Fault.At, Frame: t.Fault.Frame, What: t.Fault.What}
	}
	budget := s.bounds().BudgetOf(t.Method, t.Server)
	if t.Probe {
		budget = 64 * s.T1
	}
	if end := t.start().Add(budget); !end.After(a.End) {
		return Outcome{Kind: "timeout", At: end, What: fmt.Sprintf("no answer within %v", budget)}
	}
	return Outcome{Kind: "pending", At: a.End}
}

// Binding is a registration a server granted the phone: from the 2xx until
// it expires or is removed.
type Binding struct {
	Line          string
	Server        int
	CallID        string
	From, Until   time.Time
	Frame         int // the 2xx
	Granted       time.Duration
	Refreshed     bool // a later 2xx of the same Call-ID replaced it
	Removed       bool // an Expires 0 ended it
	RemovedBefore time.Time
}

// LineTrace is what the capture shows of one line (address of record).
type LineTrace struct {
	AOR      string
	Txns     []*Txn     // by first transmission
	Bindings []*Binding // by time granted

	dialogs map[string]int // Call-ID -> the server its dialog was set up through
}

// current is the server the line is on at t: that of the live binding
// granted last (a phone on one server at a time leaves the old binding to
// expire where it failed, R12); -1 when it holds none.
func (l *LineTrace) current(t time.Time) int {
	server := -1
	var from time.Time
	for _, b := range l.Bindings {
		if b.live(t) && (server < 0 || b.From.After(from)) {
			server, from = b.Server, b.From
		}
	}
	return server
}

// liveAt reports whether the line held a binding on server at t.
func (l *LineTrace) liveAt(server int, t time.Time) bool {
	return slices.ContainsFunc(l.Bindings, func(b *Binding) bool { return b.Server == server && b.live(t) })
}

func (b *Binding) live(t time.Time) bool {
	until := b.Until
	if b.Removed {
		until = b.RemovedBefore
	}
	return !t.Before(b.From) && t.Before(until)
}

// Analysis is a capture read for the checks.
type Analysis struct {
	Settings
	Begin, End time.Time
	Packets    int // frames of UDP, TCP or ICMP unreachable
	Messages   int // SIP messages
	Lines      []*LineTrace
	Problems   []Problem
	Transports string // what the capture carries: udp, tcp, or "udp+tcp"
}

// Analyze reads a capture and infers the phone's transactions and
// registrations with the servers s names.
func Analyze(r io.Reader, s Settings) (*Analysis, error) {
	if len(s.Servers) == 0 {
		return nil, fmt.Errorf("no servers: give the phone's servers in priority order")
	}
	packets, problems, err := Read(r)
	if err != nil {
		return nil, err
	}
	msgs, more := messages(packets)
	if s.Transport != "" {
		msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Transport != s.Transport })
	}
	a := &Analysis{Settings: s, Packets: len(packets), Messages: len(msgs), Problems: append(problems, more...)}
	if len(packets) > 0 {
		a.Begin, a.End = packets[0].At, packets[0].At
		for _, p := range packets {
			a.Begin, a.End = minTime(a.Begin, p.At), maxTime(a.End, p.At)
		}
	}
	a.transactions(msgs)
	a.refusals(packets)
	a.faults(packets)
	for _, l := range a.Lines {
		a.bind(l)
	}
	return a, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// server is the index of addr among the servers, or -1.
func (a *Analysis) server(addr netip.AddrPort) int {
	return slices.IndexFunc(a.Servers, func(s netip.AddrPort) bool { return s.Addr().Unmap() == addr.Addr().Unmap() && s.Port() == addr.Port() })
}

type txnKey struct {
	phone  netip.AddrPort
	server int
	branch string
	method string
}

// transactions groups the phone's requests to the servers, and their
// answers, by transaction.
func (a *Analysis) transactions(msgs []Message) {
	byKey := map[txnKey]*Txn{}
	lines := map[string]*LineTrace{}
	transports := map[string]bool{}
	for i := range msgs {
		m := &msgs[i]
		if m.Request {
			srv := a.server(m.Dst)
			if srv < 0 {
				continue
			}
			k := txnKey{m.Src, srv, m.Branch, m.Method}
			t := byKey[k]
			if t == nil {
				t = &Txn{Line: m.From, Server: srv, Transport: m.Transport, Method: m.Method, CallID: m.CallID, Branch: m.Branch,
					CSeq: m.CSeq, InDialog: m.ToTag, Expires: m.Expires}
				byKey[k] = t
				l := lines[m.From]
				if l == nil {
					l = &LineTrace{AOR: m.From}
					lines[m.From] = l
					a.Lines = append(a.Lines, l)
				}
				l.Txns = append(l.Txns, t)
				transports[m.Transport] = true
			}
			t.Sends = append(t.Sends, m)
			continue
		}
		srv := a.server(m.Src)
		if srv < 0 {
			continue
		}
		t := byKey[txnKey{m.Dst, srv, m.Branch, m.CSeqMethod}]
		if t == nil || m.CallID != t.CallID {
			continue // no request of the phone's: not its transaction
		}
		t.Answers = append(t.Answers, m)
		if m.Code >= 200 && t.Final == nil {
			t.Final = m
		}
	}
	switch {
	case transports["udp"] && transports["tcp"]:
		a.Transports = "udp+tcp"
	case transports["tcp"]:
		a.Transports = "tcp"
	default:
		a.Transports = "udp"
	}
	slices.SortFunc(a.Lines, func(x, y *LineTrace) int { return cmp.Compare(x.AOR, y.AOR) })
}

// refusals adds, to the line it belongs to, a connection the phone tried
// to open to a server that the server refused (a SYN answered by a reset): over TCP
// the refused request never reaches the wire, and the refusal is all the
// capture shows of the try (R1's transport.tcp).
func (a *Analysis) refusals(packets []Packet) {
	syns := map[[2]netip.AddrPort]*Packet{}
	for i := range packets {
		p := &packets[i]
		if p.Proto != "tcp" {
			continue
		}
		switch {
		case p.SYN && a.server(p.Dst) >= 0:
			if syns[[2]netip.AddrPort{p.Src, p.Dst}] == nil {
				syns[[2]netip.AddrPort{p.Src, p.Dst}] = p
			}
		case p.SYN: // the server's SYN-ACK: the connection opens
			delete(syns, [2]netip.AddrPort{p.Dst, p.Src})
		case p.RST && a.server(p.Src) >= 0:
			syn := syns[[2]netip.AddrPort{p.Dst, p.Src}]
			if syn == nil {
				continue
			}
			delete(syns, [2]netip.AddrPort{p.Dst, p.Src})
			// The line whose connection it reopens: the one of the phone's
			// address that sent that server a request last, or else the
			// first to send anything after it.
			var owner *LineTrace
			var last time.Time
			for _, l := range a.Lines {
				for _, t := range l.Txns {
					if t.Sends[0].Src.Addr() == syn.Src.Addr() && t.Server == a.server(syn.Dst) && t.start().Before(syn.At) && t.start().After(last) {
						owner, last = l, t.start()
					}
				}
			}
			if owner == nil { // its first request: the line that next sends anything
				var first time.Time
				for _, l := range a.Lines {
					for _, t := range l.Txns {
						if t.Sends[0].Src.Addr() == syn.Src.Addr() && t.start().After(syn.At) && (owner == nil || t.start().Before(first)) {
							owner, first = l, t.start()
						}
					}
				}
			}
			if owner != nil {
				owner.Txns = append(owner.Txns, &Txn{Line: owner.AOR, Server: a.server(syn.Dst), Transport: "tcp", Method: "SYN", Expires: -1,
					Sends: []*Message{{Frame: syn.Frame, At: syn.At, Src: syn.Src, Dst: syn.Dst, Transport: "tcp", Request: true, Method: "SYN"}},
					Fault: &Fault{p.Frame, p.At, "TCP connection refused"}})
			}
		}
	}
}

// faults gives each ICMP unreachable and each reset from a server to the
// transaction it ended: the phone's latest one to that server that had no
// final answer yet.
func (a *Analysis) faults(packets []Packet) {
	for i := range packets {
		p := &packets[i]
		var phone netip.AddrPort
		var srv int
		var what string
		switch {
		case p.Proto == "icmp":
			phone, srv, what = p.OrigSrc, a.server(p.OrigDst), "ICMP unreachable"
		case p.Proto == "tcp" && p.RST && !p.SYN:
			phone, srv, what = p.Dst, a.server(p.Src), "TCP reset"
		default:
			continue
		}
		if srv < 0 {
			continue
		}
		var latest *Txn
		for _, l := range a.Lines {
			for _, t := range l.Txns {
				if t.Server == srv && t.Sends[0].Src == phone && !t.start().After(p.At) && t.Final == nil && t.Fault == nil &&
					(latest == nil || t.start().After(latest.start())) {
					latest = t
				}
			}
		}
		if latest != nil {
			latest.Fault = &Fault{p.Frame, p.At, what}
		}
	}
}

// bind infers the line's bindings from its REGISTERs' answers, and which
// REGISTERs were failback probes.
func (a *Analysis) bind(l *LineTrace) {
	slices.SortStableFunc(l.Txns, func(x, y *Txn) int { return x.start().Compare(y.start()) })
	var regs []*Txn
	for _, t := range l.Txns {
		if t.Method == "REGISTER" {
			regs = append(regs, t)
		}
	}
	// Bindings change at answers, which come in another order than the
	// requests: walk them by the time of the 2xx.
	slices.SortStableFunc(regs, func(x, y *Txn) int { return a.outcome(x).At.Compare(a.outcome(y).At) })
	for _, t := range regs {
		// A probe: to the primary, while the line is on a backup.
		if t.Server == 0 && t.Expires != 0 && l.current(t.start()) > 0 {
			t.Probe = true
		}
		if t.Final == nil || t.Final.Code >= 300 {
			continue
		}
		granted := t.Final.Expires
		if granted < 0 {
			granted = t.Expires
		}
		if granted < 0 {
			granted = 3600
		}
		for _, b := range l.Bindings {
			if b.Server == t.Server && b.live(t.Final.At) {
				if granted == 0 || b.CallID == t.CallID {
					b.Removed, b.RemovedBefore = true, t.Final.At
					b.Refreshed = granted > 0
				}
			}
		}
		if granted > 0 {
			d := time.Duration(granted) * time.Second
			l.Bindings = append(l.Bindings, &Binding{Line: l.AOR, Server: t.Server, CallID: t.CallID, From: t.Final.At,
				Until: t.Final.At.Add(d), Frame: t.Final.Frame, Granted: d})
		}
	}
}
