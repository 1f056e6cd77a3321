package main

import (
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
)

// verifyCaptureCmd is `sipfailover verify-capture`: a capture of any
// phone's SIP traffic checked against the line's invariants.
func verifyCaptureCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify-capture", flag.ContinueOnError)
	d := capture.DefaultSettings()
	servers := fs.String("servers", "", "the phone's servers in priority order, ADDR:PORT,ADDR:PORT (required)")
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
	fs.DurationVar(&d.BackoffBase, "backoff-base", d.BackoffBase, "the phone's back-off after every server failed")
	codes := fs.String("unavailable-codes", "500,503", "answers that make a server unavailable")
	mode := fs.String("registration-mode", "successive", "successive or concurrent (a registration on every server at once)")
	fs.BoolVar(&d.FromBoot, "boot", false, "the capture began before the phone started: what is not in it did not happen")
	fs.DurationVar(&d.Slack, "slack", d.Slack, "what the bounds allow beyond the phone's timers: round trips and the phone's own pace")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	picture := fs.String("picture", "", "draw the timeline to this .svg or .png file")
	synopsis := "verify-capture FILE.pcap|FILE.pcapng -servers ADDR:PORT,ADDR:PORT [settings of the phone] [-json] [-picture FILE]"
	// The file may come before the flags, as in the synopsis.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = append(args[1:], args[0])
	}
	if code, ok := parse(fs, args, synopsis, 1, 1, stdout, stderr); !ok {
		return code
	}
	d.FailbackInterval = *interval
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "verify-capture: "+format+"\n", a...)
		return 2
	}
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
	switch {
	case len(d.Servers) == 0:
		return bad("-servers: give the phone's servers in priority order, ADDR:PORT,ADDR:PORT")
	case len(d.Servers) > 8:
		return bad("-servers: %d servers; a line has at most 8", len(d.Servers))
	case d.T1 <= 0 || d.T2 < d.T1:
		return bad("-t1 %v -t2 %v: T1 must be positive and T2 at least T1", d.T1, d.T2)
	case d.RetryCounts < 1 || d.RetryCounts > 64:
		return bad("-retry-counts %d: 1 to 64", d.RetryCounts)
	case d.InviteRetryCounts < 0 || d.InviteRetryCounts > 64:
		return bad("-invite-retry-counts %d: 0 to 64", d.InviteRetryCounts)
	case d.RetryTime <= 0 || d.FailbackInterval <= 0 || d.BackoffBase <= 0 || d.Keepalive < 0 || d.Slack < 0:
		return bad("durations must be positive (-keepalive and -slack may be 0)")
	case *retryMode != "count" && *retryMode != "time":
		return bad("-retry-mode %q: count or time", *retryMode)
	case *failback != "on" && *failback != "off":
		return bad("-failback %q: on or off", *failback)
	case *mode != "successive" && *mode != "concurrent":
		return bad("-registration-mode %q: successive or concurrent", *mode)
	case d.FailbackMode != "duration" && d.FailbackMode != "registration" && d.FailbackMode != "new_requests" && d.FailbackMode != "dns_ttl":
		return bad("-failback-mode %q: duration, registration, new_requests or dns_ttl", d.FailbackMode)
	case *when != "idle" && *when != "always":
		return bad("-failback-when %q: idle or always", *when)
	case *backoffMax < 0:
		return bad("-backoff-max %v: 0 or more", *backoffMax)
	case *transport != "" && *transport != "udp" && *transport != "tcp":
		return bad("-transport %q: udp or tcp (TLS is encrypted on the wire)", *transport)
	}
	d.CountMode, d.FailbackEnabled, d.Concurrent = *retryMode == "count", *failback == "on", *mode == "concurrent"
	d.FailbackWhenIdle, d.BackoffMax = *when == "idle", *backoffMax
	d.UnavailableCodes = nil
	for _, c := range strings.Split(*codes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 300 || n > 699 {
			return bad("-unavailable-codes: %q is not a status code of 300-699", c)
		}
		d.UnavailableCodes = append(d.UnavailableCodes, n)
	}
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
	d.Transport = *transport
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
