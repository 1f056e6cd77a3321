package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
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
	d := capture.DefaultSettings()
	servers := fs.String("servers", "", "the phone's servers in priority order, ADDR:PORT,ADDR:PORT (required without -settings)")
	transport := fs.String("transport", "", "udp or tcp: only that transport's messages (default: both; TLS is encrypted on the wire and out of reach)")
	fs.DurationVar(&d.T1, "t1", d.T1, "the phone's RFC 3261 T1")
	fs.DurationVar(&d.T2, "t2", d.T2, "the phone's RFC 3261 T2")
	retryMode := fs.String("retry-mode", "count", "the phone's retry budget: count (Signal Retry Counts) or time (Retry Time)")
	fs.IntVar(&d.RetryCounts, "retry-counts", d.RetryCounts, "the phone's Signal Retry Counts: transmissions of a request to a non-last server")
	fs.IntVar(&d.InviteRetryCounts, "invite-retry-counts", 0, "an INVITE's own transmissions (0: -retry-counts)")
	fs.DurationVar(&d.RetryTime, "retry-time", d.RetryTime, "the phone's retry budget in time mode")
	failback := fs.String("failback", "on", "the phone's Enable Failback: on or off")
	interval := fs.Duration("failback-interval", d.FailbackInterval, "the phone's Failback Interval")
	fs.StringVar(&d.FailbackMode, "failback-mode", d.FailbackMode, "when the phone probes the primary from a backup: duration, registration, new_requests or dns_ttl")
	when := fs.String("failback-when", "idle", "idle (no failback while a call holds the line; it fails back when the call ends) or always")
	backoffMax := fs.Duration("backoff-max", 0, "the phone's longest back-off after every server failed (0: -backoff-base)")
	fs.DurationVar(&d.Keepalive, "keepalive", 0, "the phone's OPTIONS keep-alive interval (0: off)")
	fs.IntVar(&d.TimerSpread, "timer-spread", 0, "the percent (0-50) the phone takes off its refresh, keep-alive and failback timers at random")
	fs.DurationVar(&d.BackoffBase, "backoff-base", d.BackoffBase, "the phone's back-off after every server failed")
	codes := fs.String("unavailable-codes", "500,503", "answers that make a server unavailable")
	mode := fs.String("registration-mode", "successive", "successive or concurrent (a registration on every server at once)")
	registerOnEnable := fs.String("register-on-enable", "", "each server's register_on_enable in order, 1,0: 0 shares the others' registrations, so requests may go there unregistered (default: all 1)")
	onlyRegistered := fs.String("only-signal-with-registered", "1", "1: new requests only to a server the phone is registered on; 0: also to one it is registering on")
	fs.StringVar(&d.Phone, "phone", "", "judge only this phone: its address of record (user@host) or its address (IP or IP:PORT); other endpoints are listed, not judged")
	fs.BoolVar(&d.FromBoot, "boot", false, "the capture began before the phone started: what is not in it did not happen")
	fs.DurationVar(&d.Slack, "slack", d.Slack, "what the bounds allow beyond the phone's timers: round trips and the phone's own pace")
	settingsFile := fs.String("settings", "", "take the phone's settings from this sipfailover settings file (flags given as well override it)")
	lineName := fs.String("line", "", "the line of -settings to take (by name; default its only line)")
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
	switch {
	case *retryMode != "count" && *retryMode != "time":
		return bad("-retry-mode %q: count or time", *retryMode)
	case *failback != "on" && *failback != "off":
		return bad("-failback %q: on or off", *failback)
	case *mode != "successive" && *mode != "concurrent":
		return bad("-registration-mode %q: successive or concurrent", *mode)
	case *when != "idle" && *when != "always":
		return bad("-failback-when %q: idle or always", *when)
	case *transport != "" && *transport != "udp" && *transport != "tcp":
		return bad("-transport %q: udp or tcp (TLS is encrypted on the wire)", *transport)
	case *onlyRegistered != "0" && *onlyRegistered != "1":
		return bad("-only-signal-with-registered %q: 0 or 1", *onlyRegistered)
	}
	d.SignalUnregistered = *onlyRegistered == "0"
	if *registerOnEnable != "" {
		for i, v := range strings.Split(*registerOnEnable, ",") {
			switch strings.TrimSpace(v) {
			case "0":
				d.Shared = append(d.Shared, true)
			case "1":
				d.Shared = append(d.Shared, false)
			default:
				return bad("-register-on-enable: server %d's %q is not 0 or 1", i+1, v)
			}
		}
	}
	d.FailbackInterval, d.Transport = *interval, *transport
	d.CountMode, d.FailbackEnabled, d.Concurrent = *retryMode == "count", *failback == "on", *mode == "concurrent"
	d.FailbackWhenIdle, d.BackoffMax = *when == "idle", *backoffMax
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return bad("-servers: %q is not ADDR:PORT (an IPv6 address in brackets: [::1]:5060)", s)
		}
		d.Servers = append(d.Servers, ap)
	}
	d.UnavailableCodes = nil
	for _, c := range strings.Split(*codes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 300 || n > 699 {
			return bad("-unavailable-codes: %q is not a status code of 300-699", c)
		}
		d.UnavailableCodes = append(d.UnavailableCodes, n)
	}
	if *settingsFile != "" {
		fromFile, err := lineCaptureSettings(*settingsFile, *lineName)
		if err != nil {
			return bad("-settings: %v", err)
		}
		d = mergeSettings(fs, d, fromFile)
	} else if *lineName != "" {
		return bad("-line %s: give the settings file it is in with -settings", *lineName)
	}
	switch {
	case len(d.Servers) == 0:
		return bad("-servers: give the phone's servers in priority order, ADDR:PORT,ADDR:PORT")
	case len(d.Servers) > 8:
		return bad("-servers: %d servers; a line has at most 8", len(d.Servers))
	case len(d.Shared) > len(d.Servers):
		return bad("-register-on-enable: %d values for %d servers", len(d.Shared), len(d.Servers))
	case d.T1 <= 0 || d.T2 < d.T1:
		return bad("-t1 %v -t2 %v: T1 must be positive and T2 at least T1", d.T1, d.T2)
	case d.RetryCounts < 1 || d.RetryCounts > 64:
		return bad("-retry-counts %d: 1 to 64", d.RetryCounts)
	case d.InviteRetryCounts < 0 || d.InviteRetryCounts > 64:
		return bad("-invite-retry-counts %d: 0 to 64", d.InviteRetryCounts)
	case d.RetryTime <= 0 || d.FailbackInterval <= 0 || d.BackoffBase <= 0 || d.Keepalive < 0 || d.Slack < 0:
		return bad("durations must be positive (-keepalive and -slack may be 0)")
	case d.FailbackMode != "duration" && d.FailbackMode != "registration" && d.FailbackMode != "new_requests" && d.FailbackMode != "dns_ttl":
		return bad("-failback-mode %q: duration, registration, new_requests or dns_ttl", d.FailbackMode)
	case d.BackoffMax < 0:
		return bad("-backoff-max %v: 0 or more", d.BackoffMax)
	case d.TimerSpread < 0 || d.TimerSpread > 50:
		return bad("-timer-spread %d: 0 to 50", d.TimerSpread)
	case *maxMemory < 1 || *maxMemory > 1<<30:
		return bad("-max-memory %d: 1 to %d MiB", *maxMemory, 1<<30)
	}
	d.MaxMemory = *maxMemory << 20
	format := ""
	if *picture != "" {
		format = strings.TrimPrefix(strings.ToLower(filepath.Ext(*picture)), ".")
		if format != "svg" && format != "png" {
			return bad("-picture %s: an .svg or .png file", *picture)
		}
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
		out, err := os.Create(*picture)
		if err == nil {
			err = a.Picture(out, format, report.Verdicts)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
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
