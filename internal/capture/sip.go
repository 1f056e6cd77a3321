package capture

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message is one SIP message of the capture, with what the checks read of
// it.
type Message struct {
	Frame     int // where it begins
	At        time.Time
	Src, Dst  netip.AddrPort
	Transport string // "udp" or "tcp"

	Request bool
	Method  string // of a request
	URI     string // of a request: its Request-URI
	Code    int    // of a response

	CallID, Branch string
	CSeq           int
	CSeqMethod     string
	From           string // the From's address of record: user@host
	ToTag          bool   // in a dialog (a request) or answered by the far end
	Expires        int    // the Expires header, else the first Contact's expires; -1: neither
	RetryAfter     int    // seconds; 0: none
}

// parseSIP reads a SIP message's start line and the headers the checks
// use. It refuses what is not SIP with the reason; the body is not read.
func parseSIP(b []byte) (Message, error) {
	m := Message{Expires: -1}
	head, _, found := bytes.Cut(b, []byte("\r\n\r\n"))
	if !found {
		head = b
	}
	lines := strings.Split(string(head), "\r\n")
	start := strings.SplitN(lines[0], " ", 3) // a reason phrase has spaces of its own
	switch {
	case len(start) == 3 && start[0] == "SIP/2.0":
		code, err := strconv.Atoi(start[1])
		if err != nil || code < 100 || code > 699 {
			return m, fmt.Errorf("status line %q: no status code", clip(lines[0]))
		}
		m.Code = code
	case len(start) == 3 && start[2] == "SIP/2.0" && isToken(start[0]):
		m.Request, m.Method, m.URI = true, start[0], start[1]
	default:
		return m, fmt.Errorf("not a SIP start line: %q", clip(lines[0]))
	}
	viaSeen, fromSeen, toSeen := false, false, false
	var contactExpires = -1
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue // a folded line or garbage: nothing the checks read
		}
		value = strings.TrimSpace(value)
		switch headerName(name) {
		case "via", "v":
			if !viaSeen { // the top Via names the transaction
				viaSeen = true
				m.Branch = param(strings.Split(value, ",")[0], "branch")
			}
		case "call-id", "i":
			m.CallID = value
		case "cseq":
			f := strings.Fields(value)
			if len(f) != 2 {
				return m, fmt.Errorf("CSeq %q", clip(value))
			}
			n, err := strconv.Atoi(f[0])
			if err != nil || n < 0 {
				return m, fmt.Errorf("CSeq %q", clip(value))
			}
			m.CSeq, m.CSeqMethod = n, f[1]
		case "from", "f":
			m.From, fromSeen = aor(value), true
		case "to", "t":
			m.ToTag, toSeen = param(value, "tag") != "", true
		case "expires":
			if n, ok := deltaSeconds(value); ok {
				m.Expires = n
			}
		case "contact", "m":
			if contactExpires < 0 {
				if n, ok := deltaSeconds(param(value, "expires")); ok {
					contactExpires = n
				}
			}
		case "retry-after":
			if n, ok := deltaSeconds(strings.Fields(value + " ")[0]); ok && n > 0 {
				m.RetryAfter = n
			}
		}
	}
	// A registrar says what it granted in the Contact; a client asks in
	// either.
	if contactExpires >= 0 && (m.Expires < 0 || !m.Request) {
		m.Expires = contactExpires
	}
	switch {
	case m.CallID == "":
		return m, fmt.Errorf("%s without Call-ID", m.kind())
	case m.CSeqMethod == "":
		return m, fmt.Errorf("%s without CSeq", m.kind())
	case m.Branch == "":
		return m, fmt.Errorf("%s without a Via branch", m.kind())
	case !fromSeen:
		// RFC 3261 8.1.1: a phone drops such a message (I11), so the
		// checks do not read it either.
		return m, fmt.Errorf("%s without From", m.kind())
	case !toSeen:
		return m, fmt.Errorf("%s without To", m.kind())
	}
	return m, nil
}

func (m Message) kind() string {
	if m.Request {
		return m.Method
	}
	return strconv.Itoa(m.Code) + " response"
}

// headerName is the header's name in lower case, without allocating for
// the names the checks read.
func headerName(name string) string {
	name = strings.TrimSpace(name)
	for _, known := range []string{"via", "call-id", "cseq", "from", "to", "expires", "contact", "retry-after"} {
		if strings.EqualFold(name, known) {
			return known
		}
	}
	return name // compact forms are lower case already
}

// maxDelta is the largest delta-seconds RFC 3261 25.1 allows, 2^32 - 1; a
// larger Expires or Retry-After is taken as it, as a phone takes it, so that
// no hostile number overflows the times it is added to.
const maxDelta = 1<<32 - 1

// deltaSeconds reads an Expires or Retry-After value, 0 to maxDelta: a
// string of digits too large to hold is maxDelta; anything else is not a
// value.
func deltaSeconds(value string) (int, bool) {
	if value == "" || strings.TrimLeft(value, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(value)
	if err != nil || n > maxDelta { // all digits: only too large to hold
		return maxDelta, true
	}
	return n, true
}

// param returns a header value's parameter name (";name=value").
func param(value, name string) string {
	for _, p := range strings.Split(value, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			v, _, _ = strings.Cut(v, ">")
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// aor is the user@host of a From or To value.
func aor(value string) string {
	if i := strings.IndexByte(value, '<'); i >= 0 {
		value = value[i+1:]
		value, _, _ = strings.Cut(value, ">")
	}
	value, _, _ = strings.Cut(value, ";")
	value = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(value), "sips:"), "sip:")
	return value
}

func isToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < 'A' || r > 'Z' })
}

// clip shortens what a message quotes of hostile input.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// messages reads the SIP messages of the packets: one per UDP datagram,
// and those of each TCP stream, reassembled in sequence order and split by
// Content-Length; and the flow keep-alives between them (RFC 5626 4.4):
// STUN and CRLF datagrams, CRLFs between a stream's messages.
func messages(packets []Packet) ([]Message, []flowPacket, []Problem) {
	out := make([]Message, 0, len(packets))
	var flows []flowPacket
	var problems []Problem
	streams := map[[2]netip.AddrPort]*stream{}
	for i := range packets {
		p := &packets[i]
		switch p.Proto {
		case "udp":
			if f, ok := flowDatagram(p); ok {
				flows = append(flows, f)
				continue
			}
			if len(bytes.TrimSpace(p.Payload)) == 0 {
				continue
			}
			m, err := parseSIP(p.Payload)
			if err != nil {
				problems = append(problems, Problem{p.Frame, err.Error()})
				continue
			}
			m.Frame, m.At, m.Src, m.Dst, m.Transport = p.Frame, p.At, p.Src, p.Dst, "udp"
			out = append(out, m)
		case "tcp":
			key := [2]netip.AddrPort{p.Src, p.Dst}
			s := streams[key]
			if s == nil || p.SYN {
				s = &stream{next: p.Seq}
				if p.SYN {
					s.next++
				}
				streams[key] = s
			}
			for _, m := range s.add(p, &problems) {
				m.Src, m.Dst, m.Transport = p.Src, p.Dst, "tcp"
				out = append(out, m)
			}
			for _, f := range s.crlfs {
				flows = append(flows, flowPacket{Frame: f.frame, At: f.at, Src: p.Src, Dst: p.Dst, Transport: "tcp"})
			}
			s.crlfs = s.crlfs[:0]
		}
	}
	// A gap the reader went on past may have come after all, later than it
	// waits: then nothing was missing, the segments were too far out of
	// order.
	for _, s := range streams {
		for _, k := range s.skips {
			gap := int(k.to - k.from)
			switch late := min(k.late, gap); {
			case late == gap:
				problems[k.problem].Msg = fmt.Sprintf("%d bytes of a TCP stream came more than %d segments out of order, later than the reader waits: not read", gap, maxPending)
			case late > 0:
				problems[k.problem].Msg = fmt.Sprintf("%d bytes of a TCP stream missing from the capture, and %d more came more than %d segments out of order, later than the reader waits: not read",
					gap-late, late, maxPending)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Message) int { return a.Frame - b.Frame })
	return out, flows, problems
}

// maxStream bounds what one TCP stream may hold unparsed: a peer that
// sends no message end loses its stream, not the checker's memory.
const maxStream = 1 << 20

// stream is one direction of a TCP connection being reassembled.
type stream struct {
	next    uint32            // the sequence number expected next
	pending map[uint32]Packet // segments that came early
	buf     []byte
	frames  []frameAt // where each byte range of buf began
	skips   []skip    // gaps the stream went on past
	crlfs   []frameAt // keep-alive CRLFs read between messages, not yet taken
}

// skip is a gap a stream went on past: bytes [from, to) of its sequence,
// reported as problem; late counts those of its bytes that came after all.
type skip struct {
	from, to      uint32
	problem, late int
}

type frameAt struct {
	off   int
	frame int
	at    time.Time
}

// add takes a segment and returns the messages it completes.
func (s *stream) add(p *Packet, problems *[]Problem) []Message {
	if len(p.Payload) == 0 {
		return nil
	}
	if d := int32(p.Seq - s.next); d > 0 { // early: keep it until the gap is filled
		if s.pending == nil {
			s.pending = map[uint32]Packet{}
		}
		s.pending[p.Seq] = *p
		if len(s.pending) < maxPending {
			return nil
		}
		// The gap is a segment the capture lost: what was before it is
		// gone, the stream goes on after it.
		gap := minGap(s)
		*problems = append(*problems, Problem{p.Frame, fmt.Sprintf("%d bytes of a TCP stream missing from the capture", gap)})
		s.skips = append(s.skips, skip{from: s.next, to: s.next + uint32(gap), problem: len(*problems) - 1})
		s.buf, s.frames = nil, s.frames[:0]
		s.next += uint32(gap)
	} else {
		s.cameLate(p)
		s.append(p)
	}
	s.drain()
	var out []Message
	for {
		// Keep-alive CRLFs between messages: a ping or a pong (RFC 5626
		// 4.4.1).
		trim := 0
		for trim < len(s.buf) && (s.buf[trim] == '\r' || s.buf[trim] == '\n') {
			trim++
		}
		if trim > 0 {
			s.crlfs = append(s.crlfs, s.frames[0])
		}
		s.consume(trim)
		end := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(s.buf) > maxStream {
				*problems = append(*problems, Problem{s.frames[0].frame, "a TCP stream without a message end in 1 MiB; dropped"})
				s.consume(len(s.buf))
			}
			return out
		}
		// The body's length first: a message the checks cannot read (an
		// answer without To, say) still frames the stream, and its body
		// must not be read as the next message.
		length, err := contentLength(s.buf[:end])
		if err != nil {
			*problems = append(*problems, Problem{s.frames[0].frame, err.Error()})
			s.consume(end + 4)
			continue
		}
		if len(s.buf) < end+4+length {
			return out // the body is still on its way
		}
		m, err := parseSIP(s.buf[:end+4])
		if err != nil {
			*problems = append(*problems, Problem{s.frames[0].frame, err.Error()})
		} else {
			m.Frame, m.At = s.frames[0].frame, s.frames[0].at
			out = append(out, m)
		}
		s.consume(end + 4 + length)
	}
}

// maxPending is how many segments past a gap a stream waits for the
// segment that fills it.
const maxPending = 64

// minGap is how far the earliest segment waiting is past the stream; drain
// leaves only segments past it.
func minGap(s *stream) int32 {
	gap := int32(math.MaxInt32)
	for seq := range s.pending {
		gap = min(gap, int32(seq-s.next))
	}
	return gap
}

// drain appends the waiting segments the stream has reached: one that
// begins where it ends, and one that overlaps what it has (a segment that
// came early and was then sent again in other sizes), until none is left
// that the stream reaches.
func (s *stream) drain() {
	for again := true; again; {
		again = false
		for seq, q := range s.pending {
			if int32(seq-s.next) <= 0 {
				delete(s.pending, seq)
				s.append(&q)
				again = true
			}
		}
	}
}

// cameLate counts the bytes of p that fall in a gap the stream went on
// past.
func (s *stream) cameLate(p *Packet) {
	from, to := p.Seq, p.Seq+uint32(len(p.Payload))
	for i := range s.skips {
		k := &s.skips[i]
		lo, hi := max(int64(int32(from-k.from)), 0), min(int64(int32(to-k.from)), int64(k.to-k.from))
		if hi > lo {
			k.late += int(hi - lo)
		}
	}
}

// append adds the new bytes of p, skipping what a retransmission repeats.
func (s *stream) append(p *Packet) {
	skip := int(s.next - p.Seq)
	if skip >= len(p.Payload) {
		return
	}
	s.frames = append(s.frames, frameAt{len(s.buf), p.Frame, p.At})
	s.buf = append(s.buf, p.Payload[skip:]...)
	s.next += uint32(len(p.Payload) - skip)
}

// consume drops n bytes from the front of the stream.
func (s *stream) consume(n int) {
	if n == 0 {
		return
	}
	s.buf = s.buf[n:]
	i := 0
	for i+1 < len(s.frames) && s.frames[i+1].off <= n {
		i++
	}
	s.frames = s.frames[i:]
	for j := range s.frames {
		s.frames[j].off = max(0, s.frames[j].off-n)
	}
	if len(s.buf) == 0 {
		s.buf, s.frames = nil, s.frames[:0]
	}
}

// contentLength reads a stream message's Content-Length, which TCP needs
// to find where the message ends (RFC 3261 18.3).
func contentLength(head []byte) (int, error) {
	for _, line := range strings.Split(string(head), "\r\n")[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(name)); n == "content-length" || n == "l" {
			v, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || v < 0 || v > maxStream {
				return 0, fmt.Errorf("Content-Length %q", clip(value))
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("a message over TCP without Content-Length")
}
