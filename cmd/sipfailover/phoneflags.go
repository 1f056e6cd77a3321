package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// phoneFlags are the flags that describe a phone's settings, the bounds
// verify-capture and the lab judge it by: given one by one, or read from
// a sipfailover settings file with -settings and -line.
type phoneFlags struct {
	fs                                 *flag.FlagSet
	d                                  capture.Settings
	servers, transport                 *string // nil in the lab, which plays the servers
	retryMode, failback, when, mode    *string
	codes, registerOnEnable            *string
	onlyRegistered, settingsFile, line *string
	registrars                         *string
}

// addPhoneFlags declares the flags on fs; withServers adds -servers and
// -transport (the lab plays the servers itself).
func addPhoneFlags(fs *flag.FlagSet, withServers bool) *phoneFlags {
	p := &phoneFlags{fs: fs, d: capture.DefaultSettings()}
	d := &p.d
	if withServers {
		p.servers = fs.String("servers", "", "the phone's servers in priority order, ADDR:PORT,ADDR:PORT (required without -settings)")
		p.transport = fs.String("transport", "", "udp or tcp: only that transport's messages (default: both; TLS is encrypted on the wire and out of reach)")
	}
	fs.DurationVar(&d.T1, "t1", d.T1, "the phone's RFC 3261 T1")
	fs.DurationVar(&d.T2, "t2", d.T2, "the phone's RFC 3261 T2")
	p.retryMode = fs.String("retry-mode", "count", "the phone's retry budget: count (Signal Retry Counts) or time (Retry Time)")
	fs.IntVar(&d.RetryCounts, "retry-counts", d.RetryCounts, "the phone's Signal Retry Counts: transmissions of a request to a non-last server")
	fs.IntVar(&d.InviteRetryCounts, "invite-retry-counts", 0, "an INVITE's own transmissions (0: -retry-counts)")
	fs.DurationVar(&d.RetryTime, "retry-time", d.RetryTime, "the phone's retry budget in time mode")
	p.failback = fs.String("failback", "on", "the phone's Enable Failback: on or off")
	fs.DurationVar(&d.FailbackInterval, "failback-interval", d.FailbackInterval, "the phone's Failback Interval")
	fs.StringVar(&d.FailbackMode, "failback-mode", d.FailbackMode, "when the phone probes the primary from a backup: duration, registration, new_requests or dns_ttl")
	p.when = fs.String("failback-when", "idle", "idle (no failback while a call holds the line; it fails back when the call ends) or always")
	fs.DurationVar(&d.BackoffMax, "backoff-max", 0, "the phone's longest back-off after every server failed (0: -backoff-base)")
	fs.DurationVar(&d.Keepalive, "keepalive", 0, "the phone's OPTIONS keep-alive interval (0: off)")
	fs.IntVar(&d.TimerSpread, "timer-spread", 0, "the percent (0-50) the phone takes off its refresh, keep-alive and failback timers at random")
	fs.DurationVar(&d.BackoffBase, "backoff-base", d.BackoffBase, "the phone's back-off after every server failed")
	p.codes = fs.String("unavailable-codes", "500,503", "answers that make a server unavailable")
	p.mode = fs.String("registration-mode", "successive", "successive or concurrent (a registration on every server at once)")
	p.registerOnEnable = fs.String("register-on-enable", "", "each server's register_on_enable in order, 1,0: 0 shares the others' registrations, so requests may go there unregistered (default: all 1)")
	p.onlyRegistered = fs.String("only-signal-with-registered", "1", "1: new requests only to a server the phone is registered on; 0: also to one it is registering on")
	p.registrars = fs.String("registrars", "", "when the servers are the phone's outbound proxies: the registrars behind them in priority order, HOST or HOST:PORT as a REGISTER's Request-URI names them ([::1]:5060 for an IPv6 address and port); a proxy's 408, 500, 502 or 504 to a REGISTER is then the registrar's")
	fs.StringVar(&d.Phone, "phone", "", "judge only this phone: its address of record (user@host) or its address (IP or IP:PORT); other endpoints are listed, not judged")
	fs.BoolVar(&d.FromBoot, "boot", false, "the capture began before the phone started: what is not in it did not happen")
	fs.DurationVar(&d.Slack, "slack", d.Slack, "what the bounds allow beyond the phone's timers: round trips and the phone's own pace")
	p.settingsFile = fs.String("settings", "", "take the phone's settings from this sipfailover settings file (flags given as well override it)")
	p.line = fs.String("line", "", "the line of -settings to take (by name; default its only line)")
	return p
}

// settings checks the flags and returns the phone's settings: the file's
// (with -settings) overridden by the flags given.
func (p *phoneFlags) settings() (capture.Settings, error) {
	d := p.d
	bad := func(format string, a ...any) (capture.Settings, error) {
		return capture.Settings{}, fmt.Errorf(format, a...)
	}
	switch {
	case *p.retryMode != "count" && *p.retryMode != "time":
		return bad("-retry-mode %q: count or time", *p.retryMode)
	case *p.failback != "on" && *p.failback != "off":
		return bad("-failback %q: on or off", *p.failback)
	case *p.mode != "successive" && *p.mode != "concurrent":
		return bad("-registration-mode %q: successive or concurrent", *p.mode)
	case *p.when != "idle" && *p.when != "always":
		return bad("-failback-when %q: idle or always", *p.when)
	case p.transport != nil && *p.transport != "" && *p.transport != "udp" && *p.transport != "tcp":
		return bad("-transport %q: udp or tcp (TLS is encrypted on the wire)", *p.transport)
	case *p.onlyRegistered != "0" && *p.onlyRegistered != "1":
		return bad("-only-signal-with-registered %q: 0 or 1", *p.onlyRegistered)
	}
	d.SignalUnregistered = *p.onlyRegistered == "0"
	if *p.registerOnEnable != "" {
		for i, v := range strings.Split(*p.registerOnEnable, ",") {
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
	for _, h := range strings.Split(*p.registrars, ",") {
		switch h = strings.TrimSpace(h); {
		case h == "" && *p.registrars != "":
			return bad("-registrars %q: an empty host", *p.registrars)
		case strings.ContainsAny(h, " ;@<>"):
			return bad("-registrars: %q is no HOST or HOST:PORT", h)
		case h != "":
			// HOST:PORT as net.JoinHostPort writes it, a HOST bare: as
			// verify-capture reads a Request-URI.
			if host, port, err := net.SplitHostPort(h); err == nil {
				h = net.JoinHostPort(host, port)
			} else {
				h = strings.Trim(h, "[]")
			}
			d.Registrars = append(d.Registrars, h)
		}
	}
	d.CountMode, d.FailbackEnabled, d.Concurrent = *p.retryMode == "count", *p.failback == "on", *p.mode == "concurrent"
	d.FailbackWhenIdle = *p.when == "idle"
	if p.transport != nil {
		d.Transport = *p.transport
	}
	if p.servers != nil {
		for _, s := range strings.Split(*p.servers, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return bad("-servers: %q is not ADDR:PORT (an IPv6 address in brackets: [::1]:5060)", s)
			}
			d.Servers = append(d.Servers, ap)
		}
	}
	d.UnavailableCodes = nil
	for _, c := range strings.Split(*p.codes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 300 || n > 699 {
			return bad("-unavailable-codes: %q is not a status code of 300-699", c)
		}
		d.UnavailableCodes = append(d.UnavailableCodes, n)
	}
	if *p.settingsFile != "" {
		fromFile, err := lineCaptureSettings(*p.settingsFile, *p.line)
		if err != nil {
			return bad("-settings: %v", err)
		}
		d = mergeSettings(p.fs, d, fromFile)
	} else if *p.line != "" {
		return bad("-line %s: give the settings file it is in with -settings", *p.line)
	}
	switch {
	case p.servers != nil && len(d.Servers) == 0:
		return bad("-servers: give the phone's servers in priority order, ADDR:PORT,ADDR:PORT")
	case len(d.Servers) > 8:
		return bad("-servers: %d servers; a line has at most 8", len(d.Servers))
	case p.servers != nil && len(d.Shared) > len(d.Servers):
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
	}
	return d, nil
}
