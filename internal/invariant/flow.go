package invariant

import (
	"slices"
	"time"
)

// Flow keep-alives (R1, R5): packets to a server, no transaction.

// flowWait is how long a flow keep-alive waits for its answer (R5): 10 s,
// as RFC 5626 4.4.1 waits for a pong.
const flowWait = 10 * time.Second

// i11flow: flow keep-alives are packets, not transactions, and bounded
// apart: at most FlowBound to one server in any minute (I11).
func (c *checker) i11flow() {
	bound := c.tr.FlowBound()
	for srv, ks := range c.tr.Keepalives {
		if bound == 0 && len(ks) > 0 {
			c.report("I11", ks[0], "a flow keep-alive to server %d with the flow keep-alive off", srv)
			continue
		}
		for i, at := range ks {
			j, _ := slices.BinarySearch(ks, at+time.Minute)
			if n := j - i; n > bound {
				c.report("I11", at, "%d flow keep-alives to server %d in the minute from %v; the bound is %d", n, srv, at, bound)
				return
			}
		}
	}
}
