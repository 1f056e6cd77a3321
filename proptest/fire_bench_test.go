package proptest

import (
	"context"
	"testing"
	"time"

	looplab "github.com/looplab/fsm"

	"github.com/sipfailover/sipfailover/fsm"
)

// benchLine returns a line machine registered on the backup, with failback on.
func benchLine(b *testing.B) *fsm.LineMachine {
	b.Helper()
	p := fsm.LineParams{ServerCount: 2, RegistrarCount: 1, FailbackEnabled: true, FailbackInterval: fsm.Duration(time.Second),
		CountMode: true, RetryCounts: 3, RetryTime: 1, T1: fsm.Duration(500 * time.Millisecond), T2: fsm.Duration(4 * time.Second),
		RefreshInterval: fsm.Duration(time.Hour), KeepaliveEnabled: true, KeepaliveInterval: fsm.Duration(time.Minute),
		BackoffBase: fsm.Duration(time.Second), BackoffMax: fsm.Duration(time.Minute)}
	m := fsm.NewLineMachine(p, nil)
	if _, err := m.Start(); err != nil {
		b.Fatal(err)
	}
	for _, ev := range []fsm.LineEvent{fsm.LineEventUserRegister, fsm.LineEventTimerBudget, fsm.LineEventResp2xx} {
		if _, err := m.Fire(ev); err != nil {
			b.Fatal(err)
		}
	}
	if m.State() != fsm.LineStateBackupRegistered {
		b.Fatalf("in %s", m.State())
	}
	return m
}

// BenchmarkFireFailbackCycle: backup_registered -> probing -> backup_registered,
// two guarded transitions with their effects, per op.
func BenchmarkFireFailbackCycle(b *testing.B) {
	m := benchLine(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Fire(fsm.LineEventTimerFailback); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Fire(fsm.LineEventProbeFailed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLooplabFailbackCycle: the same two state changes on a bare
// looplab/fsm machine with no callbacks: the floor Fire builds on.
func BenchmarkLooplabFailbackCycle(b *testing.B) {
	f := looplab.NewFSM("backup_registered", looplab.Events{
		{Name: "failback_due", Src: []string{"backup_registered"}, Dst: "probing"},
		{Name: "probe_failed", Src: []string{"probing"}, Dst: "backup_registered"},
	}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Event(ctx, "failback_due"); err != nil {
			b.Fatal(err)
		}
		if err := f.Event(ctx, "probe_failed"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFireRefreshCycle: two transitions that stay in a state (refresh
// sent, refresh answered), which looplab reports as NoTransitionError.
func BenchmarkFireRefreshCycle(b *testing.B) {
	m := benchLine(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Fire(fsm.LineEventTimerRefresh); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Fire(fsm.LineEventResp2xx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLooplabRefreshCycle: the same two stays on a bare looplab machine.
func BenchmarkLooplabRefreshCycle(b *testing.B) {
	f := looplab.NewFSM("backup_registered", looplab.Events{
		{Name: "refresh", Src: []string{"backup_registered"}, Dst: "backup_registered"},
		{Name: "refreshed", Src: []string{"backup_registered"}, Dst: "backup_registered"},
	}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Event(ctx, "refresh")   // NoTransitionError: a stay
		_ = f.Event(ctx, "refreshed") // NoTransitionError: a stay
	}
}

// BenchmarkFireIgnored: an event the state drops on purpose never reaches looplab.
func BenchmarkFireIgnored(b *testing.B) {
	m := benchLine(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Fire(fsm.LineEventProbe2xx); err != nil {
			b.Fatal(err)
		}
	}
}
