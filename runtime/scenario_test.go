package runtime_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// TestScenarios runs every script under testdata/*.txt: a failover story in
// virtual time against simulated servers, one step a line:
//
//	line servers=2 t1=500ms retry_counts=3 failback=on failback_interval=1800 auth=on
//	server primary silent          # up | icmp | refused | silent | reject-auth | answer 503 [retry-after 30]
//	server backup drop 30%         # lose 30 % of requests (seeded); also: delay 200ms
//	server primary min-expires 7200  # a rogue server; also grant header|contact V, nonce-life N, mangle HEADER, sane
//	server primary flow on         # it answers flow keep-alives (STUN, pongs); line nat_keepalive=30s nat_mode=auto
//	register                       # also: unregister, request-unavailable
//	send MESSAGE sip:1002@example.test   # an out-of-dialog request (R8)
//	advance 3.5s
//	expect state backup_registered
//	expect server backup
//	expect sends primary REGISTER at 0s 500ms 1.5s
//	expect count backup REGISTER 2
//	expect event timer.budget at 3.5s   # the latest transition on it; also: by T
//	expect reason no answer
//	expect expires backup 0        # the last REGISTER the backup got
//	expect request done 200        # how the latest request ended; also: failed
//	expect order backup REGISTER MESSAGE   # the methods a server saw, runs merged
//	dial sip:1002@example.test     # place a call (R6); hangup ends the latest call (R7)
//	farend call backup             # the far end calls the line through a server
//	farend hangup primary          # the far end sends BYE through a server
//	expect call confirmed [200]    # the latest call's state; also: expect call server backup,
//	                               # expect call reason TEXT
//	expect farend up               # the far end's latest call; also: ended, cancelled, ringing;
//	                               # expect farend log "INVITE via primary" ... in order
//	clear                          # forget requests and transitions so far
//	await timer.failback           # run time until the next transition on the event
//	expect state probing|backup_registered   # one of the states
//	expect only all_failed registering timer.backoff|user.register
//	                               # from those states to those only on those events
//	expect serial primary REGISTER 32s  # its transactions of the method never overlap, one
//	                               # unanswered in flight 32s
//
// With line servers=1 the line's one server is the name primary.test,
// whose one SRV target is the primary. With line dns=on (R20) the line's servers are the names primary.test and
// backup.test, each located through SRV at the server of its name at first:
//
//	dns primary s3,primary ttl=30  # the name's SRV targets, in priority order
//	dns primary fail SERVFAIL      # its lookups fail; also: silent, answer
//	expect lookups primary 2       # SRV questions for the name so far
//	expect server s3               # the server the line is at, by address
//
// With line shared=backup the named servers have register_on_enable 0, and
// with only_signal_with_registered=off a new request goes to a server the
// line is registering on (R23).
//
// With line proxies=on (R22) the simulated servers are the line's outbound
// proxies in front of one registrar, registrar.test, or with registrars=N
// of them, registrar.test, registrar2.test ...:
//
//	expect routes primary REGISTER primary   # the Route of the last such request
//	expect ruri primary REGISTER sip:registrar.test:5060   # its Request-URI
//	server primary registrar registrar.test 408   # proxy 1 answers for it: down
//	server primary registrar registrar.test up
//
// With proxies=on outbound=on registration_mode=concurrent the line runs SIP
// outbound (R24); server primary flow-timer 10 makes a 2xx to REGISTER carry
// Flow-Timer: 10.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios under testdata/")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

// TestScenarioFile runs the script -scenario names: a counterexample of
// the model checker written as a scenario (sipfailover verify -scenarios),
// here with the model as generated or, built with -overlay, as changed.
func TestScenarioFile(t *testing.T) {
	if *scenarioFile == "" {
		t.Skip("no -scenario FILE")
	}
	runScenario(t, *scenarioFile)
}

var scenarioFile = flag.String("scenario", "", "a scenario script for TestScenarioFile")

var serverNames = []string{"primary", "backup", "s3", "s4"}

type scenario struct {
	t       *testing.T
	file    string
	lineNo  int
	clock   *runtimetest.VirtualClock
	net     *runtimetest.SimNetwork
	start   time.Time
	cfg     settings.LineConfig
	auth    bool
	line    *runtime.Line
	eps     []transport.Endpoint
	history []runtime.Transition
	awaited int              // await looks at transitions from here on
	request *runtime.Request // the latest one sent
	call    *runtime.Call    // the latest call
	farCall string           // the Call-ID of the far end's latest call to the line

	// dns=on: the line's servers are the names primary.test and
	// backup.test, located in zone; records holds each name's SRV targets
	// (server names) and TTL (R20).
	zone    *runtimetest.Zone
	records map[string]srvSet
}

// srvSet is the SRV records of one name in a scenario's zone: its targets
// in priority order.
type srvSet struct {
	targets []string
	ttl     int
}

func (s *scenario) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.lineNo, fmt.Sprintf(format, args...))
}

func runScenario(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &scenario{t: t, file: file, clock: runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	s.start = s.clock.Now()
	s.net = runtimetest.NewSimNetwork(s.clock, 10*time.Millisecond)
	s.configure(nil)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s.lineNo++
		text, _, _ := strings.Cut(sc.Text(), "#")
		words := strings.Fields(text)
		if len(words) == 0 {
			continue
		}
		s.step(words)
	}
}

func (s *scenario) server(name string) int {
	i := slices.Index(serverNames, name)
	if i < 0 || i >= len(s.eps) {
		s.fail("unknown server %q", name)
	}
	return i
}

// configure applies key=value settings; the line is made at first use.
func (s *scenario) configure(kv []string) {
	if s.line != nil {
		s.fail("line settings must come before the first action")
	}
	set := map[string]string{"servers": "2", "transport": "udp", "auth": "on"}
	for _, w := range kv {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			s.fail("setting %q is not key=value", w)
		}
		set[k] = v
	}
	n, _ := strconv.Atoi(set["servers"])
	tr := map[string]int{"udp": settings.TransportUDP, "tcp": settings.TransportTCP, "tls": settings.TransportTLS}[set["transport"]]
	cfg := settings.LineConfig{Name: "scenario", User: "1001", Password: "secret", Domain: "example.test"}
	s.eps = nil
	var eps []transport.Endpoint
	for i := range n {
		port := 5060
		cfg.Servers = append(cfg.Servers, settings.ServerConfig{Addr: fmt.Sprintf("127.0.1.%d", i+1), Port: &port, Transport: &tr})
		eps = append(eps, transport.Endpoint{Host: fmt.Sprintf("127.0.1.%d", i+1), Port: port, Transport: tr})
	}
	if n == 1 && set["dns"] != "on" {
		// One name with port 0, its one SRV target the primary: a line of
		// one server (R20).
		cfg.Servers = []settings.ServerConfig{{Addr: "primary.test", Port: new(0), Transport: &tr}}
		s.records = map[string]srvSet{"primary": {[]string{"primary"}, 86400}}
		s.zone, _ = runtimetest.NewZone()
	}
	if set["dns"] == "on" {
		// Two names, each located at its own server at first (R20).
		cfg.Servers = []settings.ServerConfig{
			{Addr: "primary.test", Port: new(0), Transport: &tr},
			{Addr: "backup.test", Port: new(0), Transport: &tr},
		}
		s.records = map[string]srvSet{"primary": {[]string{"primary"}, 60}, "backup": {[]string{"backup"}, 60}}
		s.zone, _ = runtimetest.NewZone()
	}
	num := func(k string) *int {
		v, ok := set[k]
		if !ok {
			return nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			s.fail("%s=%s is not a number", k, v)
		}
		return &x
	}
	dur := func(k string) settings.Duration {
		v, ok := set[k]
		if !ok {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			s.fail("%s=%s is not a duration", k, v)
		}
		return settings.Duration(d)
	}
	onoff := func(k string) *int {
		switch set[k] {
		case "":
			return nil
		case "on":
			return new(1)
		case "off":
			return new(0)
		}
		s.fail("%s=%s is not on or off", k, set[k])
		return nil
	}
	cfg.SignalRetryCounts = num("retry_counts")
	cfg.FailbackInterval = num("failback_interval")
	cfg.EnableFailback = onoff("failback")
	if v := onoff("deregister_backup"); v != nil {
		cfg.DeregisterBackupAfterFailback = *v
	}
	cfg.RetryMode = set["retry_mode"]
	cfg.FailbackMode, cfg.FailbackWhen, cfg.RegistrationMode = set["failback_mode"], set["failback_when"], set["registration_mode"]
	cfg.InviteRetryCounts = num("invite_retry_counts")
	if v := num("timer_spread"); v != nil {
		cfg.TimerSpread = *v
	}
	cfg.RetryTime, cfg.T1, cfg.T2 = dur("retry_time"), dur("t1"), dur("t2")
	cfg.KeepaliveInterval = dur("keepalive")
	if _, ok := set["nat_keepalive"]; ok {
		d := dur("nat_keepalive")
		cfg.NATKeepaliveInterval = &d
	}
	cfg.NATKeepaliveMode = set["nat_mode"]
	cfg.BackoffBase, cfg.BackoffMax = dur("backoff_base"), dur("backoff_max")
	if v := onoff("only_signal_with_registered"); v != nil {
		cfg.OnlySignalWithRegistered = v
	}
	if shared, ok := set["shared"]; ok {
		// The named servers have register_on_enable 0 (R23).
		for _, name := range strings.Split(shared, ",") {
			i := slices.Index(serverNames, name)
			if i < 0 || i >= len(cfg.Servers) {
				s.fail("shared=%s: no server %s", shared, name)
			}
			cfg.Servers[i].RegisterOnEnable = new(0)
		}
	}
	if onoff("proxies") != nil && *onoff("proxies") == 1 {
		// The simulated servers are outbound proxies in front of one
		// registrar, registrar.test, or registrars=N of them,
		// registrar.test, registrar2.test ... (R22).
		cfg.OutboundProxies = cfg.Servers
		cfg.Servers = []settings.ServerConfig{{Addr: "registrar.test", Port: new(5060)}}
		if n := num("registrars"); n != nil {
			for k := 2; k <= *n; k++ {
				cfg.Servers = append(cfg.Servers, settings.ServerConfig{Addr: fmt.Sprintf("registrar%d.test", k), Port: new(5060)})
			}
		}
		cfg.Outbound = set["outbound"] == "on" // RFC 5626 flows through them (R24)
	}
	if ttl := num("ttl"); ttl != nil {
		for i := range cfg.Servers {
			cfg.Servers[i].TTL = ttl
		}
	}
	if rtt := dur("rtt"); rtt > 0 {
		s.net.RTT = time.Duration(rtt)
	}
	s.auth = set["auth"] == "on"
	s.cfg = cfg.Defaults()
	for _, e := range eps {
		s.eps = append(s.eps, e)
		if s.net.Server(e) == nil {
			s.net.Add(&runtimetest.SimServer{Endpoint: e, Auth: s.auth})
		}
	}
	if s.zone != nil {
		s.writeZone()
	}
}

// writeZone puts the scenario's records in its zone: each name's SRV
// targets, priority 10, 20 ... in order, and an A record per server.
func (s *scenario) writeZone() {
	service := map[int]string{settings.TransportUDP: "_sip._udp", settings.TransportTCP: "_sip._tcp", settings.TransportTLS: "_sips._tcp"}[s.eps[0].Transport]
	var rrs []string
	for i, e := range s.eps {
		rrs = append(rrs, fmt.Sprintf("%s.host. 604800 IN A %s", serverNames[i], e.Host))
	}
	for name, set := range s.records {
		for j, target := range set.targets {
			rrs = append(rrs, fmt.Sprintf("%s.%s.test. %d IN SRV %d 0 %d %s.host.", service, name, set.ttl, 10*(j+1), s.eps[s.server(target)].Port, target))
		}
	}
	if err := s.zone.Set(rrs...); err != nil {
		s.fail("zone: %v", err)
	}
}

// dnsStep changes the zone: dns NAME TARGET[,TARGET...] [ttl=N] | dns NAME
// fail RCODE | dns NAME silent | dns NAME answer.
func (s *scenario) dnsStep(w []string) {
	if s.zone == nil {
		s.fail("dns steps need line dns=on")
	}
	if len(w) < 2 || (w[0] != "primary" && w[0] != "backup") {
		s.fail("dns primary|backup TARGETS [ttl=N] | fail RCODE | silent | answer")
	}
	name := w[0] + ".test"
	switch w[1] {
	case "fail":
		rc, ok := dns.StringToRcode[w[len(w)-1]]
		if len(w) != 3 || !ok {
			s.fail("dns NAME fail RCODE (SERVFAIL, REFUSED ...)")
		}
		s.zone.Fail(s.srvName(name), rc)
	case "silent":
		s.zone.Silence(s.srvName(name), true)
	case "answer":
		s.zone.Fail(s.srvName(name), 0)
		s.zone.Silence(s.srvName(name), false)
	default:
		set := srvSet{targets: strings.Split(w[1], ","), ttl: 60}
		for _, x := range w[2:] {
			v, ok := strings.CutPrefix(x, "ttl=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				s.fail("%q is not ttl=SECONDS", x)
			}
			set.ttl = n
		}
		for _, target := range set.targets {
			s.server(target)
		}
		s.records[w[0]] = set
		s.writeZone()
	}
}

// srvName is the SRV name the line asks for name.
func (s *scenario) srvName(name string) string {
	return map[int]string{settings.TransportUDP: "_sip._udp.", settings.TransportTCP: "_sip._tcp.", settings.TransportTLS: "_sips._tcp."}[s.eps[0].Transport] + name
}

func (s *scenario) ensureLine() *runtime.Line {
	if s.line == nil {
		opts := []runtime.Option{runtime.WithClock(s.clock), runtime.WithSeed(1),
			runtime.WithWatcher(func(tr runtime.Transition) { s.history = append(s.history, tr) })}
		if s.zone != nil {
			opts = append(opts, runtime.WithResolver(s.zone))
		}
		agent := runtime.NewAgent(s.net, opts...)
		l, err := agent.AddLine(s.cfg)
		if err != nil {
			s.fail("line: %v", err)
		}
		s.line = l
	}
	return s.line
}

func (s *scenario) at(text string) time.Duration {
	d, err := time.ParseDuration(text)
	if err != nil {
		s.fail("%q is not a duration", text)
	}
	return d
}

func (s *scenario) now() time.Duration { return s.clock.Now().Sub(s.start) }

func (s *scenario) step(w []string) {
	s.t.Helper()
	switch w[0] {
	case "line":
		s.configure(w[1:])
	case "server":
		if len(w) < 3 {
			s.fail("server NAME MODE")
		}
		i := s.server(w[1])
		switch w[2] {
		case "drop": // server NAME drop PERCENT
			pct, err := strconv.Atoi(strings.TrimSuffix(w[len(w)-1], "%"))
			if err != nil || pct < 0 || pct > 100 {
				s.fail("drop needs a percentage")
			}
			s.net.Set(s.eps[i], func(sv *runtimetest.SimServer) { sv.Drop = pct })
			return
		case "delay": // server NAME delay DURATION
			d := s.at(w[len(w)-1])
			s.net.Set(s.eps[i], func(sv *runtimetest.SimServer) { sv.Delay = d })
			return
		case "ring": // server NAME ring DURATION: the far end rings before it answers
			d := s.at(w[len(w)-1])
			s.net.Set(s.eps[i], func(sv *runtimetest.SimServer) { sv.Ring = d })
			return
		case "grant", "min-expires", "nonce-life", "mangle", "sane", "flow", "flow-timer", "registrar": // see runtimetest.ParseSimRogue
			f, err := runtimetest.ParseSimRogue(w[2:])
			if err != nil {
				s.fail("%v", err)
			}
			s.net.Set(s.eps[i], f)
			return
		}
		mode, code, retry, err := runtimetest.ParseSimMode(w[2:])
		if err != nil {
			s.fail("%v", err)
		}
		s.net.Set(s.eps[i], func(sv *runtimetest.SimServer) { sv.Mode, sv.Code, sv.RetryAfter = mode, code, retry })
	case "dns":
		s.dnsStep(w[1:])
	case "register":
		s.ensureLine().Register()
	case "unregister":
		s.ensureLine().Unregister()
	case "send": // send METHOD URI: an out-of-dialog request (R8)
		if len(w) != 3 {
			s.fail("send METHOD URI")
		}
		r, err := s.ensureLine().Send(sip.RequestMethod(w[1]), w[2], "text/plain", []byte("hello"))
		if err != nil {
			s.fail("send: %v", err)
		}
		s.request = r
	case "dial": // dial URI: a call (R6)
		if len(w) != 2 {
			s.fail("dial URI")
		}
		c, err := s.ensureLine().Dial(w[1])
		if err != nil {
			s.fail("dial: %v", err)
		}
		s.call = c
	case "hangup":
		if s.call == nil {
			s.fail("no call to hang up")
		}
		s.call.Hangup()
	case "farend": // farend call SERVER | farend hangup SERVER
		if len(w) != 3 {
			s.fail("farend call|hangup SERVER")
		}
		via := s.eps[s.server(w[2])]
		switch w[1] {
		case "call":
			s.farCall = s.net.CallLine(via, s.cfg.User, s.cfg.Domain)
			s.clock.Advance(s.net.RTT) // the INVITE arrives
			for _, c := range s.ensureLine().Calls() {
				if c.ID() == s.farCall {
					s.call = c
				}
			}
			if s.call == nil || s.call.ID() != s.farCall {
				s.fail("the line made no call of the far end's INVITE")
			}
		case "hangup":
			if err := s.net.HangUp(s.lastFarCall().CallID, via); err != nil {
				s.fail("%v", err)
			}
		default:
			s.fail("farend call|hangup SERVER")
		}
	case "request-unavailable":
		s.ensureLine().RequestUnavailable("a call's request found the server unavailable")
	case "advance":
		if len(w) != 2 {
			s.fail("advance DURATION")
		}
		s.clock.Advance(s.at(w[1]))
	case "await": // await EVENT [within DURATION]: time runs until the next transition on EVENT
		s.await(w[1:])
	case "clear":
		s.history, s.awaited = nil, 0
		for _, e := range s.eps {
			s.net.Set(e, func(sv *runtimetest.SimServer) { sv.Received = nil })
		}
	case "expect":
		s.expect(w[1:])
	case "dump": // debugging aid: print what a server received after a time
		from := s.at(w[2])
		for _, r := range s.net.Requests(s.eps[s.server(w[1])]) {
			if r.At >= from {
				s.t.Logf("%v %s %s cid=%.6s exp=%d auth=%v delivered=%v answer=%d", r.At, r.Method, r.Branch[len(r.Branch)-6:], r.CallID, r.Expires, r.Auth, r.Delivered, r.Answer)
			}
		}
		for _, x := range s.history {
			if x.At.Sub(s.start) >= from {
				s.t.Logf("%v %s -> %s on %s (%s) %d %s", x.At.Sub(s.start), x.From, x.To, x.Event, x.ID, x.Server, x.Reason)
			}
		}
	default:
		step, ok := userSteps[w[0]]
		if !ok {
			s.fail("unknown step %q", w[0])
		}
		step(s.ensureLine())
	}
}

// userSteps are more steps of the user, which a change to the line model
// registers from a file of its own (README, "Change the behaviour"), so
// that the property suite's runs with it replay here.
var userSteps = map[string]func(*runtime.Line){}
