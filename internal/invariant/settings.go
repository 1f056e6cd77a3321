package invariant

import "time"

// Settings are what the checker needs to know of a line's settings.
type Settings struct {
	Servers           int
	Reliable          bool // TCP or TLS: one transmission per request
	CountMode         bool
	RetryCounts       int
	InviteRetryCounts int // an INVITE's own transmissions (R19); 0: RetryCounts
	RetryTime         time.Duration
	T1, T2            time.Duration
	FailbackEnabled   bool
	FailbackInterval  time.Duration
	BackoffBase       time.Duration
	BackoffMax        time.Duration
	Keepalive         time.Duration // 0: off
	FlowKeepalive     time.Duration // the flow keep-alive's interval (nat_keepalive_interval); 0: off
	RTT               time.Duration // the largest round trip, delays included
	FailbackMode      string        // duration (or ""), registration, new_requests, dns_ttl (R18)
	FailbackWhenIdle  bool          // no failback while a call holds the line (R18)
	RefreshBound      time.Duration // the longest the line may go between refreshes: the longest expiry it may ask
	TimerSpread       int           // percent taken off refresh, keep-alive and failback timers at random (R21)
	// Shared says, by server, that it has register_on_enable 0: it shares
	// the others' registrations, so a request may go there once the line
	// has registered anywhere (R23). Nil: none.
	Shared []bool
	// SignalUnregistered is only_signal_with_registered 0: a new request
	// may go to the server the line is registering on (R23).
	SignalUnregistered bool
	// Registrars is, behind outbound proxies (the servers), the number of
	// registrars behind them (R22); 0 or 1: one.
	Registrars int
}

// shared says whether server s has register_on_enable 0.
func (s Settings) shared(i int) bool { return i < len(s.Shared) && s.Shared[i] }

// timerE is the time from the first of n transmissions until RFC 3261 Timer
// E fires after the last (section 17.1.2.2).
func (s Settings) timerE(n int) time.Duration {
	var total time.Duration
	for k := range n {
		total += min(s.T1<<k, s.T2)
	}
	return total
}

// Budget is the retry budget of server i (R3, R4): written here from docs/requirements.md,
// not taken from the model, so that the check is a second opinion.
func (s Settings) Budget(i int) time.Duration {
	if i == s.Servers-1 {
		return 64 * s.T1
	}
	if s.CountMode {
		return min(64*s.T1, s.timerE(s.RetryCounts))
	}
	return min(64*s.T1, s.RetryTime)
}

// BudgetOf is the retry budget of server i for a request of method: an
// INVITE counts its own transmissions (R19).
func (s Settings) BudgetOf(method string, i int) time.Duration {
	if method == "INVITE" && s.InviteRetryCounts > 0 {
		s.RetryCounts = s.InviteRetryCounts
	}
	return s.Budget(i)
}

// TransmissionsOf is the most transmissions of a request of method to a
// server that is not the last, in count mode (R3, R19).
func (s Settings) TransmissionsOf(method string) int {
	if method == "INVITE" && s.InviteRetryCounts > 0 {
		return s.InviteRetryCounts
	}
	return s.RetryCounts
}

// RoundBound is how long a round through every server may take: each budget
// four times (a digest challenge restarts it once, a 423 or a stale nonce
// twice more) and a few round trips (I6), for each registrar behind the
// servers (R22).
func (s Settings) RoundBound() time.Duration {
	var total time.Duration
	for i := range s.Servers {
		total += 4 * (s.Budget(i) + 2*s.RTT)
	}
	return total * time.Duration(max(s.Registrars, 1)) // each registrar behind each proxy (R22)
}

// FlowBound is I11's bound on flow keep-alive packets, counted apart from
// transactions: the most one server gets in any minute. One keep-alive
// waits at least 80 % of the interval after the last (RFC 5626 4.4.1), and
// a STUN request goes at most five times (at 0, 0.5, 1.5, 3.5 and 7.5 s).
func (s Settings) FlowBound() int {
	if s.FlowKeepalive <= 0 {
		return 0
	}
	every := s.FlowKeepalive * 4 / 5
	return 5 * (int((time.Minute+every-1)/every) + 1)
}

// RateBound is I11's bound: the most transactions a line may start on one
// server in any minute in which the user made u requests, written here from
// docs/requirements.md. A refresh every 4 s is the shortest a granted expiry
// allows (5 s, refreshed at 80 %); 4 the tries of one request (a challenge,
// then a 423 or a stale nonce twice).
func (s Settings) RateBound(u int) int {
	per := func(d time.Duration) int {
		if d <= 0 {
			return 0
		}
		return int((time.Minute + d - 1) / d)
	}
	// With timer_spread S, the refresh, keep-alive and failback periods
	// count as (1 - S/100) of themselves (R21).
	spread := func(d time.Duration) time.Duration { return d * time.Duration(100-s.TimerSpread) / 100 }
	n := per(spread(4*time.Second)) + per(s.BackoffBase/2) + per(spread(s.Keepalive)) + 1 + 2*u
	// A flow keep-alive that finds a server alive while all failed starts
	// a round at most once an interval, drawn in 80-100 % of it (R9).
	n += per(s.FlowKeepalive * 4 / 5)
	if s.FailbackEnabled {
		n += per(spread(s.FailbackInterval))
	}
	if s.FailbackEnabled && s.FailbackMode == "new_requests" {
		n += u // a probe of the primary for each new request (R18)
	}
	return 4 * n
}
