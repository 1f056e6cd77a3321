package labserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// options is an OPTIONS request from a client at from.
func options(from string, n int) string {
	return fmt.Sprintf("OPTIONS sip:lab.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1001@lab.test>;tag=t%d\r\nTo: <sip:lab.test>\r\nCall-ID: c%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", from, n, n, n)
}

// wait is how long a test waits for an answer that must come; one that
// must not come is given as long. Loopback answers in microseconds.
const wait = 500 * time.Millisecond

// udpAsk sends an OPTIONS and returns the first line of the answer, "" for
// none within wait, or "ICMP" for a closed port.
func udpAsk(t *testing.T, to string, n int) string {
	t.Helper()
	c, err := net.Dial("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(options(c.LocalAddr().String(), n))); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	k, err := c.Read(buf)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ICMP"
	case err != nil:
		return ""
	}
	return strings.SplitN(string(buf[:k]), "\r\n", 2)[0] + retryAfter(string(buf[:k]))
}

func retryAfter(msg string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "retry-after:") {
			return " +" + strings.TrimSpace(l[len("retry-after:"):])
		}
	}
	return ""
}

// TestFaultsOverUDP: what a UDP client sees of each fault, and that Mend
// brings the same port back.
func TestFaultsOverUDP(t *testing.T) {
	r := &Registrar{Name: "primary", User: "1001", Password: "pw"}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	addr := r.Addr
	for i, c := range []struct {
		fault Fault
		want  string
	}{
		{"", "SIP/2.0 200 OK"},
		{Kill, "ICMP"},
		{Freeze, ""},
		{Unavailable, "SIP/2.0 503 Service Unavailable"},
		{RetryAfter, "SIP/2.0 503 Service Unavailable +7"},
		{Drop, ""},
		{Slow, "SIP/2.0 200 OK"},
	} {
		if c.fault != "" {
			if err := r.Break(c.fault, Options{RetryAfter: 7, Delay: 300 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}
		asked := time.Now()
		if got := udpAsk(t, addr, i); got != c.want {
			t.Errorf("%s: %q, want %q", c.fault, got, c.want)
		}
		if took := time.Since(asked); c.fault == Slow && took < 300*time.Millisecond {
			t.Errorf("slow by 300ms: answered after %v", took)
		}
		if err := r.Mend(); err != nil {
			t.Fatal(err)
		}
		if got := udpAsk(t, addr, 100+i); got != "SIP/2.0 200 OK" || r.Addr != addr {
			t.Errorf("mended after %s: %q at %s, want 200 at %s", c.fault, got, r.Addr, addr)
		}
	}
	if err := r.Break(RetryAfter, Options{}); err == nil {
		t.Error("a Retry-After of 0 was taken")
	}
	if err := r.Break(Slow, Options{}); err == nil {
		t.Error("a slow server without a delay was taken")
	}
	if _, err := ParseFault("melt"); err == nil {
		t.Error("an unknown fault was taken")
	}
	if err := r.Break(Reset, Options{}); err == nil {
		t.Error("a reset of a UDP server was taken")
	}
}

// TestFaultsOverTCP: a reset ends the open connection and takes a new
// one, a killed port refuses, a dropped one never answers a new connection
// and keeps an open one silent, a frozen one accepts and says nothing.
func TestFaultsOverTCP(t *testing.T) {
	r := &Registrar{Name: "primary", Network: "tcp", User: "1001", Password: "pw"}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	ask := func(c net.Conn, n int) string {
		if _, err := c.Write([]byte(strings.Replace(options(c.LocalAddr().String(), n), "UDP", "TCP", 1))); err != nil {
			return "write: " + err.Error()
		}
		c.SetReadDeadline(time.Now().Add(wait))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return ""
		}
		return strings.TrimSpace(line)
	}
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", r.Addr, wait) }

	open, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if got := ask(open, 1); got != "SIP/2.0 200 OK" {
		t.Fatalf("up: %q", got)
	}
	if err := r.Break(Reset, Options{}); err != nil {
		t.Fatal(err)
	}
	open.SetReadDeadline(time.Now().Add(wait))
	if _, err := open.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset: the open connection read %v, want a reset", err)
	}
	if c, err := dial(); err != nil {
		t.Errorf("reset: a new connection: %v", err)
	} else {
		if got := ask(c, 5); got != "SIP/2.0 200 OK" {
			t.Errorf("reset: a new connection was answered %q", got)
		}
		c.Close()
	}
	open.Close()
	if open, err = dial(); err != nil {
		t.Fatal(err)
	}
	if err := r.Break(Drop, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := ask(open, 2); got != "" {
		t.Errorf("dropped, the open connection answered %q", got)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Error("dropped, a new connection was answered")
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("dropped, a new connection was refused (a reset came back)")
	}
	if err := r.Break(Kill, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("killed: %v, want connection refused", err)
	}
	if err := r.Break(Freeze, Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := dial()
	if err != nil {
		t.Fatalf("frozen: %v, want a connection", err)
	}
	if got := ask(c, 3); got != "" {
		t.Errorf("frozen: answered %q", got)
	}
	c.Close()
	if err := r.Mend(); err != nil {
		t.Fatal(err)
	}
	c, err = dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := ask(c, 4); got != "SIP/2.0 200 OK" {
		t.Errorf("mended: %q", got)
	}
}
