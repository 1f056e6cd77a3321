package runtime_test

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/runtimetest"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

// The expectations of a scenario script (expect ...), and the readers of
// what the run did that they use.

// expect checks one expectation of the script: the words after "expect".
func (s *scenario) expect(w []string) {
	s.t.Helper()
	if len(w) < 2 {
		s.fail("expect WHAT ...")
	}
	st := s.ensureLine().Status()
	switch w[0] {
	case "state": // expect state S, or S1|S2: one of them
		if !slices.Contains(strings.Split(w[1], "|"), st.State) {
			s.fail("state is %s, want %s (at %v; transitions: %v)", st.State, w[1], s.now(), s.history)
		}
	case "only": // expect only FROM|... TO|... EVENT|...: from those states to those only on those events
		if len(w) != 4 {
			s.fail("expect only FROM|... TO|... EVENT|...")
		}
		from, to, on := strings.Split(w[1], "|"), strings.Split(w[2], "|"), strings.Split(w[3], "|")
		for _, x := range s.history {
			if slices.Contains(from, x.From) && slices.Contains(to, x.To) && !slices.Contains(on, x.Event) {
				s.fail("%s -> %s on %s at %v, want only on %s", x.From, x.To, x.Event, x.At.Sub(s.start), w[3])
			}
		}
	case "serial":
		// expect serial SERVER METHOD [D]: its transactions of METHOD never
		// overlap; one unanswered is in flight from its first send to its
		// last retransmission, and for D after its first send (Timer F:
		// over TCP nothing is retransmitted)
		if len(w) != 3 && len(w) != 4 {
			s.fail("expect serial SERVER METHOD [DURATION]")
		}
		var life time.Duration
		if len(w) == 4 {
			life = s.at(w[3])
		}
		type span struct {
			branch      string
			first, last time.Duration
		}
		var spans []span
		for _, r := range s.requests(w[1], w[2]) {
			end := r.At
			if r.Answer == 0 {
				end = max(end, r.At+life)
			}
			i := slices.IndexFunc(spans, func(x span) bool { return x.branch == r.Branch })
			if i < 0 {
				spans = append(spans, span{r.Branch, r.At, end})
				continue
			}
			spans[i].last = max(spans[i].last, end)
		}
		for i := 1; i < len(spans); i++ {
			if spans[i].first < spans[i-1].last {
				s.fail("%s got %s %s at %v while %s, sent from %v, was in flight until %v", w[1], w[2],
					spans[i].branch, spans[i].first, spans[i-1].branch, spans[i-1].first, spans[i-1].last)
			}
		}
	case "server": // the server the line is at, by address
		got := slices.IndexFunc(s.eps, func(e transport.Endpoint) bool { return e.String() == st.ServerAddr })
		if got < 0 || serverNames[got] != w[1] {
			s.fail("server is %q (%s), want %s", st.ServerAddr, st.Target, w[1])
		}
	case "lookups": // expect lookups NAME N: SRV questions for the name so far
		if len(w) != 3 || s.zone == nil {
			s.fail("expect lookups primary|backup N, with line dns=on")
		}
		n := 0
		for _, q := range s.zone.Queries() {
			if strings.EqualFold(q.Name, s.srvName(w[1]+".test")+".") {
				n++
			}
		}
		if strconv.Itoa(n) != w[2] {
			s.fail("%d lookups of %s, want %s; questions %v; transitions %v", n, w[1], w[2], s.zone.Queries(), s.history)
		}
	case "count":
		if len(w) != 4 {
			s.fail("expect count SERVER METHOD N")
		}
		want, _ := strconv.Atoi(w[3])
		if got := len(s.requests(w[1], w[2])); got != want {
			s.fail("%s got %d %s, want %d: %v", w[1], got, w[2], want, s.requests(w[1], w[2]))
		}
	case "sends":
		if len(w) < 4 || w[3] != "at" {
			s.fail("expect sends SERVER METHOD at T...")
		}
		var got, want []time.Duration
		for _, r := range s.requests(w[1], w[2]) {
			got = append(got, r.At)
		}
		for _, x := range w[4:] {
			want = append(want, s.at(x))
		}
		if !slices.Equal(got, want) {
			s.fail("%s got %s at %v, want %v", w[1], w[2], got, want)
		}
	case "event":
		if len(w) != 4 || (w[2] != "at" && w[2] != "by") {
			s.fail("expect event EVENT at|by T")
		}
		i := s.last(w[1])
		if i < 0 {
			s.fail("no transition on %s: %v", w[1], s.history)
		}
		got, want := s.history[i].At.Sub(s.start), s.at(w[3])
		if (w[2] == "at" && got != want) || (w[2] == "by" && got > want) {
			s.fail("%s at %v, want %s %v", w[1], got, w[2], want)
		}
	case "between":
		// expect between EVENT LO HI: the latest transition on EVENT came in [LO, HI]
		if len(w) != 4 {
			s.fail("expect between EVENT LO HI")
		}
		i := s.last(w[1])
		if i < 0 {
			s.fail("no transition on %s", w[1])
		}
		if got := s.history[i].At.Sub(s.start); got < s.at(w[2]) || got > s.at(w[3]) {
			s.fail("%s at %v, want within [%s, %s]", w[1], got, w[2], w[3])
		}
	case "reason":
		want := strings.Join(w[1:], " ")
		if !strings.Contains(st.LastReason, want) {
			s.fail("last reason %q lacks %q", st.LastReason, want)
		}
	case "waiting": // expect waiting TEXT | none: what the status says the line waits for
		want := strings.Join(w[1:], " ")
		if want == "none" {
			want = ""
		}
		if st.Waiting != want {
			s.fail("the status says the line waits for %q, want %q", st.Waiting, want)
		}
	case "calls": // expect calls N: the calls the status counts
		if len(w) != 2 || strconv.Itoa(st.Calls) != w[1] {
			s.fail("the status counts %d calls, want %s", st.Calls, strings.Join(w[1:], " "))
		}
	case "expires":
		if len(w) != 3 {
			s.fail("expect expires SERVER N")
		}
		rs := s.requests(w[1], "REGISTER")
		if len(rs) == 0 {
			s.fail("%s got no REGISTER", w[1])
		}
		if got := strconv.Itoa(rs[len(rs)-1].Expires); got != w[2] {
			s.fail("%s's last REGISTER had Expires %s, want %s", w[1], got, w[2])
		}
	case "request": // expect request STATE [CODE]: how the latest request ended
		if s.request == nil {
			s.fail("no request sent")
		}
		select {
		case <-s.request.Done():
		default:
			s.fail("the request has not ended (line %s)", st.State)
		}
		res := s.request.Result()
		if res.State != w[1] || (len(w) > 2 && strconv.Itoa(res.Code) != w[2]) {
			s.fail("request ended %s %d (%s), want %s", res.State, res.Code, res.Reason, strings.Join(w[1:], " "))
		}
	case "order": // expect order SERVER M1 M2 ...: the methods the server saw, in order
		var got []string
		for _, r := range s.net.Requests(s.eps[s.server(w[1])]) {
			if r.Delivered && (len(got) == 0 || got[len(got)-1] != r.Method) {
				got = append(got, r.Method)
			}
		}
		if !slices.Equal(got, w[2:]) {
			s.fail("%s saw %v, want %v", w[1], got, w[2:])
		}
	case "call": // expect call STATE [CODE] | expect call server NAME | expect call reason TEXT
		if s.call == nil {
			s.fail("no call placed")
		}
		info := s.call.Info()
		switch w[1] {
		case "server":
			if got := serverNames[info.Server-1]; len(w) != 3 || got != w[2] {
				s.fail("the call goes through %s, want %s", got, strings.Join(w[2:], " "))
			}
		case "reason":
			if want := strings.Join(w[2:], " "); !strings.Contains(info.Reason, want) {
				s.fail("the call's reason %q lacks %q", info.Reason, want)
			}
		default:
			if info.State != w[1] || (len(w) > 2 && strconv.Itoa(info.Code) != w[2]) {
				s.fail("the call is %s %d (%s), want %s", info.State, info.Code, info.Reason, strings.Join(w[1:], " "))
			}
		}
	case "farend": // expect farend STATE | expect farend log "M via SERVER" ...
		c := s.lastFarCall()
		if w[1] != "log" {
			if c.State != w[1] {
				s.fail("the far end's call is %s, want %s (log %q)", c.State, w[1], c.Log)
			}
			return
		}
		// The entries name servers; the log names endpoints.
		want := strings.Split(strings.Join(w[2:], " "), ",")
		var got []string
		for _, e := range c.Log {
			for i, ep := range s.eps {
				e = strings.ReplaceAll(e, "via "+ep.String(), "via "+serverNames[i])
			}
			got = append(got, e)
		}
		for i := range want {
			want[i] = strings.TrimSpace(want[i])
		}
		if !slices.Equal(got, want) {
			s.fail("the far end's log is %q, want %q", got, want)
		}
	case "routes": // expect routes SERVER METHOD none|SERVER...: the Route of the last such request
		if len(w) < 4 {
			s.fail("expect routes SERVER METHOD none|SERVER...")
		}
		rs := s.requests(w[1], w[2])
		if len(rs) == 0 {
			s.fail("%s got no %s", w[1], w[2])
		}
		var got []string
		for _, r := range rs[len(rs)-1].Route {
			name := r
			for i, ep := range s.eps {
				if strings.Contains(r, ep.Addr()) {
					name = serverNames[i]
				}
			}
			got = append(got, name)
		}
		want := w[3:]
		if len(want) == 1 && want[0] == "none" {
			want = nil
		}
		if !slices.Equal(got, want) {
			s.fail("the last %s to %s had Route %v, want %v", w[2], w[1], got, want)
		}
	case "registrar": // expect registrar HOST: the registrar behind the proxies the status names (R22)
		if len(w) != 2 || !strings.HasPrefix(st.Registrar, w[1]+" ") {
			s.fail("the status names the registrar %q, want %s", st.Registrar, strings.Join(w[1:], " "))
		}
	case "ruri": // expect ruri SERVER METHOD URI: the Request-URI of the last such request
		if len(w) != 4 {
			s.fail("expect ruri SERVER METHOD URI")
		}
		rs := s.requests(w[1], w[2])
		if len(rs) == 0 {
			s.fail("%s got no %s", w[1], w[2])
		}
		if got := rs[len(rs)-1].Request.Recipient.String(); got != w[3] {
			s.fail("the last %s to %s named %s, want %s", w[2], w[1], got, w[3])
		}
	case "binding": // expect binding SERVER STATE: in concurrent mode (R17)
		if len(w) != 3 {
			s.fail("expect binding SERVER STATE")
		}
		addr := s.eps[s.server(w[1])].String()
		i := slices.IndexFunc(st.Bindings, func(b runtime.BindingStatus) bool { return b.ServerAddr == addr })
		if i < 0 || st.Bindings[i].State != w[2] {
			s.fail("binding on %s: %+v, want %s", w[1], st.Bindings, w[2])
		}
	case "callids":
		// expect callids SERVER N: the REGISTERs the server got used N Call-IDs
		if len(w) != 3 {
			s.fail("expect callids SERVER N")
		}
		ids := map[string]bool{}
		for _, r := range s.requests(w[1], "REGISTER") {
			ids[r.CallID] = true
		}
		if got := strconv.Itoa(len(ids)); got != w[2] {
			s.fail("%s saw %s Call-IDs, want %s", w[1], got, w[2])
		}
	default:
		s.fail("unknown expectation %q", w[0])
	}
}

// await runs time until a transition on the event, one after those an
// earlier await saw, and fails when none comes within the bound (2 hours
// unless "within D" says) or nothing more can happen.
func (s *scenario) await(w []string) {
	s.t.Helper()
	if len(w) != 1 && (len(w) != 3 || w[1] != "within") {
		s.fail("await EVENT [within DURATION]")
	}
	limit := s.now() + 2*time.Hour
	if len(w) == 3 {
		limit = s.now() + s.at(w[2])
	}
	s.ensureLine()
	for {
		for i := s.awaited; i < len(s.history); i++ {
			if s.history[i].Event == w[0] {
				s.awaited = i + 1
				return
			}
		}
		if !s.clock.AdvanceToNext() {
			s.fail("no transition on %s: nothing more happens (at %v; transitions: %v)", w[0], s.now(), s.history[s.awaited:])
		}
		if s.now() > limit {
			s.fail("no transition on %s by %v (transitions: %v)", w[0], limit, s.history[s.awaited:])
		}
	}
}

// lastFarCall is the far end's latest call.
func (s *scenario) lastFarCall() runtimetest.SimCall {
	calls := s.net.Calls()
	if len(calls) == 0 {
		s.fail("the far end has no call")
	}
	return calls[len(calls)-1]
}

// last returns the index of the latest transition on event, or -1.
func (s *scenario) last(event string) int {
	for i := len(s.history) - 1; i >= 0; i-- {
		if s.history[i].Event == event {
			return i
		}
	}
	return -1
}

// requests returns what the server saw: requests of method delivered to it.
func (s *scenario) requests(server, method string) []runtimetest.SimRequest {
	var out []runtimetest.SimRequest
	for _, r := range s.net.Requests(s.eps[s.server(server)]) {
		if r.Method == method && r.Delivered {
			out = append(out, r)
		}
	}
	return out
}
