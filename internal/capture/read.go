// Package capture checks a phone against the line's invariants
// (docs/requirements.md) from a packet capture of its SIP traffic: it
// reads pcap and pcapng files, reassembles SIP over UDP and TCP, sees the
// servers' ICMP port unreachable and TCP resets, infers what the phone
// did (transactions, registrations, probes, calls) and judges every
// invariant the wire can decide. TLS is encrypted on the wire and out of
// its reach.
package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"time"

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

// Read reads a pcap or pcapng capture whole and returns its UDP, TCP and
// ICMP unreachable frames. A damaged file is refused with the offset of
// the damage before any frame is decoded; a frame that does not decode is
// a Problem, not an error.
func Read(r io.Reader) ([]Packet, []Problem, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, nil, err
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var link layers.LinkType
	frames := len(data) / 200 // a guess for pcapng, whose frames are not counted ahead
	switch {
	case len(data) >= 4 && binary.LittleEndian.Uint32(data) == ngSection:
		if err := checkNg(data); err != nil {
			return nil, nil, err
		}
		ng, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, nil, fmt.Errorf("pcapng: %w", err)
		}
		src, link = ng, ng.LinkType()
	case len(data) >= 24:
		pf, n, err := checkPcap(data)
		if err != nil {
			return nil, nil, err
		}
		// Classic pcap is read in place: the frames are slices of data.
		src, frames = pf, n
		link = layers.LinkType(pf.order.Uint32(data[20:]) & 0x0fffffff)
	default:
		return nil, nil, errors.New("not a pcap or pcapng capture: too short")
	}
	d, err := newDecoder(link)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Packet, 0, frames)
	var problems []Problem
	for frame := 1; ; frame++ {
		buf, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, problems, fmt.Errorf("frame %d: %w", frame, err)
		}
		p, ok, msg := d.decode(buf)
		if msg != "" {
			problems = append(problems, Problem{frame, msg})
		}
		if ok {
			p.Frame, p.At = frame, ci.Timestamp
			out = append(out, p)
		}
	}
	return out, problems, nil
}

// maxCapture bounds the file read: 4 GiB.
const maxCapture = 4 << 30

// readAll reads the capture whole, in one allocation when the reader
// knows its size.
func readAll(r io.Reader) ([]byte, error) {
	size := int64(0)
	switch f := r.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
	case interface{ Len() int }:
		size = int64(f.Len())
	}
	if size > maxCapture {
		return nil, fmt.Errorf("%d bytes: more than the 4 GiB a capture may have here", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	// What the size did not say (a file still being written, a reader of
	// unknown length).
	more, err := io.ReadAll(io.LimitReader(r, maxCapture-size))
	if err != nil {
		return nil, err
	}
	return append(data, more...), nil
}

// checkPcap walks a classic pcap file's records and refuses one that
// claims more bytes than a frame may have or than the file holds, so that
// no length in a hostile file sizes an allocation; it counts the frames and
// returns their reader.
func checkPcap(data []byte) (f *pcapFrames, frames int, err error) {
	f = &pcapFrames{data: data, off: 24}
	switch magic := binary.LittleEndian.Uint32(data); magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		f.order, f.nanos = binary.LittleEndian, magic == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		f.order, f.nanos = binary.BigEndian, magic == 0x4d3cb2a1
	default:
		return nil, 0, fmt.Errorf("not a pcap or pcapng capture: magic %#08x", magic)
	}
	for off := 24; off < len(data); frames++ {
		if len(data)-off < 16 {
			return nil, 0, fmt.Errorf("pcap: frame %d: its header is cut off at byte %d", frames+1, off)
		}
		incl := f.order.Uint32(data[off+8:])
		if incl > maxFrame || int(incl) > len(data)-off-16 {
			return nil, 0, fmt.Errorf("pcap: frame %d at byte %d: %d bytes captured, more than a frame may have or the file holds", frames+1, off, incl)
		}
		off += 16 + int(incl)
	}
	return f, frames, nil
}

// pcapFrames reads the frames of a classic pcap file checkPcap passed, as
// slices of it.
type pcapFrames struct {
	data  []byte
	order binary.ByteOrder
	nanos bool // the magic for nanosecond timestamps
	off   int
}

func (f *pcapFrames) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if f.off >= len(f.data) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	h := f.data[f.off : f.off+16]
	sec, frac := int64(f.order.Uint32(h)), int64(f.order.Uint32(h[4:]))
	if !f.nanos {
		frac *= 1000
	}
	incl := int(f.order.Uint32(h[8:]))
	frame := f.data[f.off+16 : f.off+16+incl]
	f.off += 16 + incl
	return frame, gopacket.CaptureInfo{Timestamp: time.Unix(sec, frac).UTC(), CaptureLength: incl, Length: int(f.order.Uint32(h[12:]))}, nil
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

// checkNg walks a pcapng file's blocks and refuses one whose length runs
// past the file, is not a whole number of words, or leaves no room for its
// block type's fields and the packet bytes they claim; so no length in a
// hostile file sizes an allocation.
func checkNg(data []byte) error {
	order := binary.ByteOrder(binary.LittleEndian)
	snap := uint32(0) // the first interface's snap length in the section: a simple packet's cap
	interfaces := 0
	for off := 0; off < len(data); {
		if len(data)-off < ngBlockHeader {
			return fmt.Errorf("pcapng: the block at byte %d is cut off", off)
		}
		if binary.LittleEndian.Uint32(data[off:]) == ngSection {
			switch binary.LittleEndian.Uint32(data[off+8:]) {
			case 0x1A2B3C4D:
				order = binary.LittleEndian
			case 0x4D3C2B1A:
				order = binary.BigEndian
			default:
				return fmt.Errorf("pcapng: section at byte %d: no byte-order magic", off)
			}
			snap, interfaces = 0, 0
		}
		typ, n := order.Uint32(data[off:]), order.Uint32(data[off+4:])
		if n < ngBlockHeader || n%4 != 0 || int64(n) > int64(len(data)-off) || n > maxFrame+1024 {
			return fmt.Errorf("pcapng: the block at byte %d claims %d bytes", off, n)
		}
		if order.Uint32(data[off+int(n)-4:]) != n {
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
				snap = order.Uint32(data[off+12:])
			}
			interfaces++
		case ngPacket, ngEnhanced:
			claimed = int64(order.Uint32(data[off+20:]))
		case ngSimple:
			claimed = int64(order.Uint32(data[off+8:])) // the packet's original length, cut to the snap length
			if snap != 0 {
				claimed = min(claimed, int64(snap))
			}
		}
		if claimed > room {
			return fmt.Errorf("pcapng: the packet at byte %d claims %d bytes in a block of %d", off, claimed, n)
		}
		off += int(n)
	}
	return nil
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
