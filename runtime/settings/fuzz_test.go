package settings_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// FuzzSettings feeds the settings loader any bytes. It never panics; a
// file it accepts is one every line of which an agent can start (what the
// loader accepts, a line can start with), and which saves and loads back
// to the same effective settings.
func FuzzSettings(f *testing.F) {
	if src, err := os.ReadFile("../../docs/lines.example.yaml"); err == nil {
		f.Add(src)
	}
	for _, seed := range []string{
		"lines:\n- user: a\n  servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]\n",
		"lines:\n- user: a\n  retry_time: 500us\n  retry_mode: count\n  servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]\n",
		"lines:\n- user: a\n  failback_interval: 9223372037\n  servers: [{addr: h1}, {addr: h2, port: 65535, transport: 3}]\n",
		"lines:\n- user: a\n  t1: 1ns\n  t2: 1ns\n  backoff_base: 1ns\n  backoff_max: 1ns\n  servers: [{addr: a.b}, {addr: c.d, ttl: 1}]\n",
		"lines:\n- user: a\n  unavailable_codes: []\n  servers: [{addr: 127.0.0.1}, {addr: 127.0.0.2}]\n",
		"",
		"lines: [",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := settings.Parse(data)
		if err != nil {
			return
		}
		agent := runtime.NewAgent(runtimetest.NewSimNetwork(runtimetest.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), 0))
		for i, l := range cfg.Lines {
			if _, err := agent.AddLine(l); err != nil {
				t.Fatalf("line %d was accepted by the loader but cannot start: %v", i+1, err)
			}
		}
		path := filepath.Join(t.TempDir(), "lines.yaml")
		if err := settings.Save(path, cfg); err != nil {
			t.Fatalf("accepted settings cannot be saved: %v", err)
		}
		back, err := settings.Load(path)
		if err != nil {
			t.Fatalf("saved settings do not load: %v", err)
		}
		if !reflect.DeepEqual(effective(cfg), effective(back)) {
			t.Fatalf("settings changed through a save:\n%+v\n%+v", effective(cfg), effective(back))
		}
	})
}

// effective is what a config means: every line with its defaults.
func effective(c settings.Config) []settings.LineConfig {
	var out []settings.LineConfig
	for _, l := range c.Lines {
		out = append(out, l.Defaults())
	}
	return out
}
