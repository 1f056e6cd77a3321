package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/internal/labserver"
)

// Config is what a lab run needs: where its servers listen, the accounts,
// the phone's settings (the bounds it is judged by) and how to make the
// phone dial and hang up.
type Config struct {
	Primary, Backup netip.AddrPort
	Transport       string // "udp" or "tcp"
	// User and Password are the phone's account, which the servers
	// challenge; FarUser is the far end's, which the phone may call.
	User, Password string
	FarUser        string
	// Algorithm is the digest algorithm of the challenges: MD5 or SHA-256.
	Algorithm string
	// Expires is the registration time the lab grants, in seconds: the
	// phone refreshes within it, and a refresh finds a fault.
	Expires int
	// RetryAfter is the Retry-After of the 503-retry-after fault, seconds.
	RetryAfter int
	// Slow is how late the slow fault answers, in percent of the phone's
	// budget (1-99): late, but an answer.
	Slow int
	// Phone are the phone's settings; its Servers are the lab's.
	Phone capture.Settings
	// WaitPhone is how long the first case waits for the phone's first
	// registration on the primary, beyond the phone's own bounds: the time
	// someone takes to start or point the phone.
	WaitPhone time.Duration
	// Dial and Hangup are shell commands that make the phone place a call
	// to {uri} (the far end) and hang up; "" when the lab cannot.
	Dial, Hangup string
	// Progress gets a line as each step of a case begins and ends.
	Progress io.Writer
}

// Lab is a running lab: its two servers, the far end, and the capture of
// everything that reaches them.
type Lab struct {
	cfg             Config
	primary, backup *labserver.Registrar
	far             *labserver.Phone
	loc             *labserver.Location
	sniffers        []*Sniffer
	start           time.Time
	analysis        *capture.Analysis // the capture judged, once Run has ended
	mended          time.Time         // when the primary was last mended
	more            bool              // a case follows the one playing
	outages         []capture.Outage  // the faults the servers were put in, for the picture
}

// Start brings up the servers and the capture, before the phone is pointed
// at them: its first REGISTER is in the capture. A port of 0 takes a free
// one (Servers says which).
func Start(cfg Config) (*Lab, error) {
	switch {
	case cfg.Transport != "udp" && cfg.Transport != "tcp":
		return nil, fmt.Errorf("transport %q: udp or tcp", cfg.Transport)
	case cfg.Primary == cfg.Backup && cfg.Primary.Port() != 0:
		return nil, fmt.Errorf("the primary and the backup are both %s", cfg.Primary)
	case cfg.Expires < 10:
		return nil, fmt.Errorf("expires %d s: at least 10", cfg.Expires)
	case cfg.RetryAfter < 1:
		return nil, fmt.Errorf("retry-after %d s: at least 1", cfg.RetryAfter)
	case cfg.Slow < 1 || cfg.Slow > 99:
		return nil, fmt.Errorf("slow %d%%: 1 to 99 percent of the budget", cfg.Slow)
	case cfg.User == "" || cfg.Password == "":
		return nil, errors.New("the phone's user and password are needed: the lab challenges every REGISTER")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.FarUser == "" {
		cfg.FarUser = "1002"
	}
	l := &Lab{cfg: cfg, loc: labserver.NewLocation()}
	for i, ap := range []netip.AddrPort{cfg.Primary, cfg.Backup} {
		r := &labserver.Registrar{Name: []string{"primary", "backup"}[i], Network: cfg.Transport, Addr: ap.String(),
			User: cfg.User, Password: cfg.Password, Algorithm: cfg.Algorithm, Location: l.loc, MaxExpires: cfg.Expires}
		if err := r.Start(); err != nil {
			l.Close()
			return nil, fmt.Errorf("the %s at %s: %w", r.Name, ap, err)
		}
		// Port 0 asks for a free one; the phone is pointed where it got.
		got, err := netip.ParseAddrPort(r.Addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("the %s: %w", r.Name, err)
		}
		if i == 0 {
			l.primary, l.cfg.Primary = r, got
		} else {
			l.backup, l.cfg.Backup = r, got
		}
	}
	ports := []uint16{l.cfg.Primary.Port(), l.cfg.Backup.Port()}
	for i, a := range []netip.Addr{l.cfg.Primary.Addr(), l.cfg.Backup.Addr()} {
		if i == 1 && a == l.cfg.Primary.Addr() {
			break
		}
		s, err := Sniff(a, ports)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.sniffers = append(l.sniffers, s)
	}
	l.far = &labserver.Phone{User: cfg.FarUser, Host: cfg.Primary.Addr().String(), Network: cfg.Transport}
	if err := l.far.Start(); err != nil {
		l.Close()
		return nil, fmt.Errorf("the far end: %w", err)
	}
	l.far.Locate(l.loc, 24*time.Hour)
	l.start = time.Now()
	return l, nil
}

// Close stops the servers, the far end and the capture.
func (l *Lab) Close() {
	for _, r := range []*labserver.Registrar{l.primary, l.backup} {
		if r != nil {
			r.Mend()
			r.Stop()
		}
	}
	if l.far != nil {
		l.far.Stop()
	}
	for _, s := range l.sniffers {
		s.Close()
	}
}

// Servers are where the primary and the backup listen.
func (l *Lab) Servers() (primary, backup netip.AddrPort) { return l.cfg.Primary, l.cfg.Backup }

// FarURI is the address the phone dials to reach the far end.
func (l *Lab) FarURI() string {
	return fmt.Sprintf("sip:%s@%s", l.cfg.FarUser, l.cfg.Primary)
}

// Pcap writes everything the lab captured so far.
func (l *Lab) Pcap(w io.Writer) error { return WritePcap(w, l.sniffers...) }

// settings are the phone's settings with the lab's servers.
func (l *Lab) settings() capture.Settings {
	s := l.cfg.Phone
	s.Servers = []netip.AddrPort{l.cfg.Primary, l.cfg.Backup}
	s.Transport = l.cfg.Transport
	// The phone is the one that registers as the user: the far end's
	// calls to it go through the servers too, and are not judged.
	s.Phone = ""
	for _, r := range []*labserver.Registrar{l.primary, l.backup} {
		for _, seen := range r.Seen() {
			if seen.Method == "REGISTER" && strings.HasPrefix(seen.From, l.cfg.User+"@") && s.Phone == "" {
				s.Phone = seen.From
			}
		}
	}
	return s
}

// answered is when the server first received a request of method at or
// after since that it answered 200 (a REGISTER granting a registration,
// an INVITE or BYE that the far end answered through it).
func answered(r *labserver.Registrar, method string, since time.Time) (time.Time, bool) {
	s, ok := answeredIn(r, "", method, since)
	return s.At, ok
}

// answeredIn is answered for the requests of one call (callID; "" for any
// request), with the request itself.
func answeredIn(r *labserver.Registrar, callID, method string, since time.Time) (labserver.Seen, bool) {
	for _, s := range r.Seen() {
		if s.Method == method && s.Answer == 200 && !s.At.Before(since) && !(method == "REGISTER" && s.Expires == 0) &&
			(callID == "" || s.CallID == callID) {
			return s, true
		}
	}
	return labserver.Seen{}, false
}

// onPrimary says whether the phone's newest registration is on the
// primary (in successive mode the phone is registered on one server), made
// since the primary was last mended.
func (l *Lab) onPrimary() bool {
	p, pok := lastRegistered(l.primary)
	b, bok := lastRegistered(l.backup)
	return pok && !p.Before(l.mended) && (!bok || b.Before(p) || l.cfg.Phone.Concurrent)
}

// lastRegistered is when the server last granted a registration.
func lastRegistered(r *labserver.Registrar) (time.Time, bool) {
	seen := r.Seen()
	for i := len(seen) - 1; i >= 0; i-- {
		if s := seen[i]; s.Method == "REGISTER" && s.Answer == 200 && s.Expires != 0 {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// poll is how often the lab looks at what its servers saw.
const poll = 20 * time.Millisecond

// settle is how long a case waits, once the phone is registered on the
// primary, for the phone to have taken the primary's 2xx: a loaded
// machine's pace, well within the slack the checker allows it.
const settle = 10 * poll

// waitFor waits up to bound for cond, and says when it came true.
func waitFor(ctx context.Context, bound time.Duration, cond func() (time.Time, bool)) (time.Time, bool) {
	deadline := time.Now().Add(bound)
	for {
		if at, ok := cond(); ok {
			return at, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, false
		}
		time.Sleep(poll)
	}
}

// pause waits d, or until ctx ends: the time a phone is given to act.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// command runs a -dial or -hangup template with {uri} filled in.
func (l *Lab) command(ctx context.Context, name, tmpl string) error {
	cmdline := strings.ReplaceAll(tmpl, "{uri}", l.FarURI())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("-%s %q: %v: %s", name, cmdline, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// commandStart is what a -dial or -hangup command may take to reach the
// phone: a process started, a control connection made.
const commandStart = 2 * time.Second

// background runs a command while the lab watches; its error comes on the
// channel when it ends.
func (l *Lab) background(ctx context.Context, name, tmpl string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.command(ctx, name, tmpl) }()
	return done
}

// localAddr says whether addr is an address of this machine, which the
// lab's servers can listen on.
func localAddr(addr netip.Addr) bool {
	if addr.IsLoopback() {
		return true
	}
	_, err := interfaceOf(addr)
	return err == nil
}

// CheckAddrs says why the lab cannot listen where it is asked to, or nil.
func CheckAddrs(addrs ...netip.AddrPort) error {
	for _, a := range addrs {
		if !a.IsValid() || a.Port() == 0 {
			return fmt.Errorf("%s: an address and a port, such as 127.0.0.1:5070", a)
		}
		if !localAddr(a.Addr()) {
			return fmt.Errorf("%s is no address of this machine", a.Addr())
		}
	}
	return nil
}
