package runtime_test

import (
	"strings"
	"testing"
	"time"
)

// TestInvalidRequestsAreNotAccepted is item 10 of the hardening issue: the
// invalid messages of RFC 4475 section 3.1.2 (written again here, addressed
// to the line's user from its primary) got 200 or no answer. RFC 3261 8.2
// asks for a 4xx where an answer can be sent: none may be accepted, none
// may start a call, and the agent must go on.
func TestInvalidRequestsAreNotAccepted(t *testing.T) {
	const head = "Via: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKtort\nMax-Forwards: 70\nFrom: <sip:1002@example.test>;tag=t1\n" +
		"To: <sip:1001@example.test>\nCall-ID: torture\nContact: <sip:1002@127.0.1.1>\n"
	for _, tc := range []struct{ name, msg, want string }{
		{"clerr: Content-Length past the body", "INVITE sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: 9999\n\nv=0\n", ""},
		{"ncl: negative Content-Length", "INVITE sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Length: -999\n\n", ""},
		{"scalarlg: huge CSeq", "OPTIONS sip:1001@example.test SIP/2.0\n" + head + "CSeq: 36893488147419103232 OPTIONS\nContent-Length: 0\n\n", ""}, // unparsable: dropped
		{"scalarlg: huge Max-Forwards", "OPTIONS sip:1001@example.test SIP/2.0\n" + strings.Replace(head, "Max-Forwards: 70", "Max-Forwards: 300", 1) + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n", "400"},
		{"insuf: no Call-ID, From, To", "INVITE sip:1001@example.test SIP/2.0\nVia: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKins\nMax-Forwards: 70\nCSeq: 1 INVITE\nContent-Length: 0\n\n", "400"},
		{"ltgtruri: Request-URI in <>", "INVITE <sip:1001@example.test> SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Length: 0\n\n", ""},
		{"lwsruri: space in the Request-URI", "INVITE sip:1001@example.test; lr SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Length: 0\n\n", ""},
		{"badvers: SIP/7.0", "OPTIONS sip:1001@example.test SIP/7.0\n" + head + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n", "505"},
		{"mismatch01: CSeq of another method", "OPTIONS sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Length: 0\n\n", "400"},
		{"mismatch02: unknown method, CSeq mismatch", "NEWMETHOD sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 INVITE\nContent-Length: 0\n\n", "400"},
		{"unkscm: unknown URI scheme", "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0\n" + head + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n", "416"},
		{"quotbal: unterminated quote in From", "INVITE sip:1001@example.test SIP/2.0\n" + strings.Replace(head, "From: <sip:1002@example.test>", `From: "Mr. J. User <sip:1002@example.test>`, 1) + "CSeq: 1 INVITE\nContent-Length: 0\n\n", ""},
		{"multi01: two From headers", "INVITE sip:1001@example.test SIP/2.0\n" + head + "From: <sip:other@example.test>;tag=t2\nCSeq: 1 INVITE\nContent-Length: 0\n\n", "400"},
		{"zeromf: Max-Forwards of words", "OPTIONS sip:1001@example.test SIP/2.0\n" + strings.Replace(head, "Max-Forwards: 70", "Max-Forwards: seventy", 1) + "CSeq: 1 OPTIONS\nContent-Length: 0\n\n", ""}, // unparsable: dropped
	} {
		s := newSimLine(t, nil)
		s.line.Register()
		s.clock.Advance(time.Second)
		replies := s.inject(0, tc.msg)
		for _, r := range replies {
			code := strings.Fields(status(r))
			if len(code) < 2 || code[1][0] == '1' || code[1][0] == '2' {
				t.Errorf("%s: answered %q", tc.name, status(r))
			} else if tc.want != "" && code[1] != tc.want {
				t.Errorf("%s: answered %q, want %s", tc.name, status(r), tc.want)
			}
		}
		if tc.want != "" && len(replies) == 0 {
			t.Errorf("%s: no answer, want %s", tc.name, tc.want)
		}
		if n := len(s.line.Calls()); n != 0 {
			t.Errorf("%s: %d calls", tc.name, n)
		}
	}
}

// TestMethodsAreCaseSensitive: RFC 3261 7.1. RFC 4475's intmeth (3.1.1.4),
// a valid request whose method is a mixed-case token written the same in
// its request line and its CSeq, was refused 400 as a CSeq mismatch (the
// parser upper-cases the request line's method only); it is a method the
// agent does not implement. A lower-case "invite" is no INVITE either.
func TestMethodsAreCaseSensitive(t *testing.T) {
	const head = "Via: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKcase\nMax-Forwards: 70\nFrom: <sip:1002@example.test>;tag=t1\n" +
		"To: <sip:1001@example.test>\nCall-ID: case\nContact: <sip:1002@127.0.1.1>\n"
	const intmeth = "!interesting-Method0123456789_*+`.%indeed'~"
	for _, tc := range []struct{ name, msg, want string }{
		{"intmeth", intmeth + " sip:1001@example.test SIP/2.0\n" + head + "CSeq: 139122385 " + intmeth + "\nContent-Length: 0\n\n", "501"},
		{"invite in lower case", "invite sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 invite\nContent-Length: 0\n\n", "501"},
		{"CSeq in another case", "INVITE sip:1001@example.test SIP/2.0\n" + head + "CSeq: 1 invite\nContent-Length: 0\n\n", "400"},
	} {
		s := newSimLine(t, nil)
		s.line.Register()
		s.clock.Advance(time.Second)
		replies := s.inject(0, tc.msg)
		if len(replies) != 1 || !strings.HasPrefix(status(replies[0]), "SIP/2.0 "+tc.want+" ") {
			t.Errorf("%s: answered %q, want one %s", tc.name, replies, tc.want)
		}
		if n := len(s.line.Calls()); n != 0 {
			t.Errorf("%s: %d calls", tc.name, n)
		}
	}
}
