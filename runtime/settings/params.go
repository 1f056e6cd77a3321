package settings

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
)

// The settings of a line become the params of its models here, and only
// here: the bounds the models give their params (min and max in
// model/*.yaml, generated into each Params.Validate) are the bounds of the
// settings, so that whatever the loader, the page or the API accepts, a
// line can start with.

// LineParams maps a line's settings, defaults filled in, onto the params of
// model/line.yaml.
func (c LineConfig) LineParams() fsm.LineParams {
	ka := time.Duration(c.KeepaliveInterval)
	kaParam := ka // checked against the model's bound only when on
	if ka <= 0 {
		kaParam = time.Millisecond
	}
	flow := time.Duration(*c.NATKeepaliveInterval)
	flowParam := flow // checked against the model's bounds only when on
	if flow == 0 {
		flowParam = time.Second
	}
	return fsm.LineParams{
		ServerCount:             len(c.Hops()),
		RegistrarCount:          c.RegistrarCount(),
		Proxied:                 c.Proxied(),
		FailbackEnabled:         *c.EnableFailback == 1,
		FailbackInterval:        seconds(*c.FailbackInterval),
		CountMode:               c.RetryMode == "count",
		RetryCounts:             *c.SignalRetryCounts,
		RetryTime:               fsm.Duration(c.RetryTime),
		T1:                      fsm.Duration(c.T1),
		T2:                      fsm.Duration(c.T2),
		RefreshInterval:         fsm.Duration(RefreshAfter(time.Duration(seconds(*c.Hops()[0].TTL)))),
		KeepaliveEnabled:        ka > 0,
		KeepaliveInterval:       fsm.Duration(kaParam),
		FlowEnabled:             flow != 0,
		FlowInterval:            fsm.Duration(flowParam),
		BackoffBase:             fsm.Duration(c.BackoffBase),
		BackoffMax:              fsm.Duration(c.BackoffMax),
		DeregisterAfterFailback: c.DeregisterBackupAfterFailback == 1,
		ContactShared:           c.ContactShared(),
		FailbackMode:            max(0, slices.Index(FailbackModes, c.FailbackMode)), // an unknown one is reported by Validate
		FailbackWhenIdle:        c.FailbackWhen != "always",
		TimerSpread:             c.TimerSpread,
	}
}

// ContactShared says whether every hop of the line sees it under one
// Contact: UDP from the port the sockets share. A TCP or TLS connection
// has a port, and so a Contact, of its own.
func (c LineConfig) ContactShared() bool {
	for _, s := range c.Hops() {
		if *s.Transport != TransportUDP {
			return false
		}
	}
	return true
}

// RequestParams maps them onto the params of model/request.yaml that every
// request of the line shares.
func (c LineConfig) RequestParams() fsm.RequestParams {
	return fsm.RequestParams{
		ServerCount: len(c.Hops()), CountMode: c.RetryMode == "count", RetryCounts: *c.SignalRetryCounts,
		InviteRetryCounts: *c.InviteRetryCounts,
		RetryTime:         fsm.Duration(c.RetryTime), T1: fsm.Duration(c.T1), T2: fsm.Duration(c.T2),
		RingTimeout:        fsm.Duration(RingTimeout),
		SignalUnregistered: *c.OnlySignalWithRegistered == 0,
	}
}

// ConcurrentParams maps them onto the params of model/concurrent.yaml
// (R17); the runtime sets the bindings' standing before each event.
func (c LineConfig) ConcurrentParams() fsm.ConcurrentParams {
	return fsm.ConcurrentParams{ServerCount: len(c.Hops()), BestUp: len(c.Hops()), FailbackEnabled: *c.EnableFailback == 1,
		FailbackWhenIdle: c.FailbackWhen != "always"}
}

// BindingParams maps them onto the params of model/binding.yaml, for a
// binding on the last server of the list or another (R17).
func (c LineConfig) BindingParams(last bool) fsm.BindingParams {
	lp := c.LineParams()
	return fsm.BindingParams{IsLast: last, CountMode: lp.CountMode, RetryCounts: lp.RetryCounts, RetryTime: lp.RetryTime,
		T1: lp.T1, T2: lp.T2, RefreshInterval: lp.RefreshInterval, KeepaliveEnabled: lp.KeepaliveEnabled,
		KeepaliveInterval: lp.KeepaliveInterval, FlowEnabled: lp.FlowEnabled, FlowInterval: lp.FlowInterval,
		BackoffBase: lp.BackoffBase, BackoffMax: lp.BackoffMax,
		FailbackEnabled: lp.FailbackEnabled, FailbackInterval: lp.FailbackInterval, TimerSpread: lp.TimerSpread}
}

// CallParams maps them onto the params of model/call.yaml.
func (c LineConfig) CallParams() fsm.CallParams {
	return fsm.CallParams{T1: fsm.Duration(c.T1), MaxDuration: fsm.Duration(c.MaxCallDuration)}
}

// seconds converts a setting in seconds, saturating instead of overflowing,
// so that a huge value is reported above its maximum, not wrapped.
func seconds(n int) fsm.Duration {
	if n > math.MaxInt64/int(time.Second) {
		return math.MaxInt64
	}
	return fsm.Duration(time.Duration(n) * time.Second)
}

// settingOf names the setting behind each model param.
var settingOf = map[string]string{
	"server_count": "servers", "failback_interval": "failback_interval", "retry_counts": "signal_retry_counts",
	"retry_time": "retry_time", "t1": "t1", "t2": "t2", "refresh_interval": "servers[0].ttl",
	"keepalive_interval": "keepalive_interval", "flow_interval": "nat_keepalive_interval", "backoff_base": "backoff_base", "backoff_max": "backoff_max",
	"max_duration": "max_call_duration", "ring_timeout": "ring timeout", "invite_retry_counts": "invite_retry_counts",
	"failback_mode": "failback_mode", "timer_spread": "timer_spread",
}

// FailbackModes are the values of the failback_mode setting, in the order
// of model/line.yaml's failback_mode param (R18).
var FailbackModes = []string{"duration", "registration", "new_requests", "dns_ttl"}

// modelProblems checks the settings of line c (defaults filled in) against
// the bounds of the models' params, and returns each breach as the field
// of the setting and what is wrong with it.
func modelProblems(c LineConfig) [][2]string {
	var out [][2]string
	seen := map[string]bool{}
	for _, err := range []error{c.LineParams().Validate(), c.RequestParams().Validate(), c.CallParams().Validate()} {
		for _, e := range unjoin(err) {
			var pe *fsm.ParamError
			if !errors.As(e, &pe) {
				continue
			}
			field := settingOf[pe.Param]
			if field == "" {
				field = pe.Param
			}
			if key := field + pe.Msg; !seen[key] {
				seen[key] = true
				out = append(out, [2]string{field, pe.Msg})
			}
		}
	}
	return out
}

// unjoin lists the errors that errors.Join put together.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// RefreshAfter is when to refresh a binding granted for d: at 80 %, and at
// least a second before it expires (I8).
func RefreshAfter(d time.Duration) time.Duration {
	r := d * 4 / 5
	if d-r < time.Second {
		r = d - time.Second
	}
	return max(r, 100*time.Millisecond)
}

// RingTimeout bounds how long an INVITE that got a 1xx waits for its final
// answer; RFC 3261 Timer C is more than 3 minutes.
const RingTimeout = 3*time.Minute + time.Second
