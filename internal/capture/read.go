// Package capture checks a phone against the line's invariants
// (docs/requirements.md) from a packet capture of its SIP traffic: it
// reads pcap and pcapng files, reassembles SIP over UDP and TCP, sees the
// servers' ICMP port unreachable and TCP resets, infers what the phone
// did (transactions, registrations, probes, calls) and judges every
// invariant the wire can decide. TLS is encrypted on the wire and out of
// its reach.
package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Packet is one frame of a capture that can matter to SIP.
type Packet struct {
	Frame    int // 1-based, as Wireshark numbers frames
	At       time.Time
	Src, Dst netip.AddrPort
	Proto    string // "udp", "tcp" or "icmp"
	Payload  []byte
	// TCP
	Seq      uint32
	SYN, RST bool
	// ICMP destination unreachable: the UDP datagram it returns.
	OrigSrc, OrigDst netip.AddrPort
}

// Problem is a frame the reader or the SIP parser could not use.
type Problem struct {
	Frame int
	Msg   string
}

func (p Problem) String() string { return fmt.Sprintf("frame %d: %s", p.Frame, p.Msg) }

// maxFrame is the largest frame kept: a SIP message over UDP fits in 64 KiB,
// and no capture tool writes frames past 256 KiB.
const maxFrame = 256 << 10

// Read reads a pcap or pcapng capture and returns its UDP, TCP and ICMP
// unreachable frames. A damaged file is refused with the place of the
// damage before any frame is decoded; a frame that does not decode is a
// Problem, not an error.
func Read(r io.Reader) ([]Packet, []Problem, error) {
	c, err := read(r, nil, 0)
	return c.packets, c.problems, err
}

// kept is what read kept of a capture, and what it saw of the rest.
type kept struct {
	packets    []Packet
	problems   []Problem
	count      int       // the UDP, TCP and ICMP unreachable frames, kept or not
	begin, end time.Time // the first and last of them
}

// read reads the capture in two passes over a stream, the first checking
// every length in it and the second decoding it: a file is never held in
// memory whole (one that cannot seek is, within maxCapture). keep (nil:
// all) says which packets to keep; the others cost nothing once decoded,
// and what the kept ones hold may not pass budget bytes (0: no bound).
func read(r io.Reader, keep func(Packet) bool, budget int64) (kept, error) {
	var c kept
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		data, err := readAll(r)
		if err != nil {
			return c, err
		}
		rs = bytes.NewReader(data)
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return c, err
	}
	br := bufio.NewReaderSize(rs, 64<<10)
	head, _ := br.Peek(24)
	ng := len(head) >= 4 && binary.LittleEndian.Uint32(head) == ngSection
	switch {
	case ng:
		err = checkNg(br)
	case len(head) >= 24:
		_, err = checkPcap(br)
	default:
		return c, errors.New("not a pcap or pcapng capture: too short")
	}
	if err != nil {
		return c, err
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return c, err
	}
	br.Reset(rs)
	var src interface {
		ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var link layers.LinkType
	if ng {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return c, fmt.Errorf("pcapng: %w", err)
		}
		src, link = r, r.LinkType()
	} else {
		var h [24]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return c, err
		}
		f, err := pcapHeader(h[:], br)
		if err != nil {
			return c, err
		}
		src, link = f, f.link
	}
	d, err := newDecoder(link)
	if err != nil {
		return c, err
	}
	var used int64
	for frame := 1; ; frame++ {
		buf, ci, err := src.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, fmt.Errorf("frame %d: %w", frame, err)
		}
		p, ok, msg := d.decode(buf)
		if msg != "" {
			c.problems = append(c.problems, Problem{frame, msg})
		}
		if !ok {
			continue
		}
		p.Frame, p.At = frame, ci.Timestamp
		if c.count == 0 {
			c.begin, c.end = p.At, p.At
		}
		c.count++
		c.begin, c.end = minTime(c.begin, p.At), maxTime(c.end, p.At)
		if keep != nil && !keep(p) {
			continue
		}
		p.Payload = bytes.Clone(p.Payload) // the frame's buffer is the reader's, and is reused
		if used += int64(unsafe.Sizeof(p)) + int64(len(p.Payload)); budget > 0 && used > budget {
			return c, fmt.Errorf("frame %d: the SIP traffic of the capture takes more than %d MiB to hold (-max-memory)", frame, budget>>20)
		}
		c.packets = append(c.packets, p)
	}
	return c, nil
}

// maxCapture bounds a capture read from a stream that cannot seek: 4 GiB.
const maxCapture = 4 << 30

// readAll reads a capture that cannot be read twice, in one allocation
// when the reader knows its size.
func readAll(r io.Reader) ([]byte, error) {
	size := int64(0)
	if f, ok := r.(interface{ Len() int }); ok {
		size = int64(f.Len())
	}
	if size > maxCapture {
		return nil, fmt.Errorf("%d bytes: more than the 4 GiB a capture may have here", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	more, err := io.ReadAll(io.LimitReader(r, maxCapture-size))
	if err != nil {
		return nil, err
	}
	return append(data, more...), nil
}

// pcapHeader reads a classic pcap file's header h and returns the reader
// of the frames that follow it in r.
func pcapHeader(h []byte, r *bufio.Reader) (*pcapFrames, error) {
	f := &pcapFrames{r: r, buf: make([]byte, 0, 2048)}
	switch magic := binary.LittleEndian.Uint32(h); magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		f.order, f.nanos = binary.LittleEndian, magic == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		f.order, f.nanos = binary.BigEndian, magic == 0x4d3cb2a1
	default:
		return nil, fmt.Errorf("not a pcap or pcapng capture: magic %#08x", magic)
	}
	f.link = layers.LinkType(f.order.Uint32(h[20:]) & 0x0fffffff)
	return f, nil
}

// checkPcap reads a classic pcap file from r and refuses a record that
// claims more bytes than a frame may have or than the file holds, so that
// no length in a hostile file sizes an allocation.
func checkPcap(r *bufio.Reader) (frames int, err error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, errors.New("not a pcap or pcapng capture: too short")
	}
	f, err := pcapHeader(h[:], r)
	if err != nil {
		return 0, err
	}
	off := int64(24)
	for frame := 1; ; frame++ {
		var rec [16]byte
		n, err := io.ReadFull(r, rec[:])
		if err == io.EOF {
			return frame - 1, nil
		}
		if err != nil || n < 16 {
			return 0, fmt.Errorf("pcap: frame %d: its header is cut off at byte %d", frame, off)
		}
		incl := f.order.Uint32(rec[8:])
		if incl > maxFrame {
			return 0, fmt.Errorf("pcap: frame %d at byte %d: %d bytes captured, more than a frame may have", frame, off, incl)
		}
		if k, _ := r.Discard(int(incl)); k < int(incl) {
			return 0, fmt.Errorf("pcap: frame %d at byte %d: %d bytes captured, more than the file holds", frame, off, incl)
		}
		off += 16 + int64(incl)
	}
}

// pcapFrames reads the frames of a classic pcap file checkPcap passed.
type pcapFrames struct {
	r     *bufio.Reader
	order binary.ByteOrder
	nanos bool // the magic for nanosecond timestamps
	link  layers.LinkType
	buf   []byte
}

// ZeroCopyReadPacketData returns the next frame, in a buffer the next call
// reuses.
func (f *pcapFrames) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	var h [16]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = errors.New("cut off")
		}
		return nil, gopacket.CaptureInfo{}, err
	}
	sec, frac := int64(f.order.Uint32(h[:])), int64(f.order.Uint32(h[4:]))
	if !f.nanos {
		frac *= 1000
	}
	incl := int(f.order.Uint32(h[8:]))
	if incl > maxFrame { // the file changed since it was checked
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("%d bytes captured", incl)
	}
	f.buf = slices.Grow(f.buf[:0], incl)[:incl]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return nil, gopacket.CaptureInfo{}, errors.New("cut off")
	}
	return f.buf, gopacket.CaptureInfo{Timestamp: time.Unix(sec, frac).UTC(), CaptureLength: incl, Length: int(f.order.Uint32(h[12:]))}, nil
}

// The pcapng block types whose fields the reader reads.
const (
	ngInterface   = 1
	ngPacket      = 2 // obsolete, still written by old tools
	ngSimple      = 3
	ngStatistics  = 5
	ngEnhanced    = 6
	ngSection     = 0x0A0D0D0A
	ngBlockHeader = 12 // type, length, and the length again at the end
)

// ngFixed is how many bytes of fields each block type has before its
// data and options.
var ngFixed = map[uint32]int{ngSection: 16, ngInterface: 8, ngPacket: 20, ngSimple: 4, ngStatistics: 12, ngEnhanced: 20}

// checkNg reads a pcapng file's blocks from r and refuses one whose length
// runs past the file, is not a whole number of words, or leaves no room for
// its block type's fields and the packet bytes they claim; so no length in
// a hostile file sizes an allocation.
func checkNg(r *bufio.Reader) error {
	order := binary.ByteOrder(binary.LittleEndian)
	snap := uint32(0) // the first interface's snap length in the section: a simple packet's cap
	interfaces := 0
	var block []byte
	for off := int64(0); ; {
		head, err := r.Peek(ngBlockHeader)
		if len(head) == 0 && err == io.EOF {
			return nil
		}
		if len(head) < ngBlockHeader {
			return fmt.Errorf("pcapng: the block at byte %d is cut off", off)
		}
		if binary.LittleEndian.Uint32(head) == ngSection {
			switch binary.LittleEndian.Uint32(head[8:]) {
			case 0x1A2B3C4D:
				order = binary.LittleEndian
			case 0x4D3C2B1A:
				order = binary.BigEndian
			default:
				return fmt.Errorf("pcapng: section at byte %d: no byte-order magic", off)
			}
			snap, interfaces = 0, 0
		}
		typ, n := order.Uint32(head), order.Uint32(head[4:])
		if n < ngBlockHeader || n%4 != 0 || n > maxFrame+1024 {
			return fmt.Errorf("pcapng: the block at byte %d claims %d bytes", off, n)
		}
		block = slices.Grow(block[:0], int(n))[:n]
		if _, err := io.ReadFull(r, block); err != nil {
			return fmt.Errorf("pcapng: the block at byte %d claims %d bytes, more than the file holds", off, n)
		}
		if order.Uint32(block[n-4:]) != n {
			return fmt.Errorf("pcapng: the block at byte %d does not end with its length", off)
		}
		room := int64(n) - ngBlockHeader - int64(ngFixed[typ]) // what is left for data and options
		if room < 0 {
			return fmt.Errorf("pcapng: the block of type %d at byte %d has %d bytes, too few for its fields", typ, off, n)
		}
		var claimed int64 // the packet bytes the block says it holds
		switch typ {
		case ngInterface:
			if interfaces == 0 {
				snap = order.Uint32(block[12:])
			}
			interfaces++
		case ngPacket, ngEnhanced:
			claimed = int64(order.Uint32(block[20:]))
		case ngSimple:
			claimed = int64(order.Uint32(block[8:])) // the packet's original length, cut to the snap length
			if snap != 0 {
				claimed = min(claimed, int64(snap))
			}
		}
		if claimed > room {
			return fmt.Errorf("pcapng: the packet at byte %d claims %d bytes in a block of %d", off, claimed, n)
		}
		off += int64(n)
	}
}

// decoder turns a frame's bytes into a Packet.
type decoder struct {
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	lo      layers.Loopback
	vlan    layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	tcp     layers.TCP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	payload gopacket.Payload
}

func newDecoder(link layers.LinkType) (*decoder, error) {
	d := &decoder{}
	var first gopacket.LayerType
	switch link {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		first = layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	default:
		return nil, fmt.Errorf("link type %v: this reader knows Ethernet, Linux cooked, BSD loopback and raw IP", link)
	}
	d.parser = gopacket.NewDecodingLayerParser(first, &d.eth, &d.sll, &d.lo, &d.vlan, &d.ip4, &d.ip6, &d.udp, &d.tcp, &d.icmp4, &d.icmp6, &d.payload)
	d.parser.IgnoreUnsupported = true
	return d, nil
}

// decode reads one frame; ok says it is a Packet, msg why a frame that
// looked like one could not be read.
func (d *decoder) decode(buf []byte) (p Packet, ok bool, msg string) {
	defer func() {
		if r := recover(); r != nil { // a decoder's bug must not end the check
			ok, msg = false, fmt.Sprintf("undecodable: %v", r)
		}
	}()
	d.decoded = d.decoded[:0]
	if err := d.parser.DecodeLayers(buf, &d.decoded); err != nil {
		var unsupported gopacket.UnsupportedLayerType
		if !errors.As(err, &unsupported) && len(d.decoded) > 0 {
			return p, false, fmt.Sprintf("undecodable: %v", err)
		}
	}
	var src, dst netip.Addr
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(d.ip4.DstIP.To4())
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP.To16())
			dst, _ = netip.AddrFromSlice(d.ip6.DstIP.To16())
		case layers.LayerTypeUDP:
			p.Proto, p.Payload = "udp", d.udp.Payload
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(d.udp.SrcPort)), netip.AddrPortFrom(dst, uint16(d.udp.DstPort))
			return p, true, ""
		case layers.LayerTypeTCP:
			p.Proto, p.Payload = "tcp", d.tcp.Payload
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(d.tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(d.tcp.DstPort))
			p.Seq, p.SYN, p.RST = d.tcp.Seq, d.tcp.SYN, d.tcp.RST
			return p, true, ""
		case layers.LayerTypeICMPv4:
			if d.icmp4.TypeCode.Type() != layers.ICMPv4TypeDestinationUnreachable {
				return p, false, ""
			}
			return d.unreachable(p, src, dst, d.icmp4.Payload, false)
		case layers.LayerTypeICMPv6:
			if d.icmp6.TypeCode.Type() != layers.ICMPv6TypeDestinationUnreachable {
				return p, false, ""
			}
			// ICMPv6's payload begins with 4 unused bytes.
			if len(d.icmp6.Payload) < 4 {
				return p, false, "ICMPv6 unreachable without the datagram it returns"
			}
			return d.unreachable(p, src, dst, d.icmp6.Payload[4:], true)
		}
	}
	return p, false, ""
}

// unreachable reads the UDP datagram an ICMP destination unreachable
// returns: its IP header and the first 8 bytes after it.
func (d *decoder) unreachable(p Packet, src, dst netip.Addr, orig []byte, v6 bool) (Packet, bool, string) {
	p.Proto, p.Src, p.Dst = "icmp", netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	var osrc, odst netip.Addr
	var rest []byte
	switch {
	case !v6 && len(orig) >= 20 && orig[0]>>4 == 4 && len(orig) >= int(orig[0]&0x0f)*4:
		if orig[9] != 17 {
			return p, false, "" // not a UDP datagram: nothing of SIP's
		}
		osrc, odst, rest = netip.AddrFrom4([4]byte(orig[12:16])), netip.AddrFrom4([4]byte(orig[16:20])), orig[int(orig[0]&0x0f)*4:]
	case v6 && len(orig) >= 40 && orig[0]>>4 == 6:
		if orig[6] != 17 {
			return p, false, ""
		}
		osrc, odst, rest = netip.AddrFrom16([16]byte(orig[8:24])), netip.AddrFrom16([16]byte(orig[24:40])), orig[40:]
	default:
		return p, false, "ICMP unreachable with a cut-off datagram"
	}
	if len(rest) < 4 {
		return p, false, "ICMP unreachable with a cut-off UDP header"
	}
	p.OrigSrc = netip.AddrPortFrom(osrc, binary.BigEndian.Uint16(rest))
	p.OrigDst = netip.AddrPortFrom(odst, binary.BigEndian.Uint16(rest[2:]))
	return p, true, ""
}
