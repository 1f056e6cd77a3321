package runtimetest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// SimCapture is what a packet capture on the line's host would record of a
// SimNetwork, written as a pcap file as it happens: every request the line
// sends (lost ones too: they left the host), every answer when it reaches
// the line, the ICMP port unreachable of a closed UDP port, and over TCP a
// connection per server (its handshake, its segments, and the reset of a
// refused or closed port). Its frames carry the virtual clock's time, so a
// run in virtual time reads like one on real sockets.
//
// It lets the same run be judged from inside (the runtime's trace) and
// from the wire (verify-capture), which must agree.
type SimCapture struct {
	mu    sync.Mutex
	w     *pcapgo.Writer
	err   error
	phone netip.Addr
	conns map[transport.Endpoint]*simConn
	port  uint16 // the next ephemeral port of a TCP connection
}

// simConn is the line's TCP connection to one server, as the wire sees it,
// and its attempts to open one that the server's closed port refuses.
type simConn struct {
	open             bool
	local            netip.AddrPort
	lineSeq, servSeq uint32
	refused          []netip.AddrPort // SYNs to a closed port whose reset is on its way, oldest first
}

// CaptureTo starts recording the network's traffic to w as a pcap file
// (Ethernet, nanosecond times); Err says whether every frame was written.
func (n *SimNetwork) CaptureTo(w io.Writer) (*SimCapture, error) {
	c := &SimCapture{w: pcapgo.NewWriterNanos(w), conns: map[transport.Endpoint]*simConn{}, port: 40000}
	host, _ := n.Local(transport.Endpoint{})
	c.phone = netip.MustParseAddr(host)
	if err := c.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.capture = c
	n.mu.Unlock()
	return c, nil
}

// Err is the first error writing the capture.
func (c *SimCapture) Err() error { return c.err }

// udpPort is the line's local port, as SimNetwork.Local gives it.
const udpPort = 5060

// server is the address of a simulated server's endpoint.
func simAddr(e transport.Endpoint) netip.AddrPort {
	a, err := netip.ParseAddr(e.Host)
	if err != nil {
		a = netip.MustParseAddr("198.51.100.1") // a server by name: the documentation range
	}
	return netip.AddrPortFrom(a, uint16(e.Port))
}

// sent records a message the line sends to dst. closed says the server's
// port is closed: over TCP, a new connection goes no further than its SYN.
func (c *SimCapture) sent(n *SimNetwork, dst transport.Endpoint, msg []byte, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	srv := simAddr(dst)
	if dst.Transport != settings.TransportTCP {
		c.udp(n, netip.AddrPortFrom(c.phone, udpPort), srv, msg)
		return
	}
	k := where(dst)
	cn := c.conns[k]
	if cn == nil {
		cn = &simConn{}
		c.conns[k] = cn
	}
	if !cn.open {
		c.port++
		local := netip.AddrPortFrom(c.phone, c.port)
		c.tcp(n, local, srv, 1000, nil, true, false)
		if closed {
			cn.refused = append(cn.refused, local)
			return
		}
		cn.local, cn.lineSeq, cn.servSeq = local, 1001, 5000
		c.tcp(n, srv, cn.local, cn.servSeq, nil, true, false)
		cn.servSeq++
		cn.open = true
	}
	c.tcp(n, cn.local, srv, cn.lineSeq, msg, false, false)
	cn.lineSeq += uint32(len(msg))
}

// answered records an answer from the server at from reaching the line.
func (c *SimCapture) answered(n *SimNetwork, from transport.Endpoint, msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	srv := simAddr(from)
	if from.Transport != settings.TransportTCP {
		c.udp(n, srv, netip.AddrPortFrom(c.phone, udpPort), msg)
		return
	}
	cn := c.conns[where(from)]
	if cn == nil || !cn.open {
		// The connection is gone: the server opens one to the line's
		// port to send the answer (RFC 3261 18.2.2).
		back := netip.AddrPortFrom(c.phone, udpPort)
		c.tcp(n, srv, back, 7000, nil, true, false)
		c.tcp(n, srv, back, 7001, msg, false, false)
		return
	}
	c.tcp(n, srv, cn.local, cn.servSeq, msg, false, false)
	cn.servSeq += uint32(len(msg))
}

// unreachable records how a closed port answers the line: ICMP port
// unreachable for a datagram (msg, the one it returns), a reset over TCP.
func (c *SimCapture) unreachable(n *SimNetwork, dst transport.Endpoint, msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	srv := simAddr(dst)
	if dst.Transport != settings.TransportTCP {
		c.icmp(n, srv, netip.AddrPortFrom(c.phone, udpPort), msg)
		return
	}
	cn := c.conns[where(dst)]
	switch {
	case cn == nil:
	case len(cn.refused) > 0: // the oldest attempt the closed port answers
		c.tcp(n, srv, cn.refused[0], 5000, nil, false, true)
		cn.refused = cn.refused[1:]
	case cn.open: // the port closed under the connection
		c.tcp(n, srv, cn.local, cn.servSeq, nil, false, true)
		cn.open = false
	}
}

// abort records the line giving up a connection whose writes timed out:
// it resets it.
func (c *SimCapture) abort(n *SimNetwork, dst transport.Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cn := c.conns[where(dst)]
	if cn == nil || !cn.open || dst.Transport != settings.TransportTCP {
		return
	}
	c.tcp(n, cn.local, simAddr(dst), cn.lineSeq, nil, false, true)
	cn.open = false
}

func (c *SimCapture) ip(src, dst netip.Addr, proto layers.IPProtocol) (*layers.Ethernet, *layers.IPv4) {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

func (c *SimCapture) udp(n *SimNetwork, src, dst netip.AddrPort, payload []byte) {
	eth, ip := c.ip(src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	u.SetNetworkLayerForChecksum(ip)
	c.frame(n, eth, ip, u, gopacket.Payload(payload))
}

func (c *SimCapture) tcp(n *SimNetwork, src, dst netip.AddrPort, seq uint32, payload []byte, syn, rst bool) {
	eth, ip := c.ip(src.Addr(), dst.Addr(), layers.IPProtocolTCP)
	t := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, SYN: syn, RST: rst,
		ACK: !syn, PSH: len(payload) > 0, Window: 65535}
	t.SetNetworkLayerForChecksum(ip)
	c.frame(n, eth, ip, t, gopacket.Payload(payload))
}

// icmp writes the port unreachable that the host at from sends to the line
// for a datagram it sent there: the datagram's IP header and what follows.
func (c *SimCapture) icmp(n *SimNetwork, from, to netip.AddrPort, msg []byte) {
	_, oip := c.ip(to.Addr(), from.Addr(), layers.IPProtocolUDP)
	ou := &layers.UDP{SrcPort: layers.UDPPort(to.Port()), DstPort: layers.UDPPort(from.Port())}
	ou.SetNetworkLayerForChecksum(oip)
	orig := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(orig, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, oip, ou, gopacket.Payload(msg)); err != nil {
		c.fail(err)
		return
	}
	returned := orig.Bytes()[:min(len(orig.Bytes()), 20+8+64)] // the IP header, UDP's and the start of the message
	eth, ip := c.ip(from.Addr(), to.Addr(), layers.IPProtocolICMPv4)
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}
	c.frame(n, eth, ip, ic, gopacket.Payload(returned))
}

func (c *SimCapture) frame(n *SimNetwork, ls ...gopacket.SerializableLayer) {
	if c.err != nil {
		return
	}
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		c.fail(err)
		return
	}
	data := b.Bytes()
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: n.Clock.Now(), CaptureLength: len(data), Length: len(data)}, data); err != nil {
		c.fail(err)
	}
}

func (c *SimCapture) fail(err error) {
	if c.err == nil {
		c.err = fmt.Errorf("simnet capture: %w", err)
	}
}
