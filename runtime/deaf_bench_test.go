package runtime_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// BenchmarkDeafPrimary is the hardening issue's storm: N lines of one agent
// over TCP whose primary accepts the connection and never reads (a hung
// process), the backup a working registrar. It reports the time until
// every line is registered on the backup (the bound is the TCP budget,
// 3.5 s at T1 500 ms, plus the backup's round trips), the slowest Status
// call made meanwhile (the agent must stay responsive), and the time until
// every line is idle after Unregister (the shutdown SIGTERM runs; its
// bound is 64*T1 + 1 s).
func BenchmarkDeafPrimary(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n)+"lines", func(b *testing.B) {
			deaf, err := runtimetest.NewDeaf()
			if err != nil {
				b.Fatal(err)
			}
			defer deaf.Close()
			backup := &runtimetest.Registrar{Name: "backup", Network: "tcp", User: "1001", Password: "pw"}
			if err := backup.Start(); err != nil {
				b.Fatal(err)
			}
			defer backup.Stop()
			pp, bp, tcp := deaf.Port(), backup.Port(), settings.TransportTCP
			for b.Loop() {
				network := transport.NewSocketNetwork(nil, nil)
				agent := runtime.NewAgent(network)
				lines := make([]*runtime.Line, n)
				for i := range lines {
					l, err := agent.AddLine(settings.LineConfig{Name: "l" + strconv.Itoa(i), User: "1001", Password: "pw", Servers: []settings.ServerConfig{
						{Addr: "127.0.0.1", Port: &pp, Transport: &tcp}, {Addr: "127.0.0.1", Port: &bp, Transport: &tcp}}})
					if err != nil {
						b.Fatal(err)
					}
					lines[i] = l
				}
				start := time.Now()
				for _, l := range lines {
					l.Register()
				}
				var slowest time.Duration
				for i, l := range lines {
					for {
						t0 := time.Now()
						st := lines[(i*7919)%n].Status() // any line answers at once
						slowest = max(slowest, time.Since(t0))
						_ = st
						if s := l.Status(); s.Registered && s.Server == 2 {
							break
						}
						if time.Since(start) > 2*time.Minute {
							b.Fatalf("line %d is %s after two minutes: %s", i, l.State(), l.Status().LastReason)
						}
						time.Sleep(time.Millisecond)
					}
				}
				onBackup := time.Since(start)
				stop := time.Now()
				for _, l := range lines {
					l.Unregister()
				}
				for _, l := range lines {
					for l.State() != fsm.LineStateIdle && time.Since(stop) < 64*500*time.Millisecond+time.Second {
						time.Sleep(time.Millisecond)
					}
				}
				b.ReportMetric(onBackup.Seconds()*1000, "ms-all-on-backup")
				b.ReportMetric(float64(slowest.Microseconds())/1000, "ms-slowest-status")
				b.ReportMetric(time.Since(stop).Seconds()*1000, "ms-to-unregister-all")
				network.Close()
			}
		})
	}
}
