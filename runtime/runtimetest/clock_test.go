package runtimetest

import (
	"slices"
	"testing"
	"time"
)

func TestVirtualClockOrder(t *testing.T) {
	c := NewVirtualClock(time.Unix(0, 0))
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(time.Unix(0, 0)).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(time.Second, at("b")) // same deadline: fires after a, set after it
	stopped := c.AfterFunc(2*time.Second, at("never"))
	c.AfterFunc(2*time.Second, func() {
		got = append(got, "d@2s")
		c.AfterFunc(500*time.Millisecond, at("e")) // set while firing: still in order
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.Advance(2500 * time.Millisecond)
	want := []string{"a@1s", "b@1s", "d@2s", "e@2.5s"}
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if c.Now() != time.Unix(0, 0).Add(2500*time.Millisecond) || c.Pending() != 1 {
		t.Fatalf("now %v, pending %d", c.Now(), c.Pending())
	}
	if !c.AdvanceToNext() || got[len(got)-1] != "c@3s" || c.AdvanceToNext() {
		t.Fatalf("AdvanceToNext: %v", got)
	}
}
