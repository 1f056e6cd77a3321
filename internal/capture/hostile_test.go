package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDamagedFiles: a file that is not a capture, or whose lengths lie,
// is refused with the place of the damage before any frame is decoded; no
// length in it sizes an allocation.
func TestDamagedFiles(t *testing.T) {
	good := testdataCapture(t, "good")
	huge := bytes.Clone(good)
	binary.LittleEndian.PutUint32(huge[24+8:], 0x7fffffff) // the first frame claims 2 GiB
	cut := good[:len(good)-7]
	ng := []byte{0x0A, 0x0D, 0x0D, 0x0A, 0xff, 0xff, 0xff, 0x7f, 0x4D, 0x3C, 0x2B, 0x1A}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"text", []byte(strings.Repeat("REGISTER sip:x SIP/2.0\r\n", 3)), "not a pcap or pcapng capture: magic"},
		{"a frame of 2 GiB", huge, "pcap: frame 1 at byte 24: 2147483647 bytes captured"},
		{"cut off", cut, "pcap: frame 22"},
		{"a pcapng block past the end", ng, "pcapng: the block at byte 0 claims"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Analyze(bytes.NewReader(c.data), settings())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestMemoryBudget: the frames kept for the checks may take MaxMemory
// bytes; a capture whose SIP needs more is refused, naming the frame and
// the flag, and frames between other ports do not count.
func TestMemoryBudget(t *testing.T) {
	c := newCrafter(t)
	c.register(0, primary, "reg-1", 1, 3600, false)
	for i := range 1000 {
		c.udp(time.Second+time.Duration(i)*time.Millisecond, netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.9:40002"), strings.Repeat("x", 1000))
	}
	s := settings()
	s.MaxMemory = 4096 // the two SIP messages, not the 1 MB of the rest
	if a, err := Analyze(bytes.NewReader(c.bytes()), s); err != nil || a.Messages != 2 {
		t.Fatalf("within the budget: %v", err)
	}
	for range 10 {
		c.register(time.Hour, primary, "reg-1", 2, 3600, false)
	}
	if _, err := Analyze(bytes.NewReader(c.bytes()), s); err == nil || !strings.Contains(err.Error(), "-max-memory") {
		t.Errorf("past the budget: %v, want a refusal naming -max-memory", err)
	}
}

// TestGarbageSIP: datagrams and streams that are not SIP, or SIP missing
// what names a transaction, are problems with their frame, and the rest of
// the capture is checked.
func TestGarbageSIP(t *testing.T) {
	c := newCrafter(t)
	c.register(0, primary, "reg-1", 1, 60, false)
	c.udp(1e9, phone, primary, "\x00\x01 garbage")
	c.udp(2e9, phone, primary, "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9\r\nCSeq: 1 REGISTER\r\n\r\n")
	c.udp(3e9, phone, primary, "SIP/2.0 abc OK\r\n\r\n")
	c.udp(4e9, phone, primary, "\r\n\r\n") // a keep-alive: no problem
	c.tcp(5e9, phone, backup, "", true, false)
	c.tcp(5e9, phone, backup, "OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n", false, false)
	a, err := Analyze(bytes.NewReader(c.bytes()), settings())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range a.Problems {
		got = append(got, p.String())
	}
	want := []string{
		`frame 3: not a SIP start line: "\x00\x01 garbage"`,
		"frame 4: REGISTER without Call-ID",
		`frame 5: status line "SIP/2.0 abc OK": no status code`,
		// The stream's framing breaks first: nothing after it can be read.
		`frame 8: Content-Length " 99999999"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(a.Lines) != 1 || len(a.Lines[0].Bindings) != 1 {
		t.Errorf("the good REGISTER was lost: %+v", a.Lines)
	}
}

// FuzzAnalyze: whatever the bytes, the reader and the checks end with a
// report or an error, never a panic.
func FuzzAnalyze(f *testing.F) {
	for _, name := range []string{"good", "good_tcp", "invite_before_register"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+".pcap"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// pcapng, good and hostile (TestNgBlocksAtTheEdge)
	frame := make([]byte, 60)
	f.Add(ngFile(0, ngBlock(ngEnhanced, ngPacketBody(60, frame)), ngBlock(ngPacket, ngPacketBody(60, frame)), ngBlock(ngSimple, ngSimpleBody(60, frame))))
	f.Add(ngFile(0, ngBlock(ngSimple, ngSimpleBody(0xffffffff, frame))))
	f.Add(ngFile(0, ngBlock(ngPacket, ngPacketBody(0xffffffff, frame))))
	f.Add(ngFile(0, ngBlock(ngEnhanced, make([]byte, 16))))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Analyze(bytes.NewReader(data), settings())
		if err != nil {
			return
		}
		a.Report("fuzz")
	})
}

// FuzzParseSIP: any message is parsed or refused, never a panic.
func FuzzParseSIP(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContact: <sip:a>;expires=60\r\n\r\n"))
	f.Add([]byte("INVITE sip:a SIP/2.0\r\nv: SIP/2.0/TCP a;branch=z9\r\ni: x\r\nCSeq: 2 INVITE\r\nf: <sip:1@a>;tag=1\r\nt: <sip:2@a;x>;tag=\r\nl: 3\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSIP(b)
		if err == nil && (m.CallID == "" || m.Branch == "" || m.CSeqMethod == "") {
			t.Errorf("accepted a message without what names its transaction: %+v", m)
		}
	})
}

// TestLostSegment: a TCP segment the capture lost costs the message it
// was part of, named as a problem, not the rest of the stream.
func TestLostSegment(t *testing.T) {
	c, lost, _, n := withoutFirstSegment(t) // the first message never reaches the capture
	a, err := Analyze(bytes.NewReader(c.bytes()), settings())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Problems) != 1 || !strings.Contains(a.Problems[0].Msg, fmt.Sprintf("%d bytes of a TCP stream missing", len(lost))) {
		t.Errorf("problems %v, want the lost segment", a.Problems)
	}
	if a.Messages != n-1 {
		t.Errorf("%d messages, want the %d after the gap", a.Messages, n-1)
	}
}

// withoutFirstSegment crafts a TCP stream of OPTIONS, more than the
// reader waits for past a gap, with the segment of the first left out: it
// returns the crafter, that first message, its sequence number and how
// many messages the stream has.
func withoutFirstSegment(t *testing.T) (c *crafter, first string, seq uint32, n int) {
	c = newCrafter(t)
	c.tcp(0, phone, primary, "", true, false)
	var reqs []req
	for i := range maxPending + 3 {
		r := c.request("OPTIONS", fmt.Sprintf("ka-%d", i), 1, -1)
		r.transport = "TCP"
		reqs = append(reqs, r)
	}
	k := [2]netip.AddrPort{phone, primary}
	first, seq = reqs[0].String(), c.seq[k]
	c.seq[k] += uint32(len(first))
	for i, r := range reqs[1:] {
		c.tcp(time.Duration(i+1)*time.Millisecond, phone, primary, r.String(), false, false)
	}
	return c, first, seq, len(reqs)
}

// TestSegmentPastTheWindow: a segment that comes more segments out of
// order than the reader waits for is not read, and is named as such, not
// as bytes the capture lost.
func TestSegmentPastTheWindow(t *testing.T) {
	c, first, seq, _ := withoutFirstSegment(t)
	k := [2]netip.AddrPort{phone, primary}
	end := c.seq[k]
	c.seq[k] = seq // the first message, at last
	c.tcp(time.Second, phone, primary, first, false, false)
	c.seq[k] = end
	a, err := Analyze(bytes.NewReader(c.bytes()), settings())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d bytes of a TCP stream came more than %d segments out of order", len(first), maxPending)
	if len(a.Problems) != 1 || !strings.Contains(a.Problems[0].Msg, want) {
		t.Errorf("problems %v, want %q", a.Problems, want)
	}
}

// ngFile is a little-endian pcapng file: a section, an Ethernet interface
// with snap length snap, then the blocks.
func ngFile(snap uint32, blocks ...[]byte) []byte {
	shb := ngBlock(ngSection, []byte{0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	idb := ngBlock(ngInterface, binary.LittleEndian.AppendUint32([]byte{1, 0, 0, 0}, snap))
	out := append(shb, idb...)
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}

// ngBlock is a block of type typ around body (padded to a word).
func ngBlock(typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(len(body) + ngBlockHeader)
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

// ngPacketBody is the body of an enhanced or obsolete packet block that
// claims caplen bytes and holds data.
func ngPacketBody(caplen uint32, data []byte) []byte {
	b := make([]byte, 12, 20+len(data))
	b = binary.LittleEndian.AppendUint32(b, caplen)
	b = binary.LittleEndian.AppendUint32(b, caplen)
	return append(b, data...)
}

// ngSimpleBody is the body of a simple packet block of a packet of orig
// bytes that holds data.
func ngSimpleBody(orig uint32, data []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, orig), data...)
}

// TestNgBlocksAtTheEdge: each pcapng block type the reader reads is taken
// when its fields and the packet bytes it claims fit the block exactly, and
// refused, before any frame is decoded, one byte past that; among them the
// small hostile files that once sized a 4 GiB buffer (a simple packet
// claiming 4 GiB, the obsolete packet block, an enhanced packet block
// shorter than its fields) and then said "0 frames".
func TestNgBlocksAtTheEdge(t *testing.T) {
	frame := make([]byte, 60)
	packet, simple := ngPacketBody, ngSimpleBody
	for _, c := range []struct {
		name string
		file []byte
		want string // "" taken
	}{
		{"enhanced packet filling its block", ngFile(0, ngBlock(ngEnhanced, packet(60, frame))), ""},
		{"enhanced packet one byte past its block", ngFile(0, ngBlock(ngEnhanced, packet(61, frame))), "claims 61 bytes"},
		{"enhanced packet block shorter than its fields", ngFile(0, ngBlock(ngEnhanced, make([]byte, 16))), "too few for its fields"},
		{"enhanced packet claiming 4 GiB", ngFile(0, ngBlock(ngEnhanced, packet(0xffffffff, frame))), "claims 4294967295 bytes"},
		{"obsolete packet filling its block", ngFile(0, ngBlock(ngPacket, packet(60, frame))), ""},
		{"obsolete packet one byte past its block", ngFile(0, ngBlock(ngPacket, packet(61, frame))), "claims 61 bytes"},
		{"obsolete packet block shorter than its fields", ngFile(0, ngBlock(ngPacket, make([]byte, 16))), "too few for its fields"},
		{"simple packet filling its block", ngFile(0, ngBlock(ngSimple, simple(60, frame))), ""},
		{"simple packet one byte past its block", ngFile(0, ngBlock(ngSimple, simple(61, frame))), "claims 61 bytes"},
		{"simple packet claiming 4 GiB", ngFile(0, ngBlock(ngSimple, simple(0xffffffff, frame))), "claims 4294967295 bytes"},
		{"simple packet cut to the snap length", ngFile(60, ngBlock(ngSimple, simple(1500, frame))), ""},
		{"simple packet one byte past the snap length", ngFile(61, ngBlock(ngSimple, simple(1500, frame))), "claims 61 bytes"},
		{"simple packet block shorter than its fields", ngFile(0, ngBlock(ngSimple, nil)), "too few for its fields"},
		{"statistics block with its fields", ngFile(0, ngBlock(ngStatistics, make([]byte, 12))), ""},
		{"statistics block shorter than its fields", ngFile(0, ngBlock(ngStatistics, make([]byte, 8))), "too few for its fields"},
		{"interface block shorter than its fields", ngFile(0, ngBlock(ngInterface, make([]byte, 4))), "too few for its fields"},
	} {
		_, _, err := Read(bytes.NewReader(c.file))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want it taken", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestLimitsAtTheEdge: each bound on what a hostile file may claim takes
// the value at the bound and refuses the one past it.
func TestLimitsAtTheEdge(t *testing.T) {
	pcap := func(incl int) []byte {
		b := make([]byte, 24+16+incl)
		binary.LittleEndian.PutUint32(b, 0xa1b2c3d4)
		binary.LittleEndian.PutUint32(b[20:], 1) // Ethernet
		binary.LittleEndian.PutUint32(b[24+8:], uint32(incl))
		binary.LittleEndian.PutUint32(b[24+12:], uint32(incl))
		return b
	}
	if n, err := checkPcap(bufio.NewReader(bytes.NewReader(pcap(maxFrame)))); err != nil || n != 1 {
		t.Errorf("a frame of %d bytes: %d frames, %v; want it taken", maxFrame, n, err)
	}
	if _, err := checkPcap(bufio.NewReader(bytes.NewReader(pcap(maxFrame + 1)))); err == nil {
		t.Errorf("a frame of %d bytes taken", maxFrame+1)
	}
	head := func(n int) []byte { return []byte(fmt.Sprintf("OPTIONS sip:x SIP/2.0\r\nContent-Length: %d", n)) }
	if n, err := contentLength(head(maxStream)); err != nil || n != maxStream {
		t.Errorf("Content-Length %d: %d, %v; want it taken", maxStream, n, err)
	}
	if _, err := contentLength(head(maxStream + 1)); err == nil {
		t.Errorf("Content-Length %d taken", maxStream+1)
	}
	if n, ok := deltaSeconds(fmt.Sprint(maxDelta)); !ok || n != maxDelta {
		t.Errorf("delta-seconds %d: %d, %v; want it taken", maxDelta, n, ok)
	}
	for _, v := range []string{fmt.Sprint(maxDelta + 1), "99999999999999999999"} {
		if n, ok := deltaSeconds(v); !ok || n != maxDelta {
			t.Errorf("delta-seconds %q: %d, %v; want %d, as a phone takes it", v, n, ok, maxDelta)
		}
	}
	for _, v := range []string{"-1", "1e3", "", "+5"} {
		if n, ok := deltaSeconds(v); ok {
			t.Errorf("delta-seconds %q taken as %d", v, n)
		}
	}
}

// TestOverlappingSegments: a message whose segments came out of order and
// were resent in other sizes, so that a waiting segment begins inside what
// the stream already has, is put together once, and the stream goes on.
func TestOverlappingSegments(t *testing.T) {
	msg := "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	next := strings.Replace(msg, "z9hG4bK1", "z9hG4bK2", 1)
	const base = 1000
	seg := func(frame, from, to int, text string) *Packet {
		return &Packet{Frame: frame, Proto: "tcp", Seq: uint32(base + from), Payload: []byte(text[from:to])}
	}
	s := &stream{next: base}
	var problems []Problem
	var got []Message
	for _, p := range []*Packet{
		seg(1, 40, len(msg), msg), // the end, early
		seg(2, 10, 50, msg),       // the middle, early, overlapping the end
		seg(3, 0, 20, msg),        // the start, overlapping the middle
	} {
		got = append(got, s.add(p, &problems)...)
	}
	got = append(got, s.add(&Packet{Frame: 4, Proto: "tcp", Seq: uint32(base + len(msg)), Payload: []byte(next)}, &problems)...)
	if len(problems) > 0 {
		t.Errorf("problems %v", problems)
	}
	if len(got) != 2 || got[0].Branch != "z9hG4bK1" || got[0].Frame != 3 || got[1].Branch != "z9hG4bK2" || got[1].Frame != 4 {
		t.Fatalf("messages %+v, want z9hG4bK1 from frame 3 and z9hG4bK2 from frame 4", got)
	}
	if len(s.pending) != 0 || len(s.buf) != 0 {
		t.Errorf("%d segments still waiting, %d bytes left", len(s.pending), len(s.buf))
	}
}
