package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// maxCaptured bounds the bytes of frames a Sniffer keeps; a phone that
// floods the lab past it is cut off there, and the capture says so.
const maxCaptured = 256 << 20

// Sniffer keeps every frame on one network interface that goes to or
// comes from the lab's servers, as tcpdump would: the phone's requests,
// the servers' answers, ICMP about them and TCP's handshakes and resets.
// It needs a packet socket: root, or the capability CAP_NET_RAW.
type Sniffer struct {
	fd    int
	lo    bool
	ports map[uint16]bool

	mu      sync.Mutex
	frames  []frame
	bytes   int
	cut     bool
	stopped bool
	done    chan struct{}
}

type frame struct {
	at   time.Time
	data []byte
}

// Sniff starts capturing on the interface that holds addr (the loopback
// interface for 127.0.0.0/8 and ::1) the frames to or from one of ports.
func Sniff(addr netip.Addr, ports []uint16) (*Sniffer, error) {
	ifc, err := interfaceOf(addr)
	if err != nil {
		return nil, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
	if err != nil {
		return nil, fmt.Errorf("capturing on %s needs a packet socket (root, or CAP_NET_RAW): %w", ifc.Name, err)
	}
	fail := func(err error) (*Sniffer, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("capturing on %s: %w", ifc.Name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return fail(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20); err != nil {
		return fail(err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
		return fail(err)
	}
	s := &Sniffer{fd: fd, lo: ifc.Flags&net.FlagLoopback != 0, ports: map[uint16]bool{}, done: make(chan struct{})}
	for _, p := range ports {
		s.ports[p] = true
	}
	go s.loop()
	return s, nil
}

// interfaceOf is the interface a frame to or from addr crosses.
func interfaceOf(addr netip.Addr) (*net.Interface, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifcs {
		ifc := &ifcs[i]
		if addr.IsLoopback() && ifc.Flags&net.FlagLoopback != 0 {
			return ifc, nil
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr.Unmap() {
					return ifc, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%s is no address of this machine", addr)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *Sniffer) loop() {
	defer close(s.done)
	buf := make([]byte, 65536+128)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	for {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		// On loopback every frame passes twice, going out and coming in:
		// keep it once, as it comes in.
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && s.lo && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		at := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					at = time.Unix(ts.Unix())
				}
			}
		}
		if !s.ours(buf[:n]) {
			continue
		}
		s.mu.Lock()
		if s.bytes+n > maxCaptured {
			s.cut = true
		} else {
			s.frames = append(s.frames, frame{at, slices.Clone(buf[:n])})
			s.bytes += n
		}
		s.mu.Unlock()
	}
}

// ours says whether a frame goes to or comes from one of the ports, or is
// ICMP about a datagram to one of them.
func (s *Sniffer) ours(data []byte) bool {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	switch {
	case p.Layer(layers.LayerTypeUDP) != nil && p.Layer(layers.LayerTypeICMPv4) == nil && p.Layer(layers.LayerTypeICMPv6) == nil:
		u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return s.ports[uint16(u.SrcPort)] || s.ports[uint16(u.DstPort)]
	case p.Layer(layers.LayerTypeTCP) != nil:
		t := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		return s.ports[uint16(t.SrcPort)] || s.ports[uint16(t.DstPort)]
	case p.Layer(layers.LayerTypeICMPv4) != nil:
		return s.quoted(p.Layer(layers.LayerTypeICMPv4).LayerPayload(), layers.LayerTypeIPv4)
	case p.Layer(layers.LayerTypeICMPv6) != nil:
		pl := p.Layer(layers.LayerTypeICMPv6).LayerPayload()
		if len(pl) < 4 {
			return false
		}
		return s.quoted(pl[4:], layers.LayerTypeIPv6) // past the unused word
	}
	return false
}

// quoted says whether an ICMP error quotes a datagram to one of the ports.
func (s *Sniffer) quoted(orig []byte, ip gopacket.LayerType) bool {
	q := gopacket.NewPacket(orig, ip, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	if u, ok := q.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		return s.ports[uint16(u.DstPort)] || s.ports[uint16(u.SrcPort)]
	}
	if len(orig) >= 24 && ip == layers.LayerTypeIPv4 {
		// A quote cut short of a whole UDP header still has the ports.
		hl := int(orig[0]&0x0f) * 4
		if len(orig) >= hl+4 && orig[9] == 17 {
			return s.ports[uint16(orig[hl])<<8|uint16(orig[hl+1])] || s.ports[uint16(orig[hl+2])<<8|uint16(orig[hl+3])]
		}
	}
	return false
}

// Close stops capturing; the frames kept stay readable.
func (s *Sniffer) Close() {
	s.mu.Lock()
	already := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if !already {
		<-s.done
		unix.Close(s.fd)
	}
}

// Cut says whether frames were let go because the capture was full.
func (s *Sniffer) Cut() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cut
}

// WritePcap writes the frames of every sniffer, in time order, as one pcap
// file with nanosecond times.
func WritePcap(w io.Writer, sniffers ...*Sniffer) error {
	var all []frame
	for _, s := range sniffers {
		s.mu.Lock()
		all = append(all, s.frames...)
		s.mu.Unlock()
	}
	slices.SortStableFunc(all, func(a, b frame) int { return a.at.Compare(b.at) })
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for _, f := range all {
		ci := gopacket.CaptureInfo{Timestamp: f.at, CaptureLength: len(f.data), Length: len(f.data)}
		if err := pw.WritePacket(ci, f.data); err != nil {
			return err
		}
	}
	return nil
}

// firstTo is when the phone first tried dst at or after since: a
// datagram, or a connection's SYN or data. A port that is closed shows
// no request at its server; the capture shows the try.
func (s *Sniffer) firstTo(dst netip.AddrPort, since time.Time) (time.Time, bool) {
	s.mu.Lock()
	frames := s.frames
	s.mu.Unlock()
	for _, f := range frames {
		if f.at.Before(since) {
			continue
		}
		p := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		var ip netip.Addr
		if n := p.NetworkLayer(); n != nil {
			ip, _ = netip.AddrFromSlice(n.NetworkFlow().Dst().Raw())
		}
		// A try is a datagram, a connection opened, or data sent: not the
		// acknowledgements and FINs of a connection closing.
		var port uint16
		switch t := p.TransportLayer().(type) {
		case *layers.UDP:
			port = uint16(t.DstPort)
		case *layers.TCP:
			if t.SYN || len(t.Payload) > 0 {
				port = uint16(t.DstPort)
			}
		}
		if ip.Unmap() == dst.Addr().Unmap() && port == dst.Port() {
			return f.at, true
		}
	}
	return time.Time{}, false
}
