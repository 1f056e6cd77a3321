package runtime

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The edge: every message from the network is checked here before any
// handler sees it (RFC 3261 8.1.1, 8.2). Past this point code may read
// Via, From, To, Call-ID and CSeq of any message, and Max-Forwards of a
// request, without checking them again.

// badRequest is why a request is refused at the edge: the status code and
// reason phrase of the answer (RFC 3261 8.2.2, 8.2.3, 21.4).
type badRequest struct {
	code   int
	reason string
}

func (b *badRequest) Error() string { return fmt.Sprintf("%d %s", b.code, b.reason) }

// checkRequest returns nil for a request that handlers may use, else the
// answer it gets.
func checkRequest(req *sip.Request) *badRequest {
	if req.SipVersion != "SIP/2.0" {
		return &badRequest{505, "Version Not Supported"}
	}
	if name := missingHeader(req); name != "" {
		return &badRequest{400, "Missing or Bad " + name}
	}
	if mf := req.MaxForwards(); mf == nil || *mf > 255 {
		return &badRequest{400, "Missing or Bad Max-Forwards"}
	}
	if name := repeatedHeader(req); name != "" {
		return &badRequest{400, "More Than One " + name}
	}
	if req.CSeq().MethodName != req.Method {
		return &badRequest{400, "CSeq Method Does Not Match"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips":
	default:
		return &badRequest{416, "Unsupported URI Scheme"}
	}
	return nil
}

// checkResponse returns an error for a response that no transaction may
// take: another SIP version or a mandatory header missing or unreadable.
func checkResponse(res *sip.Response) error {
	if res.SipVersion != "SIP/2.0" {
		return fmt.Errorf("version %q", res.SipVersion)
	}
	if name := missingHeader(res); name != "" {
		return fmt.Errorf("missing or bad %s", name)
	}
	if name := repeatedHeader(res); name != "" {
		return fmt.Errorf("more than one %s", name)
	}
	if res.StatusCode < 100 || res.StatusCode > 699 {
		return fmt.Errorf("status code %d", res.StatusCode)
	}
	return nil
}

// missingHeader names the first of Via, From, To, Call-ID and CSeq that m
// lacks or that does not parse; "" when all are there.
func missingHeader(m sip.Message) string {
	switch {
	case m.Via() == nil:
		return "Via"
	case m.From() == nil:
		return "From"
	case m.To() == nil:
		return "To"
	case m.CallID() == nil || m.CallID().Value() == "":
		return "Call-ID"
	case m.CSeq() == nil:
		return "CSeq"
	}
	return ""
}

// repeatedHeader names the first of the headers that a message carries
// once (RFC 3261 7.3.1: From, To, Call-ID, CSeq, Max-Forwards) that it
// carries more than once, in full or compact form; "" when none is.
func repeatedHeader(m sip.Message) string {
	for _, h := range [][2]string{{"From", "f"}, {"To", "t"}, {"Call-ID", "i"}, {"CSeq", ""}, {"Max-Forwards", ""}} {
		n := len(m.GetHeaders(h[0]))
		if h[1] != "" {
			n += len(m.GetHeaders(h[1]))
		}
		if n > 1 {
			return h[0]
		}
	}
	return ""
}

// Counters are what the agent dropped or refused at the edge, for
// metrics: nothing here ever reached a line.
type Counters struct {
	// UnparsableMessages could not be parsed at all.
	UnparsableMessages uint64
	// BadRequests were answered with a 4xx or 505 at the edge (RFC 3261 8.2).
	BadRequests uint64
	// BadResponses lacked a mandatory header and were dropped.
	BadResponses uint64
	// UnmatchedResponses matched no transaction in flight (another Call-ID,
	// CSeq, From tag, method or source than the request's) and were dropped.
	UnmatchedResponses uint64
	// Panics is how many messages a contained panic stopped; each is a bug.
	Panics uint64
	// RejectedCalls were incoming INVITEs refused for a call limit (486).
	RejectedCalls uint64
}

type counters struct {
	unparsable, badRequests, badResponses, unmatched, panics, rejectedCalls atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{UnparsableMessages: c.unparsable.Load(), BadRequests: c.badRequests.Load(), BadResponses: c.badResponses.Load(),
		UnmatchedResponses: c.unmatched.Load(), Panics: c.panics.Load(), RejectedCalls: c.rejectedCalls.Load()}
}

// logLimit lets through a few log lines per source and window, so that a
// server sending garbage cannot fill the disk; the rest are counted only.
type logLimit struct {
	clock  Clock
	window time.Duration
	burst  int

	mu      sync.Mutex
	started time.Time
	seen    map[string]int
}

func newLogLimit(clock Clock) *logLimit {
	return &logLimit{clock: clock, window: time.Minute, burst: 5, seen: map[string]int{}}
}

// allow says whether one more line about source may be logged now.
func (l *logLimit) allow(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if now.Sub(l.started) >= l.window || len(l.seen) > 10000 {
		l.started, l.seen = now, map[string]int{}
	}
	l.seen[source]++
	return l.seen[source] <= l.burst
}
