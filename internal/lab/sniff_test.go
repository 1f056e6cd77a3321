package lab

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// TestSnifferKeepsTheLabsFrames: a datagram to a lab port that is open,
// one to a lab port that is closed (and the ICMP it draws), and one to a
// port that is not the lab's: the capture holds the first two and the
// ICMP, each once, and not the third.
func TestSnifferKeepsTheLabsFrames(t *testing.T) {
	open, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	closed := freeUDPPort(t)
	openPort := uint16(open.LocalAddr().(*net.UDPAddr).Port)
	s, err := Sniff(netip.MustParseAddr("127.0.0.1"), []uint16{openPort, closed})
	if err != nil {
		t.Skipf("no packet socket here: %v", err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, dst := range []*net.UDPAddr{open.LocalAddr().(*net.UDPAddr), {IP: net.IPv4(127, 0, 0, 1), Port: int(closed)}, other.LocalAddr().(*net.UDPAddr)} {
		if _, err := c.WriteToUDP([]byte("OPTIONS"), dst); err != nil {
			t.Fatal(err)
		}
	}
	// Frames reach the packet socket a moment after they are sent; the
	// wait is generous, and only bounds a failure.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && s.count() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would come at once
	s.Close()
	var buf bytes.Buffer
	if err := WritePcap(&buf, s); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	udp := map[uint16]int{}
	icmp := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		switch {
		case p.Layer(layers.LayerTypeICMPv4) != nil:
			icmp++
		case p.Layer(layers.LayerTypeUDP) != nil:
			udp[uint16(p.Layer(layers.LayerTypeUDP).(*layers.UDP).DstPort)]++
		}
	}
	otherPort := uint16(other.LocalAddr().(*net.UDPAddr).Port)
	if udp[openPort] != 1 || udp[closed] != 1 || udp[otherPort] != 0 || icmp != 1 {
		t.Errorf("captured %v datagrams by port and %d ICMP; want one to %d, one to %d, none to %d, one ICMP", udp, icmp, openPort, closed, otherPort)
	}
}

func (s *Sniffer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// freeUDPPort is a loopback UDP port that nothing listens on.
func freeUDPPort(t *testing.T) uint16 {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
