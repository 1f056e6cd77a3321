package capture

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var update = flag.Bool("update", false, "write the stand-in phones' captures to testdata/")

// The stand-in phone and its two servers, as the captures in testdata
// have them.
var (
	phone   = netip.MustParseAddrPort("127.0.0.1:5062")
	primary = netip.MustParseAddrPort("127.0.0.2:5060")
	backup  = netip.MustParseAddrPort("127.0.0.3:5060")
	t0      = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

// crafter writes a capture frame by frame: a stand-in phone that behaves
// as a story says, and servers that answer as it says.
type crafter struct {
	t      *testing.T
	buf    bytes.Buffer
	w      *pcapgo.Writer
	seq    map[[2]netip.AddrPort]uint32
	branch int
}

func newCrafter(t *testing.T) *crafter {
	c := &crafter{t: t, seq: map[[2]netip.AddrPort]uint32{}}
	c.w = pcapgo.NewWriterNanos(&c.buf)
	if err := c.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *crafter) frame(at time.Duration, ls ...gopacket.SerializableLayer) {
	c.t.Helper()
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		c.t.Fatal(err)
	}
	data := b.Bytes()
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(at), CaptureLength: len(data), Length: len(data)}, data); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crafter) ip(src, dst netip.AddrPort, proto layers.IPProtocol) (*layers.Ethernet, *layers.IPv4) {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
}

// udp writes a datagram.
func (c *crafter) udp(at time.Duration, src, dst netip.AddrPort, payload string) {
	eth, ip := c.ip(src, dst, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	u.SetNetworkLayerForChecksum(ip)
	c.frame(at, eth, ip, u, gopacket.Payload(payload))
}

// icmp writes the port unreachable that server sends for a datagram the
// phone sent it.
func (c *crafter) icmp(at time.Duration, server netip.AddrPort, payload string) {
	eth, ip := c.ip(server, phone, layers.IPProtocolICMPv4)
	orig := gopacket.NewSerializeBuffer()
	_, oip := c.ip(phone, server, layers.IPProtocolUDP)
	ou := &layers.UDP{SrcPort: layers.UDPPort(phone.Port()), DstPort: layers.UDPPort(server.Port())}
	ou.SetNetworkLayerForChecksum(oip)
	if err := gopacket.SerializeLayers(orig, gopacket.SerializeOptions{FixLengths: true}, oip, ou, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	c.frame(at, eth, ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(orig.Bytes()[:28]))
}

// tcp writes a segment of the stream from src to dst; rst and syn as the
// flags say.
func (c *crafter) tcp(at time.Duration, src, dst netip.AddrPort, payload string, syn, rst bool) {
	eth, ip := c.ip(src, dst, layers.IPProtocolTCP)
	k := [2]netip.AddrPort{src, dst}
	seq := c.seq[k]
	seg := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, SYN: syn, RST: rst, ACK: !syn && !rst, Window: 65535}
	seg.SetNetworkLayerForChecksum(ip)
	c.frame(at, eth, ip, seg, gopacket.Payload(payload))
	c.seq[k] = seq + uint32(len(payload))
	if syn {
		c.seq[k]++
	}
}

// phonePort is the stand-in phone's address at port p: one of its TCP
// connections.
func phonePort(p uint16) netip.AddrPort { return netip.AddrPortFrom(phone.Addr(), p) }

// accepted writes a connection from src that the server dst accepts a
// millisecond later (a SYN and its SYN-ACK).
func (c *crafter) accepted(at time.Duration, src, dst netip.AddrPort) {
	c.tcp(at, src, dst, "", true, false)
	c.tcp(at+time.Millisecond, dst, src, "", true, false)
}

// refused writes a connection from src that the server dst refuses after
// the given time (a SYN answered by a reset).
func (c *crafter) refused(at, after time.Duration, src, dst netip.AddrPort) {
	c.tcp(at, src, dst, "", true, false)
	c.tcp(at+after, dst, src, "", false, true)
}

// tcpRegister writes a REGISTER (Call-ID reg, the given CSeq and
// expiry) on the phone's connection src to the server dst, answered a
// millisecond later with code (a 200 grants the expiry asked); code 0
// leaves it unanswered.
func (c *crafter) tcpRegister(at time.Duration, src, dst netip.AddrPort, cseq, expires, code int) {
	r := c.request("REGISTER", "reg", cseq, expires)
	r.transport = "TCP"
	c.tcp(at, src, dst, r.String(), false, false)
	extra := ""
	if code == 200 {
		extra = fmt.Sprintf("Contact: <sip:1001@127.0.0.1:5062>;expires=%d\r\n", expires)
	}
	if code > 0 {
		c.tcp(at+time.Millisecond, dst, src, answer(r, code, extra), false, false)
	}
}

func (c *crafter) bytes() []byte { return c.buf.Bytes() }

// verdicts checks the capture crafted so far with the test settings and
// returns each invariant's verdict by its id.
func (c *crafter) verdicts() map[string]Verdict {
	c.t.Helper()
	return c.verdictsWith(settings())
}

// verdictsWith is verdicts with settings s.
func (c *crafter) verdictsWith(s Settings) map[string]Verdict {
	c.t.Helper()
	a, err := Analyze(bytes.NewReader(c.bytes()), s)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]Verdict{}
	for _, v := range a.Check() {
		out[v.ID] = v
	}
	return out
}

// holds checks the capture crafted so far with settings s and fails the
// test for every invariant it finds violated.
func (c *crafter) holds(s Settings) {
	c.t.Helper()
	a, err := Analyze(bytes.NewReader(c.bytes()), s)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, v := range a.Check() {
		if v.Status == Violated {
			c.t.Errorf("%s violated: %v", v.ID, v.Findings)
		}
	}
}

// req is a SIP request of the stand-in phone (user 1001).
type req struct {
	method, callID string
	cseq, expires  int // expires -1: no Expires header
	branch         string
	toTag          bool
	transport      string
	uri            string // the Request-URI; "" for sip:example.test
}

func (c *crafter) request(method, callID string, cseq, expires int) req {
	c.branch++
	return req{method: method, callID: callID, cseq: cseq, expires: expires, branch: fmt.Sprintf("z9hG4bK-%d", c.branch), transport: "UDP"}
}

func (r req) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, cmp.Or(r.uri, "sip:example.test"))
	fmt.Fprintf(&b, "Via: SIP/2.0/%s 127.0.0.1:5062;branch=%s;rport\r\n", r.transport, r.branch)
	b.WriteString("Max-Forwards: 70\r\nFrom: <sip:1001@example.test>;tag=ph1\r\n")
	if r.toTag {
		b.WriteString("To: <sip:1002@example.test>;tag=far\r\n")
	} else if r.method == "REGISTER" {
		b.WriteString("To: <sip:1001@example.test>\r\n")
	} else {
		b.WriteString("To: <sip:1002@example.test>\r\n")
	}
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:1001@127.0.0.1:5062>\r\n", r.callID, r.cseq, r.method)
	if r.expires >= 0 {
		fmt.Fprintf(&b, "Expires: %d\r\n", r.expires)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// answer is the server's response to r.
func answer(r req, code int, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, map[int]string{100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 503: "Service Unavailable"}[code])
	fmt.Fprintf(&b, "Via: SIP/2.0/%s 127.0.0.1:5062;branch=%s;rport=5062\r\n", r.transport, r.branch)
	b.WriteString("From: <sip:1001@example.test>;tag=ph1\r\nTo: <sip:1001@example.test>;tag=srv\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\n%sContent-Length: 0\r\n\r\n", r.callID, r.cseq, r.method, extra)
	return b.String()
}

// register: a REGISTER to server answered 200 granting expires, after a
// digest challenge when auth is set; it returns the next CSeq.
func (c *crafter) register(at time.Duration, server netip.AddrPort, callID string, cseq, expires int, auth bool) int {
	r := c.request("REGISTER", callID, cseq, expires)
	c.udp(at, phone, server, r.String())
	if auth {
		c.udp(at+10*time.Millisecond, server, phone, answer(r, 401, "WWW-Authenticate: Digest realm=\"example.test\", nonce=\"n1\"\r\n"))
		cseq++
		r = c.request("REGISTER", callID, cseq, expires)
		at += 20 * time.Millisecond
		c.udp(at, phone, server, r.String())
	}
	c.udp(at+10*time.Millisecond, server, phone, answer(r, 200, fmt.Sprintf("Contact: <sip:1001@127.0.0.1:5062>;expires=%d\r\n", expires)))
	return cseq + 1
}

// silent: a request sent at the RFC 3261 Timer E times of n transmissions
// and never answered (an ICMP unreachable for each, if icmp).
func (c *crafter) silent(at time.Duration, server netip.AddrPort, r req, n int, icmp bool) {
	for k := range n {
		c.udp(at, phone, server, r.String())
		if icmp {
			c.icmp(at+time.Millisecond, server, r.String())
			return
		}
		at += min(500*time.Millisecond<<k, 4*time.Second)
	}
}

// call: an INVITE through server answered 200, its ACK, and a BYE from the
// phone at end.
func (c *crafter) call(at, end time.Duration, server netip.AddrPort, callID string) {
	inv := c.request("INVITE", callID, 1, -1)
	c.udp(at, phone, server, inv.String())
	c.udp(at+10*time.Millisecond, server, phone, answer(inv, 100, ""))
	c.udp(at+20*time.Millisecond, server, phone, answer(inv, 180, ""))
	c.udp(at+500*time.Millisecond, server, phone, answer(inv, 200, ""))
	ack := c.request("ACK", callID, 1, -1)
	ack.toTag = true
	c.udp(at+510*time.Millisecond, phone, server, ack.String())
	bye := c.request("BYE", callID, 2, -1)
	bye.toTag = true
	c.udp(end, phone, server, bye.String())
	c.udp(end+10*time.Millisecond, server, phone, answer(bye, 200, ""))
}

// The stand-in phones, each a capture in testdata.
var phones = map[string]func(c *crafter){
	// A phone that does everything right: registers on the primary with a
	// challenge, finds it silent at a refresh and fails over within the
	// budget, calls through the backup, probes the primary after the
	// Failback Interval and fails back, then sends a MESSAGE there.
	"good": func(c *crafter) {
		cseq := c.register(0, primary, "reg-1", 1, 60, true)
		c.silent(20*time.Second, primary, c.request("REGISTER", "reg-1", cseq, 60), 3, false)
		cseq = c.register(23600*time.Millisecond, backup, "reg-1", cseq+1, 60, false)
		c.call(30*time.Second, 35*time.Second, backup, "call-1")
		cseq = c.register(53*time.Second, backup, "reg-1", cseq, 60, false)
		c.register(83600*time.Millisecond, primary, "probe-1", 1, 60, false)
		m := c.request("MESSAGE", "msg-1", 1, -1)
		c.udp(90*time.Second, phone, primary, m.String())
		c.udp(90010*time.Millisecond, primary, phone, answer(m, 200, ""))
	},
	// A phone that keeps trying the primary after it went silent, never
	// the backup (I2).
	"never_fails_over": func(c *crafter) {
		cseq := c.register(0, primary, "reg-1", 1, 60, false)
		c.silent(20*time.Second, primary, c.request("REGISTER", "reg-1", cseq, 60), 3, false)
		c.silent(24*time.Second, primary, c.request("REGISTER", "reg-1", cseq+1, 60), 3, false)
		c.silent(28*time.Second, primary, c.request("REGISTER", "reg-1", cseq+2, 60), 3, false)
	},
	// A phone that registers on the backup while the primary works (I3).
	"skips_primary": func(c *crafter) {
		c.register(0, primary, "reg-1", 1, 60, false)
		c.register(10*time.Second, backup, "reg-2", 1, 60, false)
	},
	// A phone that sends one transmission more than Signal Retry Counts
	// (3) to a silent primary before it fails over (I4).
	"retransmits_too_many": func(c *crafter) {
		r := c.request("REGISTER", "reg-1", 1, 60)
		c.silent(0, primary, r, 4, false)
		c.register(7600*time.Millisecond, backup, "reg-1", 2, 60, false)
	},
	// A phone that sends its INVITE to the backup when the primary is
	// unreachable, before it registers there (I5).
	"invite_before_register": func(c *crafter) {
		cseq := c.register(0, primary, "reg-1", 1, 60, false)
		inv := c.request("INVITE", "call-1", 1, -1)
		c.silent(10*time.Second, primary, inv, 1, true)
		c.call(10100*time.Millisecond, 15*time.Second, backup, "call-2")
		c.register(16*time.Second, backup, "reg-1", cseq, 60, false)
	},
	// Over TCP: the primary refuses the connection, the phone registers on
	// the backup; one message comes in two segments, out of order.
	"good_tcp": func(c *crafter) {
		r := c.request("REGISTER", "reg-1", 1, 60)
		r.transport = "TCP"
		c.tcp(0, phone, primary, "", true, false)
		c.tcp(time.Millisecond, primary, phone, "", false, true)
		r2 := c.request("REGISTER", "reg-1", 2, 60)
		r2.transport = "TCP"
		c.tcp(10*time.Millisecond, phone, backup, "", true, false)
		c.tcp(11*time.Millisecond, backup, phone, "", true, false)
		msg := r2.String()
		k := [2]netip.AddrPort{phone, backup}
		first := c.seq[k]
		c.seq[k] = first + 40
		c.tcp(12*time.Millisecond, phone, backup, msg[40:], false, false) // the second part first
		c.seq[k] = first
		c.tcp(13*time.Millisecond, phone, backup, msg[:40], false, false)
		c.seq[k] = first + uint32(len(msg))
		c.tcp(20*time.Millisecond, backup, phone, answer(r2, 200, "Contact: <sip:1001@127.0.0.1:5062>;expires=60\r\n"), false, false)
		_ = r
	},
}

// testdataCapture returns the stand-in phone's capture: written to
// testdata with -update, read from there otherwise.
func testdataCapture(t *testing.T, name string) []byte {
	t.Helper()
	path := filepath.Join("testdata", name+".pcap")
	if *update {
		c := newCrafter(t)
		phones[name](c)
		if err := os.WriteFile(path, c.bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/capture -update writes it)", err)
	}
	return data
}
