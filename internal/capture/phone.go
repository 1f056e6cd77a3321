package capture

// Which phone is judged (Settings.Phone), and the others, listed.

import (
	"fmt"
	"net/netip"
	"strings"
)

// Endpoint is one sender of requests to the servers that is not the judged
// phone: its address of record, where it sent from, and how many requests.
type Endpoint struct {
	AOR      string
	Addr     string
	Requests int
}

// phoneFilter is the phone that Settings.Phone names: an address of
// record, an address and port, or an address; the zero value is every one.
type phoneFilter struct {
	aor  string
	ap   netip.AddrPort
	addr netip.Addr
}

func parsePhone(phone string) (phoneFilter, error) {
	if phone == "" {
		return phoneFilter{}, nil
	}
	if ap, err := netip.ParseAddrPort(phone); err == nil {
		return phoneFilter{ap: ap}, nil
	}
	if addr, err := netip.ParseAddr(strings.Trim(phone, "[]")); err == nil {
		return phoneFilter{addr: addr}, nil
	}
	aor := strings.TrimPrefix(strings.TrimPrefix(phone, "sips:"), "sip:")
	if user, host, ok := strings.Cut(aor, "@"); !ok || user == "" || host == "" || strings.ContainsAny(aor, " ,;<>") {
		return phoneFilter{}, fmt.Errorf("phone %q: give its address of record (user@host) or its address (IP or IP:PORT)", phone)
	}
	return phoneFilter{aor: aor}, nil
}

// sent reports whether a request from aor at src is the phone's.
func (p phoneFilter) sent(aor string, src netip.AddrPort) bool {
	switch {
	case p.ap.IsValid():
		return src == p.ap
	case p.addr.IsValid():
		return src.Addr() == p.addr
	case p.aor != "":
		return strings.EqualFold(aor, p.aor)
	}
	return true
}

// reaches reports whether a message to dst may be for the phone: by
// address when the phone is named by one, else any.
func (p phoneFilter) reaches(dst netip.AddrPort) bool {
	switch {
	case p.ap.IsValid():
		return dst.Addr() == p.ap.Addr()
	case p.addr.IsValid():
		return dst.Addr() == p.addr
	}
	return true
}
