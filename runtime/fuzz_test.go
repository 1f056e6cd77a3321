package runtime_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime/runtimetest"
)

// FuzzReceive sends any bytes to a line from its primary, in virtual time:
// the line is registered, has a REGISTER refresh and an INVITE in flight,
// and the input may name them: $RBRANCH, $RCALLID, $RTAG and $RCSEQ stand
// for the REGISTER's branch, Call-ID, From tag and CSeq number, $IBRANCH,
// $ICALLID, $ITAG and $ICSEQ for the INVITE's. Nothing may panic, not even
// a panic the agent contains (each one is a bug), and the line must still
// answer an OPTIONS afterwards (I11). The seeds are the messages that once
// crashed the process, RFC 4475's invalid ones, and good answers.
func FuzzReceive(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		s := newSimLine(t, nil)
		s.line.Register()
		s.clock.Advance(time.Second)
		s.net.Set(s.eps[0], func(sv *runtimetest.SimServer) { sv.Mode = runtimetest.SimSilent })
		if _, err := s.line.Dial("sip:1002@example.test"); err != nil {
			t.Fatal(err)
		}
		s.line.Register() // a REGISTER in flight beside the INVITE
		reg, inv := s.lastRequest(0, "REGISTER"), s.lastRequest(0, "INVITE")
		r := strings.NewReplacer(
			"$RBRANCH", param(reg.Via().Params.Get("branch")), "$RCALLID", reg.CallID().Value(),
			"$RTAG", param(reg.From().Params.Get("tag")), "$RCSEQ", itoa(reg.CSeq().SeqNo),
			"$IBRANCH", param(inv.Via().Params.Get("branch")), "$ICALLID", inv.CallID().Value(),
			"$ITAG", param(inv.From().Params.Get("tag")), "$ICSEQ", itoa(inv.CSeq().SeqNo))
		s.agent.Receive(s.eps[0], []byte(r.Replace(msg)), func([]byte) {})
		s.clock.Advance(time.Minute)
		if c := s.agent.Counters(); c.Panics > 0 {
			t.Fatalf("%d contained panics: a bug", c.Panics)
		}
		replies := s.inject(0, "OPTIONS sip:1001@192.0.2.10 SIP/2.0\nVia: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKping\nMax-Forwards: 70\n"+
			"From: <sip:ping@example.test>;tag=p\nTo: <sip:1001@example.test>\nCall-ID: ping\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
		if len(replies) != 1 || status(replies[0]) != "SIP/2.0 200 OK" {
			t.Fatalf("after the input the agent answers OPTIONS with %q", replies)
		}
	})
}

func param(v string, _ bool) string { return v }

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// fuzzSeeds are FuzzReceive's seeds, with the placeholders it fills in.
var fuzzSeeds = []string{
	// A 2xx to the line's INVITE with nothing but its branch: once a crash.
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$IBRANCH\r\nContent-Length: 0\r\n\r\n",
	// A good 2xx to the INVITE, and to the REGISTER.
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$IBRANCH\r\nFrom: <sip:1001@example.test>;tag=$ITAG\r\n" +
		"To: <sip:1002@example.test>;tag=far\r\nCall-ID: $ICALLID\r\nCSeq: $ICSEQ INVITE\r\nContact: <sip:1002@127.0.1.1>\r\n" +
		"Record-Route: <sip:127.0.1.1;lr>\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$RBRANCH\r\nFrom: <sip:1001@example.test>;tag=$RTAG\r\n" +
		"To: <sip:1001@example.test>;tag=reg\r\nCall-ID: $RCALLID\r\nCSeq: $RCSEQ REGISTER\r\nContact: <sip:1001@192.0.2.10:5060>;expires=0\r\n" +
		"Expires: 4294967296\r\nContent-Length: 0\r\n\r\n",
	// A 423, a stale challenge and a 503 to the REGISTER.
	"SIP/2.0 423 Interval Too Brief\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$RBRANCH\r\nFrom: <sip:1001@example.test>;tag=$RTAG\r\n" +
		"To: <sip:1001@example.test>\r\nCall-ID: $RCALLID\r\nCSeq: $RCSEQ REGISTER\r\nMin-Expires: 99999999999\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$RBRANCH\r\nFrom: <sip:1001@example.test>;tag=$RTAG\r\n" +
		"To: <sip:1001@example.test>\r\nCall-ID: $RCALLID\r\nCSeq: $RCSEQ REGISTER\r\n" +
		"WWW-Authenticate: Digest realm=\"x\", nonce=\"n\", algorithm=MD7, qop=\"auth\", stale=true\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=$RBRANCH\r\nFrom: <sip:1001@example.test>;tag=$RTAG\r\n" +
		"To: <sip:1001@example.test>\r\nCall-ID: $RCALLID\r\nCSeq: $RCSEQ REGISTER\r\nRetry-After: 30 (maintenance);duration=99\r\nContent-Length: 0\r\n\r\n",
	// RFC 4475 3.1.2.5, insuf, to the line's user; an INVITE without From.
	"INVITE sip:1001@example.com SIP/2.0\r\nCSeq: 193942 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nl: 0\r\n\r\n",
	"INVITE sip:1001@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKx\r\nMax-Forwards: 70\r\nTo: <sip:1001@example.test>\r\n" +
		"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	// A BYE and a CANCEL in the INVITE's dialog, from the far end.
	"BYE sip:1001@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.1;branch=z9hG4bKbye\r\nMax-Forwards: 70\r\nFrom: <sip:1002@example.test>;tag=far\r\n" +
		"To: <sip:1001@example.test>;tag=$ITAG\r\nCall-ID: $ICALLID\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
}
