package main

import (
	"log/slog"
	"time"

	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/internal/lab"
)

// Where the lab's servers listen unless told: docs/lab-phone.yaml points
// its phone here.
const (
	labPrimary = "127.0.0.1:5070"
	labBackup  = "127.0.0.1:5080"
)

// labCmd plays the seed's server pair for a phone under test, breaks the
// primary in every way the line model knows, and judges the phone's
// failover and failback with verify-capture's checker.
func labCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	primary := fs.String("primary", labPrimary, "where the lab's primary listens: an address of this machine and a port; point the phone's server 1 here")
	backup := fs.String("backup", labBackup, "where the lab's backup listens; point the phone's server 2 here")
	transport := fs.String("transport", "udp", "the servers' transport: udp or tcp")
	user := fs.String("user", "", "the phone's user name (required)")
	password := fs.String("password", "", "the phone's password (required): the lab challenges every REGISTER")
	farUser := fs.String("far-user", "1002", "the far end's user, which the phone dials")
	algorithm := fs.String("algorithm", "MD5", "the digest algorithm of the challenges: MD5 or SHA-256")
	expires := fs.Int("expires", 60, "the registration time the lab grants, in seconds: the phone refreshes within it")
	retryAfter := fs.Int("retry-after", 10, "the Retry-After of the 503-retry-after fault, in seconds")
	slow := fs.Int("slow", 90, "how late the slow fault answers, in percent of the phone's budget on the primary")
	dial := fs.String("dial", "", "a shell command that makes the phone call {uri} (the far end), e.g. 'sipfailover call {uri}'")
	hangup := fs.String("hangup", "", "a shell command that makes the phone hang up, e.g. 'sipfailover hangup'")
	waitPhone := fs.Duration("wait", 2*time.Minute, "how long to wait for the phone's first registration on the primary: the time to start or point it")
	planFile := fs.String("plan", "", "a plan file of one's own cases (docs/lab.md says how to write one); default: the plan the line model gives")
	cases := fs.String("cases", "", "the cases to run, by name, comma-separated (default: the whole plan)")
	list := fs.Bool("list", false, "print the plan and exit")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pcap := fs.String("pcap", "", "write everything the lab captured to this pcap file, for Wireshark")
	junit := fs.String("junit", "", "write the cases and invariants to this JUnit XML file, for CI")
	picture := fs.String("picture", "", "draw the run's timeline to this .svg or .png file")
	pf := addPhoneFlags(fs, false)
	synopsis := "lab -user NAME -password SECRET [-primary ADDR:PORT] [-backup ADDR:PORT] [-transport udp|tcp] [-plan FILE] [-dial CMD -hangup CMD] [settings of the phone | -settings FILE [-line NAME]] [-json] [-junit FILE.xml] [-pcap FILE] [-picture FILE]"
	if code, ok := parse(fs, args, synopsis, 0, 0, stdout, stderr); !ok {
		return code
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "lab: "+format+"\n", a...)
		return 2
	}
	phone, err := pf.settings()
	if err != nil {
		return bad("%v", err)
	}
	cfg := lab.Config{Transport: *transport, User: *user, Password: *password, FarUser: *farUser, Algorithm: *algorithm,
		Expires: *expires, RetryAfter: *retryAfter, Slow: *slow, Phone: phone, WaitPhone: *waitPhone, Dial: *dial, Hangup: *hangup, Progress: stderr}
	for _, a := range []struct {
		flag string
		val  string
		to   *netip.AddrPort
	}{{"primary", *primary, &cfg.Primary}, {"backup", *backup, &cfg.Backup}} {
		ap, err := netip.ParseAddrPort(a.val)
		if err != nil {
			return bad("-%s %q: an address and a port, such as 127.0.0.1:5070", a.flag, a.val)
		}
		if err := lab.CheckAddrs(ap); err != nil {
			return bad("-%s: %v", a.flag, err)
		}
		*a.to = ap
	}
	switch {
	case *transport != "udp" && *transport != "tcp":
		return bad("-transport %q: udp or tcp", *transport)
	case *algorithm != "MD5" && *algorithm != "SHA-256":
		return bad("-algorithm %q: MD5 or SHA-256", *algorithm)
	case *expires < 10 || *expires > 86400:
		return bad("-expires %d: 10 to 86400 seconds", *expires)
	case *retryAfter < 1 || *retryAfter > 3600:
		return bad("-retry-after %d: 1 to 3600 seconds", *retryAfter)
	case *slow < 1 || *slow > 99:
		return bad("-slow %d: 1 to 99 percent", *slow)
	case *waitPhone < 0 || *waitPhone > time.Hour:
		return bad("-wait %v: 0 to 1h", *waitPhone)
	case *hangup != "" && *dial == "":
		return bad("-hangup without -dial: the lab hangs up only calls it had the phone place")
	}
	format, err := pictureFormat(*picture)
	if err != nil {
		return bad("%v", err)
	}
	plan, err := lab.DefaultPlan(*transport)
	if *planFile != "" {
		var data []byte
		if data, err = os.ReadFile(*planFile); err == nil {
			plan, err = lab.ParsePlan(*planFile, data, *transport)
		}
	}
	if err != nil {
		return bad("%v", err)
	}
	if *cases != "" {
		var names []string
		for _, c := range plan {
			names = append(names, c.Name)
		}
		var picked []lab.Case
		for _, n := range strings.Split(*cases, ",") {
			n = strings.TrimSpace(n)
			k := slices.Index(names, n)
			if k < 0 {
				return bad("-cases: %q is no case of the plan (%s)", n, strings.Join(names, ", "))
			}
			picked = append(picked, plan[k])
		}
		plan = picked
	}
	if *list {
		for _, c := range plan {
			fmt.Fprintf(stdout, "%-24s %s\n", c.Name, strings.Join(c.Events, " "))
		}
		return 0
	}
	if *user == "" || *password == "" {
		return bad("-user and -password: the phone's account, which the lab challenges")
	}
	// Of what sipgo logs itself (the lab servers' transports), errors only.
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("lib", "sipgo"))
	l, err := lab.Start(cfg)
	if err != nil {
		return bad("%v", err)
	}
	defer l.Close()
	fmt.Fprintf(stderr, "lab: primary %s, backup %s (%s); point the phone at them with user %s; the far end is %s\n",
		cfg.Primary, cfg.Backup, *transport, *user, l.FarURI())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := l.Run(ctx, plan)
	if err != nil {
		return bad("%v", err)
	}
	for _, out := range []struct {
		flag, path string
		write      func(io.Writer) error
	}{
		{"pcap", *pcap, l.Pcap},
		{"junit", *junit, rep.WriteJUnit},
		{"picture", *picture, func(w io.Writer) error { return l.Picture(w, format, rep) }},
	} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.write); err != nil {
			fmt.Fprintf(stderr, "lab: -%s: %v\n", out.flag, err)
			return 2
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.Write(stdout)
	}
	switch {
	case rep.Violated():
		return 1
	case rep.Unusable != "" || ctx.Err() != nil:
		return 2
	}
	return 0
}
