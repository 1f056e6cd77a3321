package wire

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Parse parses one message, with a panic of the parser on hostile bytes
// turned into an error. The parser upper-cases a request's method, but
// methods are case-sensitive (RFC 3261 7.1): "invite" is no INVITE, and
// RFC 4475's intmeth names the same mixed-case method in its request line
// and its CSeq. The request keeps its method as written.
func Parse(data []byte) (msg sip.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("parser panic: %v", r)
		}
	}()
	msg, err = sip.ParseMessage(data)
	if req, ok := msg.(*sip.Request); ok {
		line := bytes.TrimLeft(data, "\r\n")
		if i := bytes.IndexByte(line, ' '); i > 0 && strings.EqualFold(string(line[:i]), string(req.Method)) {
			req.Method = sip.RequestMethod(line[:i])
		}
	}
	return msg, err
}

// ParseSeconds reads a delta-seconds value (RFC 3261 25.1); ok is false
// for anything else, a negative number included. Values past 2^31-1 are
// taken as that.
func ParseSeconds(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 1<<31 - 1, true // all digits: only too large
	}
	return int(n), true
}

// SplitValues splits a header value that lists several entries
// ("<sip:a;lr>, <sip:b;lr>") into them.
func SplitValues(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(v[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(v[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// RecordRoutes returns the Record-Route entries of m in the order the
// message lists them (RFC 3261 12.1: a UAS keeps it, a UAC reverses it).
func RecordRoutes(m sip.Message) []string {
	var out []string
	for _, h := range m.GetHeaders("Record-Route") {
		out = append(out, SplitValues(h.Value())...)
	}
	return out
}
