package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// verifyCaptureCmd is `sipfailover verify-capture`: a capture of any
// phone's SIP traffic checked against the line's invariants.
func verifyCaptureCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify-capture", flag.ContinueOnError)
	pf := addPhoneFlags(fs, true)
	maxMemory := fs.Int64("max-memory", capture.DefaultMaxMemory>>20, "MiB the frames to and from the servers may take once read; the capture's other frames are read and let go")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	picture := fs.String("picture", "", "draw the timeline to this .svg or .png file")
	synopsis := "verify-capture FILE.pcap|FILE.pcapng {-servers ADDR:PORT,ADDR:PORT [settings of the phone] | -settings FILE [-line NAME]} [-phone AOR|ADDR] [-json] [-picture FILE]"
	// The file may come before the flags, as in the synopsis.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = append(args[1:], args[0])
	}
	if code, ok := parse(fs, args, synopsis, 1, 1, stdout, stderr); !ok {
		return code
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "verify-capture: "+format+"\n", a...)
		return 2
	}
	d, err := pf.settings()
	if err != nil {
		return bad("%v", err)
	}
	if *maxMemory < 1 || *maxMemory > 1<<30 {
		return bad("-max-memory %d: 1 to %d MiB", *maxMemory, 1<<30)
	}
	d.MaxMemory = *maxMemory << 20
	format, err := pictureFormat(*picture)
	if err != nil {
		return bad("%v", err)
	}

	file := fs.Arg(0)
	f, err := os.Open(file)
	if err != nil {
		return bad("%v", err) // unusable input: 2, as a bad flag (1 is a violation)
	}
	defer f.Close()
	start := time.Now()
	a, err := capture.Analyze(f, d)
	if err != nil {
		return bad("%s: %v", file, err)
	}
	report := a.Report(file)
	took := time.Since(start)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else {
		report.Write(stdout)
		fmt.Fprintf(stdout, "\nchecked in %v (%.0f frames a second)\n", took.Round(time.Millisecond), float64(report.Frames)/max(took.Seconds(), 1e-9))
	}
	if *picture != "" {
		if err := writeFile(*picture, func(w io.Writer) error { return a.Picture(w, format, report.Verdicts) }); err != nil {
			fmt.Fprintln(stderr, "verify-capture: -picture:", err)
			return 1
		}
	}
	if report.Violated() {
		return 1
	}
	return 0
}

// lineCaptureSettings reads line name (or the only line) of the settings
// file path as the bounds verify-capture judges it by: the settings the
// agent ran with, defaults filled in as the agent fills them.
func lineCaptureSettings(path, name string) (capture.Settings, error) {
	c, err := settings.Load(path)
	if err != nil {
		return capture.Settings{}, err
	}
	var names []string
	var line *settings.LineConfig
	for i := range c.Lines {
		names = append(names, cmp.Or(c.Lines[i].Name, fmt.Sprintf("(line %d, no name)", i+1)))
		if c.Lines[i].Name == name && name != "" || name == "" && len(c.Lines) == 1 {
			line = &c.Lines[i]
		}
	}
	if line == nil {
		if name == "" {
			return capture.Settings{}, fmt.Errorf("%s has %d lines: pick one with -line (%s)", path, len(c.Lines), strings.Join(names, ", "))
		}
		return capture.Settings{}, fmt.Errorf("%s has no line named %q (it has %s)", path, name, strings.Join(names, ", "))
	}
	l := line.Defaults()
	s := capture.DefaultSettings()
	transports := map[int]bool{}
	// The phone's servers on the wire are where it sends: its outbound
	// proxies when it has them (R22).
	field := "servers"
	if l.Proxied() {
		field = "outbound_proxies"
	}
	for i, sv := range l.Hops() {
		addr, err := netip.ParseAddr(sv.Addr)
		if err != nil {
			return capture.Settings{}, fmt.Errorf("line %s, %s[%d]: %q is a name; the capture shows addresses: give -servers as it resolved", line.Name, field, i, sv.Addr)
		}
		if *sv.Port == 0 {
			return capture.Settings{}, fmt.Errorf("line %s, %s[%d]: port 0 is looked up in DNS; give -servers as it resolved", line.Name, field, i)
		}
		s.Servers = append(s.Servers, netip.AddrPortFrom(addr, uint16(*sv.Port)))
		s.Shared = append(s.Shared, *sv.RegisterOnEnable == 0)
		transports[*sv.Transport] = true
	}
	if l.Proxied() {
		// Behind the proxies, the registrars a REGISTER names (R22).
		for _, r := range l.Servers {
			host := strings.Trim(r.Addr, "[]")
			if *r.Port != 0 {
				host = net.JoinHostPort(host, strconv.Itoa(*r.Port)) // as the Request-URI names it
			}
			s.Registrars = append(s.Registrars, host)
		}
	}
	switch {
	case transports[settings.TransportTLS] && len(transports) == 1:
		return capture.Settings{}, fmt.Errorf("line %s runs over TLS, which is encrypted on the wire", line.Name)
	case len(transports) == 1 && transports[settings.TransportTCP]:
		s.Transport = "tcp"
	case len(transports) == 1 && transports[settings.TransportUDP]:
		s.Transport = "udp"
	}
	s.T1, s.T2 = time.Duration(l.T1), time.Duration(l.T2)
	s.CountMode, s.RetryCounts, s.RetryTime = l.RetryMode == "count", *l.SignalRetryCounts, time.Duration(l.RetryTime)
	s.InviteRetryCounts = *l.InviteRetryCounts
	s.FailbackEnabled, s.FailbackInterval = *l.EnableFailback == 1, time.Duration(*l.FailbackInterval)*time.Second
	s.FailbackMode, s.FailbackWhenIdle = l.FailbackMode, l.FailbackWhen != "always"
	s.Keepalive, s.BackoffBase, s.BackoffMax = time.Duration(l.KeepaliveInterval), time.Duration(l.BackoffBase), time.Duration(l.BackoffMax)
	s.TimerSpread, s.UnavailableCodes, s.Concurrent = l.TimerSpread, l.UnavailableCodes, l.RegistrationMode == "concurrent"
	s.SignalUnregistered = *l.OnlySignalWithRegistered == 0
	if l.Domain != "" {
		s.Phone = l.User + "@" + l.Domain // its From on every server
	}
	return s, nil
}

// fromSettingsFile are the flags a settings file gives a value, each with
// how to take that value; a flag given on the command line wins.
var fromSettingsFile = map[string]func(d *capture.Settings, f capture.Settings){
	"servers":             func(d *capture.Settings, f capture.Settings) { d.Servers = f.Servers },
	"transport":           func(d *capture.Settings, f capture.Settings) { d.Transport = f.Transport },
	"t1":                  func(d *capture.Settings, f capture.Settings) { d.T1 = f.T1 },
	"t2":                  func(d *capture.Settings, f capture.Settings) { d.T2 = f.T2 },
	"retry-mode":          func(d *capture.Settings, f capture.Settings) { d.CountMode = f.CountMode },
	"retry-counts":        func(d *capture.Settings, f capture.Settings) { d.RetryCounts = f.RetryCounts },
	"invite-retry-counts": func(d *capture.Settings, f capture.Settings) { d.InviteRetryCounts = f.InviteRetryCounts },
	"retry-time":          func(d *capture.Settings, f capture.Settings) { d.RetryTime = f.RetryTime },
	"failback":            func(d *capture.Settings, f capture.Settings) { d.FailbackEnabled = f.FailbackEnabled },
	"failback-interval":   func(d *capture.Settings, f capture.Settings) { d.FailbackInterval = f.FailbackInterval },
	"failback-mode":       func(d *capture.Settings, f capture.Settings) { d.FailbackMode = f.FailbackMode },
	"failback-when":       func(d *capture.Settings, f capture.Settings) { d.FailbackWhenIdle = f.FailbackWhenIdle },
	"backoff-base":        func(d *capture.Settings, f capture.Settings) { d.BackoffBase = f.BackoffBase },
	"backoff-max":         func(d *capture.Settings, f capture.Settings) { d.BackoffMax = f.BackoffMax },
	"keepalive":           func(d *capture.Settings, f capture.Settings) { d.Keepalive = f.Keepalive },
	"unavailable-codes":   func(d *capture.Settings, f capture.Settings) { d.UnavailableCodes = f.UnavailableCodes },
	"registration-mode":   func(d *capture.Settings, f capture.Settings) { d.Concurrent = f.Concurrent },
	"timer-spread":        func(d *capture.Settings, f capture.Settings) { d.TimerSpread = f.TimerSpread },
	"phone":               func(d *capture.Settings, f capture.Settings) { d.Phone = f.Phone },
	"register-on-enable":  func(d *capture.Settings, f capture.Settings) { d.Shared = f.Shared },
	"registrars":          func(d *capture.Settings, f capture.Settings) { d.Registrars = f.Registrars },
	"only-signal-with-registered": func(d *capture.Settings, f capture.Settings) {
		d.SignalUnregistered = f.SignalUnregistered
	},
}

// mergeSettings returns d with every setting the file gives (f) that no
// flag of fs set.
func mergeSettings(fs *flag.FlagSet, d, f capture.Settings) capture.Settings {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for name, take := range fromSettingsFile {
		// The file's register_on_enable belongs to its servers: servers
		// given by flag leave it out.
		if !set[name] && !(name == "register-on-enable" && set["servers"]) {
			take(&d, f)
		}
	}
	return d
}
