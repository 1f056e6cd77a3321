package lab

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/internal/labserver"
)

// A plan file lists one's own cases, in the order they run:
//
//	cases:
//	  - fault: 503            # kill, freeze, 503, 503-retry-after, drop, slow or reset
//	    trigger: timers       # timers (default), farcall, call or hangup
//	  - name: all down        # a name of one's own (default: FAULT/TRIGGER)
//	    fault: kill
//	    both: true            # the backup goes down too
//
// ParsePlan reads one, for transport ("udp" or "tcp"). Every problem is
// reported, each with its file:line:col, and none is half taken: the plan
// is returned only when it has none.
func ParsePlan(name string, data []byte, transport string) ([]Case, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var probs []string
	bad := func(n *yaml.Node, format string, a ...any) {
		probs = append(probs, fmt.Sprintf("%s:%d:%d: %s", name, n.Line, n.Column, fmt.Sprintf(format, a...)))
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: give a list of cases under cases:", name)
	}
	root := doc.Content[0]
	var list *yaml.Node
	if root.Kind != yaml.MappingNode {
		bad(root, "a plan is a mapping with cases:")
	} else {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			switch k.Value {
			case "cases":
				list = v
			default:
				bad(k, "unknown key %q (a plan has cases:)", k.Value)
			}
		}
	}
	switch {
	case list == nil && root.Kind == yaml.MappingNode:
		bad(root, "no cases: give a list of cases under cases:")
	case list != nil && (list.Kind != yaml.SequenceNode || len(list.Content) == 0):
		bad(list, "cases: a list of one case or more")
	}
	var plan []Case
	names := map[string]*yaml.Node{}
	if list != nil && list.Kind == yaml.SequenceNode {
		for _, item := range list.Content {
			c, ok := parseCase(item, transport, bad)
			if !ok {
				continue
			}
			if first, dup := names[c.Name]; dup {
				bad(item, "case %q again (first at line %d): give it a name of its own", c.Name, first.Line)
				continue
			}
			names[c.Name] = item
			plan = append(plan, c)
		}
	}
	if len(probs) > 0 {
		return nil, errors.New(strings.Join(probs, "\n"))
	}
	return plan, nil
}

// parseCase reads one case of a plan file.
func parseCase(item *yaml.Node, transport string, bad func(*yaml.Node, string, ...any)) (Case, bool) {
	if item.Kind != yaml.MappingNode {
		bad(item, "a case is a mapping: fault:, and trigger:, name: or both: as needed")
		return Case{}, false
	}
	c := Case{Trigger: Timers}
	ok := true
	var faultAt *yaml.Node
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		switch k.Value {
		case "name":
			if c.Name = strings.TrimSpace(v.Value); v.Kind != yaml.ScalarNode || c.Name == "" {
				bad(v, "name: a word or more")
				ok = false
			}
		case "fault":
			f, err := labserver.ParseFault(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				bad(v, "fault %q: one of %s", v.Value, faultNames())
				ok = false
			}
			c.Fault, faultAt = f, v
		case "trigger":
			t := Trigger(v.Value)
			if !slices.Contains([]Trigger{Timers, FarCall, Dial, Hangup}, t) {
				bad(v, "trigger %q: timers, farcall, call or hangup", v.Value)
				ok = false
			}
			c.Trigger = t
		case "both":
			switch v.Value {
			case "true":
				c.Both = true
			case "false":
			default:
				bad(v, "both %q: true or false", v.Value)
				ok = false
			}
		default:
			bad(k, "unknown key %q (a case has name, fault, trigger and both)", k.Value)
			ok = false
		}
	}
	if faultAt == nil {
		bad(item, "no fault: give one of %s", faultNames())
		return Case{}, false
	}
	if !ok {
		return Case{}, false
	}
	c.Stays = c.Fault == labserver.Slow || c.Fault == labserver.Reset
	switch {
	case c.Fault == labserver.Slow && (c.Trigger != Timers || c.Both):
		bad(faultAt, "slow: a late answer within the budget is judged with trigger timers, one server at a time")
		return Case{}, false
	case c.Fault == labserver.Reset && (c.Trigger != Hangup || c.Both || transport != "tcp"):
		bad(faultAt, "reset: a TCP connection reset is judged with trigger hangup, one server at a time, over TCP")
		return Case{}, false
	case c.Both && c.Trigger != Timers:
		bad(faultAt, "both: every server down is judged with trigger timers: no call can be made")
		return Case{}, false
	}
	if c.Name == "" {
		c.Name = string(c.Fault) + "/" + string(c.Trigger)
		if c.Both {
			c.Name = string(c.Fault) + "/both"
		}
	}
	c.Events = eventsOf(c, transport)
	return c, true
}

// faultNames lists the faults for a message.
func faultNames() string {
	var names []string
	for _, f := range labserver.Faults {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// eventsOf are the line model's events a case plays: those the fault
// raises with its trigger (raisedBy), and the ones of the cases of the
// default plan that are not in it.
func eventsOf(c Case, transport string) []string {
	switch {
	case c.Fault == labserver.Reset:
		return []string{fsm.LineEventTransportClosed.String()}
	case c.Stays:
		return []string{"resp.2xx"}
	case c.Both:
		return []string{"timer.backoff"}
	case c.Trigger == FarCall:
		return []string{"incoming.invite", "remote.bye"}
	}
	var out []string
	for _, e := range slices.Sorted(maps.Keys(raisedBy)) {
		for _, r := range raisedBy[e] {
			if r.fault == c.Fault && r.trigger == c.Trigger && (r.any || r.tcp == (transport == "tcp")) && !slices.Contains(out, e.String()) {
				out = append(out, e.String())
			}
		}
	}
	if len(out) == 0 && c.Trigger != Timers {
		out = []string{fsm.LineEventRequestUnavailable.String()}
	}
	return out
}
