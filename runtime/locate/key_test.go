package locate

import "testing"

// TestLiteral: a server given by IP address is its own one target, on
// SIP's port for its transport when it names none (UDP for Auto, RFC 3263
// 4.1); a name is none.
func TestLiteral(t *testing.T) {
	for _, tc := range []struct {
		key  Key
		want Target
	}{
		{Key{Addr: "192.0.2.1", Transport: Auto}, Target{Host: "192.0.2.1", Port: 5060, Transport: UDP}},
		{Key{Addr: "2001:db8::1", Port: 5070, Transport: TCP}, Target{Host: "2001:db8::1", Port: 5070, Transport: TCP}},
		{Key{Addr: "192.0.2.1", Transport: TLS, TLSName: "pbx.example"}, Target{Host: "192.0.2.1", Port: 5061, Transport: TLS, ServerName: "pbx.example"}},
	} {
		if got, ok := Literal(tc.key); !ok || got != tc.want {
			t.Errorf("%v: %+v %v, want %+v", tc.key, got, ok, tc.want)
		}
	}
	if _, ok := Literal(Key{Addr: "pbx.example"}); ok {
		t.Error("a name taken as an address")
	}
	if got := (Key{Addr: "pbx.example", Transport: Auto}).String(); got != "pbx.example (SRV, auto)" {
		t.Errorf("String: %q", got)
	}
}
