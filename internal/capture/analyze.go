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
	// FailbackMode is when the phone probes the primary from a backup
	// (R18): duration (every Failback Interval; "" too), registration (at
	// each refresh of the backup's registration), new_requests (with a new
	// call or message) or dns_ttl (when the primary's DNS records expire).
	FailbackMode string
	// FailbackWhenIdle: no failback while a call holds the line (R18's
	// failback_when idle, the default); it fails back when the call ends.
	FailbackWhenIdle bool
	Keepalive        time.Duration // 0: off
	BackoffBase      time.Duration
	BackoffMax       time.Duration // 0: BackoffBase
	TimerSpread      int           // percent that refresh, keep-alive and failback timers may come early (R21)
	UnavailableCodes []int         // answers that make a server unavailable (R1)
	Concurrent       bool          // registration_mode concurrent (R17): a binding on every server at once
	// Shared says, by server, that it has register_on_enable 0 (R23): it
	// shares the others' registrations, so the phone may send it a request
	// while it holds a binding on any server. Nil: none.
	Shared []bool
	// SignalUnregistered is only_signal_with_registered 0 (R23): a new
	// request may go to a server whose REGISTER is still out.
	SignalUnregistered bool
	// Registrars are, when the servers are the phone's outbound proxies,
	// the hosts of the registrars behind them in priority order, as the
	// Request-URI of a REGISTER names them (R22). A proxy's 408, 500, 502
	// or 504 to a REGISTER is then the registrar's: the phone tries the
	// next registrar through the same proxy, and after the last the next
	// proxy. Nil: no proxies.
	Registrars []string
	// Transport, "udp" or "tcp", keeps only that transport's messages;
	// "" keeps both.
	Transport string
	// Phone picks the phone to judge: its address of record (user@host,
	// with or without sip:), its IP address, or its IP address and port.
	// The capture's other endpoints are listed in Others, not judged. ""
	// judges every From that sends the servers requests.
	Phone string
	// FromBoot says the capture began before the phone started: what is
	// not in it did not happen.
	FromBoot bool
	// Slack is what the bounds allow beyond the phone's timers: round trips
	// and the phone's own pace between a verdict and its next request.
	Slack time.Duration
	// MaxMemory bounds the bytes the frames kept for the checks may take:
	// those to or from a server, and ICMP about them (0: DefaultMaxMemory).
	// Other frames are read and let go.
	MaxMemory int64
}

// DefaultMaxMemory is MaxMemory's default: 1 GiB, some 2.5 million SIP
// messages of a usual size.
const DefaultMaxMemory = 1 << 30

// DefaultSettings are the seed's defaults (docs/settings.md).
func DefaultSettings() Settings {
	return Settings{T1: 500 * time.Millisecond, T2: 4 * time.Second, CountMode: true, RetryCounts: 3, RetryTime: 4 * time.Second,
		FailbackEnabled: true, FailbackInterval: 1800 * time.Second, FailbackMode: "duration", FailbackWhenIdle: true, BackoffBase: 30 * time.Second,
		UnavailableCodes: []int{500, 503}, Slack: time.Second}
}

// bounds are the settings as the property checker reads them: its budgets
// and rate bound are the ones the runtime is held to.
func (s Settings) bounds() invariant.Settings {
	return invariant.Settings{Servers: len(s.Servers), CountMode: s.CountMode, RetryCounts: s.RetryCounts,
		InviteRetryCounts: s.InviteRetryCounts, RetryTime: s.RetryTime, T1: s.T1, T2: s.T2,
		FailbackEnabled: s.FailbackEnabled, FailbackInterval: s.FailbackInterval, BackoffBase: s.BackoffBase,
		BackoffMax: cmp.Or(s.BackoffMax, s.BackoffBase), Keepalive: s.Keepalive, RTT: s.Slack, FailbackMode: s.FailbackMode,
		FailbackWhenIdle: s.FailbackWhenIdle, TimerSpread: s.TimerSpread}
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
	Expires   int    // what a REGISTER asked; -1: not said
	URI       string // the Request-URI
	Sends     []*Message
	Answers   []*Message
	Final     *Message // the first final answer
	Fault     *Fault   // ICMP unreachable or a TCP reset that ended it
	Probe     bool     // a REGISTER to the primary while registered on a backup only

	next *Txn // a REGISTER: the next one of its Call-ID to its server
	// ownCallID: a probe with the Call-ID of the registration the line
	// holds on its backup, which may as well be a new round under the
	// primary's own budget (a probe's Call-ID is most often its own).
	ownCallID bool
}

// Fault is ICMP unreachable for a datagram, or a TCP reset or refusal.
type Fault struct {
	Frame int
	At    time.Time
	What  string
}

func (t *Txn) start() time.Time { return t.Sends[0].At }

// minGrant is the shortest grant the checks take as it is: the line's
// own floor (R1's rogue registrar), under which refreshing in time would
// storm the server. I8 does not judge shorter ones, which last the floor.
const minGrant = 5 * time.Second

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
	// Late: the 2xx came after the phone's budget for the REGISTER ended,
	// or the phone did not take it (a probe's while a call held the line,
	// with failback_when idle). The server holds the binding; the phone
	// does not count itself registered there.
	Late bool

	probe bool // granted to a failback probe
	// registrar is, behind outbound proxies, the registrar the REGISTER
	// named (R22): an Expires 0 through the same proxy to another one
	// leaves this binding be.
	registrar string
	asked     time.Time // when the REGISTER it answers was first sent
	// stale: a refresh whose 2xx came after the phone had moved to another
	// server (a probe answered first): the phone is not there.
	stale bool
}

// LineTrace is what the capture shows of one line (address of record).
type LineTrace struct {
	AOR      string
	Txns     []*Txn     // by first transmission
	Bindings []*Binding // by time granted

	dialogs map[string]dialog // Call-ID -> the server its dialog was set up through, and when
	holds   *[]hold           // the calls that held the line, once worked out
	regs    *[]*Txn           // its REGISTERs, once listed (by the checks: the capture is read)
}

// registers lists the line's REGISTERs; for the checks, which run once the
// capture is read whole.
func (l *LineTrace) registers() []*Txn {
	if l.regs == nil {
		out := []*Txn{}
		for _, t := range l.Txns {
			if t.Method == "REGISTER" {
				out = append(out, t)
			}
		}
		l.regs = &out
	}
	return *l.regs
}

// Analysis is a capture read for the checks.
type Analysis struct {
	Settings
	Begin, End time.Time
	Packets    int // frames of UDP, TCP or ICMP unreachable
	Messages   int // SIP messages
	Lines      []*LineTrace
	Others     []Endpoint // endpoints that sent the servers requests and are not the Phone
	Problems   []Problem
	Transports string // what the capture carries: udp, tcp, or "udp+tcp"

	resets   map[int][]time.Time  // by server: when the phone's flow to it was lost (RFC 5626): a reset, or a flow keep-alive failed
	flowLost map[int][]time.Time  // by server: when a flow keep-alive failed (the phone leaves the server for it)
	tcpFlows bool                 // the phone sends flow keep-alives over TCP: a connection may be a keep-alive's
	farByes  map[string]time.Time // Call-ID -> the first BYE a server sent the phone
	incoming map[string]time.Time // Call-ID -> an INVITE a server sent the phone
	// connecting, by server: when the phone's connections to it were being
	// opened, from the SYN to the SYN-ACK or reset (or the capture's end).
	connecting map[int][][2]time.Time
}

// Analyze reads a capture and infers the phone's transactions and
// registrations with the servers s names.
func Analyze(r io.Reader, s Settings) (*Analysis, error) {
	if len(s.Servers) == 0 {
		return nil, fmt.Errorf("no servers: give the phone's servers in priority order")
	}
	phone, err := parsePhone(s.Phone)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Settings: s}
	c, err := read(r, a.ofServers, cmp.Or(s.MaxMemory, DefaultMaxMemory))
	if err != nil {
		return nil, err
	}
	packets := c.packets
	msgs, flows, more := messages(packets)
	if s.Transport != "" {
		msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Transport != s.Transport })
	}
	a.Packets, a.Messages, a.Problems, a.Begin, a.End = c.count, len(msgs), append(c.problems, more...), c.begin, c.end
	a.transactions(msgs, phone)
	a.refusals(packets)
	a.faults(packets)
	a.flowLosses(flows, packets)
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

// ofServers says whether p can carry the phone's SIP with its servers: to
// or from a server, or an ICMP unreachable about a datagram to or from one.
func (a *Analysis) ofServers(p Packet) bool {
	if p.Proto == "icmp" {
		return a.server(p.OrigDst) >= 0 || a.server(p.OrigSrc) >= 0
	}
	return a.server(p.Src) >= 0 || a.server(p.Dst) >= 0
}

// server is the index of addr among the servers, or -1.
func (a *Analysis) server(addr netip.AddrPort) int {
	return slices.IndexFunc(a.Servers, func(s netip.AddrPort) bool { return s.Addr().Unmap() == addr.Addr().Unmap() && s.Port() == addr.Port() })
}

// phoneKey is the phone's side of a transaction: its address and port over
// UDP, its address over TCP, where an answer may come on another
// connection than the request (RFC 3261 18.2.2).
func phoneKey(a netip.AddrPort, transport string) netip.AddrPort {
	if transport == "tcp" {
		return netip.AddrPortFrom(a.Addr(), 0)
	}
	return a
}

type txnKey struct {
	phone  netip.AddrPort
	server int
	branch string
	method string
}

// transactions groups the phone's requests to the servers, and their
// answers, by transaction.
func (a *Analysis) transactions(msgs []Message, phone phoneFilter) {
	byKey := map[txnKey]*Txn{}
	lines := map[string]*LineTrace{}
	others := map[Endpoint]int{}
	transports := map[string]bool{}
	for i := range msgs {
		m := &msgs[i]
		if m.Request {
			srv := a.server(m.Dst)
			if srv < 0 {
				if a.server(m.Src) >= 0 && phone.reaches(m.Dst) { // the far end's, through a server
					a.farRequest(m)
				}
				continue
			}
			if !phone.sent(m.From, m.Src) {
				others[Endpoint{AOR: m.From, Addr: phoneKey(m.Src, m.Transport).String()}]++
				continue
			}
			k := txnKey{phoneKey(m.Src, m.Transport), srv, m.Branch, m.Method}
			t := byKey[k]
			if t == nil {
				t = &Txn{Line: m.From, Server: srv, Transport: m.Transport, Method: m.Method, CallID: m.CallID, Branch: m.Branch,
					CSeq: m.CSeq, InDialog: m.ToTag, Expires: m.Expires, URI: m.URI}
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
		t := byKey[txnKey{phoneKey(m.Dst, m.Transport), srv, m.Branch, m.CSeqMethod}]
		if t == nil || m.CallID != t.CallID || m.CSeq != t.CSeq {
			continue // no request of the phone's: not its transaction (I11)
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
	for e, n := range others {
		e.Requests = n
		a.Others = append(a.Others, e)
	}
	slices.SortFunc(a.Others, func(x, y Endpoint) int { return cmp.Or(cmp.Compare(x.AOR, y.AOR), cmp.Compare(x.Addr, y.Addr)) })
}

// farRequest notes a request a server brought the phone: a call to it,
// and a BYE that ends a call (either's).
func (a *Analysis) farRequest(m *Message) {
	var seen map[string]time.Time
	switch {
	case m.Method == "INVITE" && !m.ToTag:
		seen = a.incoming
		if seen == nil {
			a.incoming = map[string]time.Time{}
			seen = a.incoming
		}
	case m.Method == "BYE":
		seen = a.farByes
		if seen == nil {
			a.farByes = map[string]time.Time{}
			seen = a.farByes
		}
	default:
		return
	}
	if _, ok := seen[m.CallID]; !ok {
		seen[m.CallID] = m.At
	}
}

// refusals adds, to the line it belongs to, a connection the phone tried
// to open to a server that the server refused (a SYN answered by a reset),
// or never answered: over TCP the request never reaches the wire, and the
// connection is all the capture shows of the try (R1's transport.tcp, or
// the budget running out while the phone waits to connect).
func (a *Analysis) refusals(packets []Packet) {
	syns := map[[2]netip.AddrPort]*Packet{}
	a.connecting = map[int][][2]time.Time{}
	opened := func(syn *Packet, at time.Time) {
		k := a.server(syn.Dst)
		a.connecting[k] = append(a.connecting[k], [2]time.Time{syn.At, at})
	}
	try := func(syn *Packet, fault *Fault) {
		if owner := a.ownerOf(syn); owner != nil {
			owner.Txns = append(owner.Txns, &Txn{Line: owner.AOR, Server: a.server(syn.Dst), Transport: "tcp", Method: "SYN", Expires: -1,
				Sends: []*Message{{Frame: syn.Frame, At: syn.At, Src: syn.Src, Dst: syn.Dst, Transport: "tcp", Request: true, Method: "SYN"}},
				Fault: fault})
		}
	}
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
			if syn := syns[[2]netip.AddrPort{p.Dst, p.Src}]; syn != nil {
				opened(syn, p.At)
			}
			delete(syns, [2]netip.AddrPort{p.Dst, p.Src})
		case p.RST && a.server(p.Src) >= 0:
			syn := syns[[2]netip.AddrPort{p.Dst, p.Src}]
			if syn == nil {
				continue
			}
			opened(syn, p.At)
			delete(syns, [2]netip.AddrPort{p.Dst, p.Src})
			try(syn, &Fault{p.Frame, p.At, "TCP connection refused"})
		}
	}
	// Still connecting when the capture ends: a try with no answer, which
	// its budget decides (a server that drops the SYN, or is slow to
	// refuse it).
	var left []*Packet
	for _, syn := range syns {
		left = append(left, syn)
	}
	slices.SortFunc(left, func(x, y *Packet) int { return x.Frame - y.Frame })
	for _, syn := range left {
		opened(syn, a.End)
		try(syn, nil)
	}
}

// ownerOf is the line whose connection syn opens: the one of the phone's
// address that sent that server a request last, or else the first to send
// anything after it, or else the last to send anything.
func (a *Analysis) ownerOf(syn *Packet) *LineTrace {
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
	if owner == nil { // nothing after it: the line that sent anything last
		for _, l := range a.Lines {
			for _, t := range l.Txns {
				if t.Sends[0].Src.Addr() == syn.Src.Addr() && t.start().Before(syn.At) && (owner == nil || t.start().After(last)) {
					owner, last = l, t.start()
				}
			}
		}
	}
	return owner
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
			if srv >= 0 {
				// The server's port is closed: whatever the datagram was
				// (an ACK, a keep-alive), the phone's flow there is lost.
				if a.resets == nil {
					a.resets = map[int][]time.Time{}
				}
				a.resets[srv] = append(a.resets[srv], p.At)
			}
		case p.Proto == "tcp" && p.RST && !p.SYN && a.server(p.Src) >= 0:
			phone, srv, what = p.Dst, a.server(p.Src), "TCP reset"
			if a.resets == nil {
				a.resets = map[int][]time.Time{}
			}
			a.resets[srv] = append(a.resets[srv], p.At)
		case p.Proto == "tcp" && p.RST && !p.SYN:
			// The phone reset its own connection: it gave the server up
			// (a server that stopped reading, whose writes timed out).
			phone, srv, what = p.Src, a.server(p.Dst), "connection reset by the phone"
		default:
			continue
		}
		if srv < 0 {
			continue
		}
		// A reset ends the connection and every transaction on it; an
		// ICMP port unreachable says the server's port is closed, and ends
		// every transaction still waiting there, as the phone takes it.
		for _, l := range a.Lines {
			for _, t := range l.Txns {
				if t.Server == srv && t.Sends[0].Src == phone && t.Sends[0].Frame < p.Frame && t.Fault == nil && (t.Final == nil || t.Final.Frame > p.Frame) {
					t.Fault = &Fault{p.Frame, p.At, what}
				}
			}
		}
	}
}

// bind infers the line's bindings from its REGISTERs' answers, and which
// REGISTERs were failback probes.
func (a *Analysis) bind(l *LineTrace) {
	slices.SortStableFunc(l.Txns, func(x, y *Txn) int { return x.start().Compare(y.start()) })
	var regs []*Txn
	last := map[[2]string]*Txn{} // Call-ID and server -> the latest REGISTER
	for _, t := range l.Txns {
		if t.Method == "REGISTER" || t.Method == "SYN" {
			regs = append(regs, t)
		}
		if t.Method == "REGISTER" {
			k := [2]string{t.CallID, fmt.Sprint(t.Server)}
			if prev := last[k]; prev != nil {
				prev.next = t
			}
			last[k] = t
		}
	}
	// Bindings change at answers, which come in another order than the
	// requests: walk them by the time of the final answer.
	end := func(t *Txn) time.Time {
		if t.Final != nil {
			return t.Final.At
		}
		return t.start()
	}
	slices.SortStableFunc(regs, func(x, y *Txn) int { return end(x).Compare(end(y)) })
	for _, t := range regs {
		// A probe: to the primary, while the line is on a backup. With
		// failback off there are none: such a REGISTER is a new round (the
		// user's), which the wire cannot tell from a probe otherwise; nor in
		// concurrent registration, where the primary's binding registers
		// and refreshes on its own budget.
		if !a.Concurrent && a.FailbackEnabled && t.Server == 0 && t.Expires != 0 && (l.current(t.start()) > 0 || a.offPrimaryRegistrar(l, t)) {
			t.Probe, t.ownCallID = true, l.ownCallID(t)
		}
		if t.Method == "SYN" || t.Final == nil || t.Final.Code >= 300 {
			continue
		}
		// A 2xx after the phone's budget ended binds the phone at the
		// server, but the phone had given up on it and is not there.
		// So may one at the very instant the budget ended (the wire does
		// not order one instant): taken as late, it accuses nobody.
		late := a.outcome(t).Kind != "ok" || t.Final.At.Equal(t.start().Add(a.budget(t))) ||
			// a probe that a new round (not a refresh on the backup)
			// abandoned before its 2xx (R11)
			t.Probe && slices.ContainsFunc(l.Txns, func(u *Txn) bool {
				return u.Method == "REGISTER" && u.CallID != t.CallID && u.Expires != 0 && u.Server != l.current(t.start()) &&
					u.start().After(t.start()) && u.start().Before(t.Final.At)
			})
		granted := t.Final.Expires
		if granted < 0 || t.Expires == 0 {
			// What the phone asked: a de-registration ends its binding,
			// whatever a rogue server says it granted.
			granted = t.Expires
		}
		if granted < 0 {
			granted = 3600
		}
		if t.Expires > 0 {
			granted = min(granted, t.Expires) // a phone refreshes by what it asked
		}
		registrar := a.registrarOf(t)
		for _, b := range l.Bindings {
			if b.Server == t.Server && b.registrar == registrar && b.live(t.Final.At) {
				if granted == 0 || b.CallID == t.CallID {
					b.Removed, b.RemovedBefore = true, t.Final.At
					b.Refreshed = granted > 0
				}
			}
		}
		if granted > 0 {
			// A rogue grant under the floor of I8 lasts the floor for the
			// phone: it cannot refresh faster without storming the server.
			d := time.Duration(granted) * time.Second
			l.Bindings = append(l.Bindings, &Binding{Line: l.AOR, Server: t.Server, CallID: t.CallID, From: t.Final.At,
				Until: t.Final.At.Add(max(d, minGrant)), Frame: t.Final.Frame, Granted: d, Late: late, probe: t.Probe, asked: t.start(), registrar: registrar})
		}
	}
	for _, b := range l.Bindings {
		b.stale = !b.probe && slices.ContainsFunc(l.Bindings, func(c *Binding) bool {
			return c != b && !c.Late && c.Server != b.Server && c.From.After(b.asked) &&
				(c.From.Before(b.From) || c.From.Equal(b.From) && c.Frame > b.Frame)
		})
	}
	// A refresh sent before its binding expired keeps the phone counting
	// itself registered there until the refresh is decided: a refresh
	// whose budget runs past the expiry (a short grant, a slow server)
	// does not make the phone registered nowhere in between.
	for _, b := range l.Bindings {
		if b.Late || b.Removed {
			continue
		}
		for _, u := range regs {
			if u.Method == "REGISTER" && u.Server == b.Server && u.CallID == b.CallID && u.Expires != 0 &&
				u.start().After(b.From) && u.start().Before(b.Until) {
				// A challenge does not decide the refresh: the REGISTER
				// sent again with credentials does (R1).
				for o := a.outcome(u); o.Kind == "challenged" && u.next != nil && !u.next.start().Before(o.At) && u.next.start().Sub(o.At) <= a.Slack; o = a.outcome(u) {
					u = u.next
				}
				switch o := a.outcome(u); {
				case o.Kind == "pending":
					b.Until = maxTime(b.Until, a.End.Add(time.Nanosecond)) // past the end of the capture
				case o.At.After(b.Until): // a 2xx from then on is the binding that follows it
					b.Until = o.At
				}
			}
		}
	}
	// A probe the primary accepted while a call held the line leaves the
	// phone on its backup until the call ends (failback_when idle, R18).
	// A call placed through the primary at the instant of the probe's 2xx
	// came after it: the phone had failed back when it placed it.
	if holds := a.holds(l); len(holds) > 0 {
		for _, b := range l.Bindings {
			if b.probe && slices.ContainsFunc(holds, func(h hold) bool {
				return !b.From.Before(h.from) && b.From.Before(h.to) && !(b.From.Equal(h.from) && h.via == b.Server)
			}) {
				b.Late = true
			}
		}
	}
	// Probes sent while a binding lived on only by its refresh.
	for _, t := range regs {
		if !t.Probe && !a.Concurrent && a.FailbackEnabled && t.Server == 0 && t.Expires != 0 && l.current(t.start()) > 0 {
			t.Probe, t.ownCallID = true, l.ownCallID(t)
		}
	}
}
