package proptest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"pgregory.net/rapid"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// answered is one SRV answer the line's agent got: when (in the order of
// everything the run records) and the addresses it located, in order.
type answered struct {
	seq   int
	name  string // "primary" or "backup"
	addrs []string
}

// recorder is the agent's resolver in TestTargetsComeAndGo: the zone,
// with every SRV answer written down as the records stood when it was
// asked.
type recorder struct {
	*runtimetest.Zone
	seq     *int
	records map[string][]int // name -> its SRV targets, server numbers in priority order
	eps     []transport.Endpoint
	log     []answered
}

func (r *recorder) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if q.Question[0].Qtype == dns.TypeSRV {
		name := strings.TrimPrefix(strings.TrimSuffix(q.Question[0].Name, ".test."), "_sip._udp.")
		var addrs []string
		for _, i := range r.records[name] {
			addrs = append(addrs, r.eps[i].String())
		}
		*r.seq++
		r.log = append(r.log, answered{seq: *r.seq, name: name, addrs: addrs})
	}
	return r.Zone.Exchange(ctx, q)
}

// TestTargetsComeAndGo: R20 with I2 and I3 over located targets. Two
// names, primary.test and backup.test, each located through SRV at one to
// three of the simulated servers; the records change under the line,
// servers fail and recover, time passes. Every registration round must
// begin at the first target of the primary name as the line last looked
// it up, try the targets of both names in that order, each once, without
// skipping one (I3), and end all-failed only after trying every one (I2).
func TestTargetsComeAndGo(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const n = 5
		clock := runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		start := clock.Now()
		simnet := runtimetest.NewSimNetwork(clock, 10*time.Millisecond)
		var eps []transport.Endpoint
		for i := range n {
			e := transport.Endpoint{Host: fmt.Sprintf("127.0.2.%d", i+1), Port: 5060, Transport: settings.TransportUDP}
			eps = append(eps, e)
			simnet.Add(&runtimetest.SimServer{Endpoint: e, Auth: true})
		}
		seq := 0
		zone, _ := runtimetest.NewZone()
		rec := &recorder{Zone: zone, seq: &seq, records: map[string][]int{}, eps: eps}
		ttl := rapid.IntRange(5, 120).Draw(t, "ttl")
		// A large, hostile answer now and then: the real targets, then
		// hundreds more of lower priority whose names have no address.
		pad := rapid.SampledFrom([]int{0, 0, 50, 500}).Draw(t, "pad")
		write := func() {
			var rrs []string
			for i, e := range eps {
				rrs = append(rrs, fmt.Sprintf("s%d.host. 3600 IN A %s", i, e.Host))
			}
			for name, targets := range rec.records {
				for j, i := range targets {
					rrs = append(rrs, fmt.Sprintf("_sip._udp.%s.test. %d IN SRV %d 0 5060 s%d.host.", name, ttl, 10*(j+1), i))
				}
				for k := range pad {
					rrs = append(rrs, fmt.Sprintf("_sip._udp.%s.test. %d IN SRV %d 0 5060 pad%d.host.", name, ttl, 1000+k, k))
				}
			}
			if err := zone.Set(rrs...); err != nil {
				t.Fatal(err)
			}
		}
		draw := func(label string) []int {
			perm := rapid.Permutation([]int{0, 1, 2, 3, 4}).Draw(t, label)
			return perm[:rapid.IntRange(1, 3).Draw(t, label+"_count")]
		}
		rec.records["primary"], rec.records["backup"] = draw("primary"), draw("backup")
		write()

		type seen struct {
			seq int
			tr  runtime.Transition
		}
		var history []seen
		agent := runtime.NewAgent(simnet, runtime.WithClock(clock), runtime.WithSeed(1), runtime.WithResolver(rec),
			runtime.WithWatcher(func(tr runtime.Transition) {
				seq++
				history = append(history, seen{seq, tr})
			}))
		interval := rapid.IntRange(10, 300).Draw(t, "failback_interval")
		cfg := settings.LineConfig{Name: "srv", User: "1001", Password: "secret", Domain: "example.test",
			Servers: []settings.ServerConfig{
				{Addr: "primary.test", Port: new(0)},
				{Addr: "backup.test", Port: new(0)},
			},
			FailbackInterval: &interval, T1: settings.Duration(100 * time.Millisecond), T2: settings.Duration(800 * time.Millisecond),
			BackoffBase: settings.Duration(5 * time.Second), BackoffMax: settings.Duration(60 * time.Second)}
		line, err := agent.AddLine(cfg)
		if err != nil {
			t.Fatal(err)
		}
		line.Register()
		steps := rapid.IntRange(10, 40).Draw(t, "steps")
		for range steps {
			switch rapid.IntRange(0, 5).Draw(t, "action") {
			case 0, 1:
				i := rapid.IntRange(0, n-1).Draw(t, "server")
				mode := rapid.SampledFrom([]runtimetest.SimMode{runtimetest.SimUp, runtimetest.SimICMP, runtimetest.SimSilent, runtimetest.SimAnswer}).Draw(t, "mode")
				simnet.Set(eps[i], func(s *runtimetest.SimServer) { s.Mode, s.Code = mode, 503 })
			case 2:
				name := rapid.SampledFrom([]string{"primary", "backup"}).Draw(t, "name")
				rec.records[name] = draw("records")
				write()
			case 3:
				line.Register()
			default:
				clock.Advance(time.Duration(rapid.Int64Range(int64(50*time.Millisecond), int64(200*time.Second)).Draw(t, "advance")))
			}
		}
		clock.Advance(time.Duration(ttl+interval) * time.Second)

		// The list a round began with: the latest answers for both names
		// before the round's first transition.
		listAt := func(s int) []string {
			var p, b []string
			for _, a := range rec.log {
				if a.seq > s {
					break
				}
				if a.name == "primary" {
					p = a.addrs
				} else {
					b = a.addrs
				}
			}
			var list []string // each address once, where it comes first
			for _, a := range slices.Concat(p, b) {
				if !slices.Contains(list, a) {
					list = append(list, a)
				}
			}
			return list
		}
		trying := func(state string) bool { return state == "registering" || state == "retrying" }
		var (
			want  []string // the round's list
			tried []string
			open  bool
		)
		report := func(format string, args ...any) {
			var b strings.Builder
			for _, h := range history {
				fmt.Fprintf(&b, "  #%d %v %s -> %s on %s at %s (server %d) %s\n", h.seq, h.tr.At.Sub(start), h.tr.From, h.tr.To, h.tr.Event, h.tr.ServerAddr, h.tr.Server, h.tr.Reason)
			}
			for _, a := range rec.log {
				fmt.Fprintf(&b, "  #%d %s located at %v\n", a.seq, a.name, a.addrs)
			}
			t.Fatalf(format+"\n%s", append(args, b.String())...)
		}
		// Each lookup asks its SRV name, then the addresses of at most 16
		// of its targets (R20): never hundreds.
		if n, lookups := len(rec.Queries()), len(rec.log); n > lookups*(1+2*16) {
			report("%d DNS questions for %d lookups (%d padding targets)", n, lookups, pad)
		}
		for _, h := range history {
			tr := h.tr
			newRound := tr.To == "registering" && tr.Event != "resp.challenge" && tr.Event != "resp.retry"
			if newRound {
				want, tried, open = listAt(h.seq), nil, true
			}
			if !open {
				continue
			}
			if trying(tr.To) {
				if len(tried) == 0 || tried[len(tried)-1] != tr.ServerAddr {
					tried = append(tried, tr.ServerAddr)
				}
				if i := len(tried) - 1; i >= len(want) || tried[i] != want[i] {
					report("I3 over targets: the round tried %v, its list was %v (at %v)", tried, want, tr.At.Sub(start))
				}
				continue
			}
			if tr.To == "all_failed" && len(tried) != len(want) {
				report("I2 over targets: all_failed after trying %v of %v (at %v)", tried, want, tr.At.Sub(start))
			}
			open = false
		}
	})
}
