package model

import (
	"math"
	"slices"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/expr"
)

// verify checks the verify section and what invariants say of the
// environment: every name exists, an event answers one request at most, a
// domain stays within its param's bounds.
func (c *checker) verify() {
	v := c.m.Verify
	if v.Requires != nil {
		c.want(v.Requires, c.env, expr.Bool, "verify.requires")
	}
	answered := map[string]string{}
	for _, a := range v.Answers {
		for _, r := range append(slices.Clone(a.After), a.Ends...) {
			lookup(c, "action", r, c.m.Actions, func(x *Action) string { return x.Name })
		}
		if a.Timer != nil {
			c.timer(*a.Timer)
		}
		for _, r := range a.Events {
			e, ok := c.event(r)
			switch {
			case !ok:
			case e.Timer != nil:
				c.errs.Errorf(r.Pos, "answers %s: %s is a timer's event; the machine arms its timers itself", a.Name, r.Name)
			case answered[r.Name] != "":
				c.errs.Errorf(r.Pos, "answers %s: %s already answers %s", a.Name, r.Name, answered[r.Name])
			default:
				answered[r.Name] = a.Name
			}
		}
	}
	param := func(name string) *Param {
		for _, p := range c.m.Params {
			if p.Name == name {
				return p
			}
		}
		r := v.Keys[name]
		c.errs.Errorf(r.Pos, "unknown param %q%s", name, diag.Suggest(name, paramNames(c.m)))
		return nil
	}
	for _, name := range sortedKeys(v.Domains) {
		p := param(name)
		if p == nil {
			continue
		}
		lo, hi := int64(0), int64(1)
		switch p.Type {
		case expr.Duration:
			c.errs.Errorf(v.Keys[name].Pos, "domain of %s: a duration is not a value the model checker tracks", name)
			continue
		case expr.Int:
			lo, hi = math.MinInt32, math.MaxInt32
			if p.Min != nil {
				lo = *p.Min
			}
			if p.Max != nil {
				hi = *p.Max
			}
		}
		for _, x := range v.Domains[name] {
			if x < lo || x > hi {
				c.errs.Errorf(v.Keys[name].Pos, "domain of %s: %d is outside [%d, %d]", name, x, lo, hi)
			}
		}
	}
	for _, name := range sortedKeys(v.Varies) {
		if param(name) == nil {
			continue
		}
		for _, r := range v.Varies[name] {
			if r.Name != "event" {
				lookup(c, "action", r, c.m.Actions, func(x *Action) string { return x.Name })
			}
		}
	}
	for _, inv := range c.m.Invariants {
		if lt := inv.LeadsTo; lt != nil {
			for _, r := range append(slices.Clone(lt.Env), lt.Recurring...) {
				c.event(r)
			}
			for _, name := range sortedKeys(lt.Fix) {
				if !slices.ContainsFunc(c.m.Params, func(p *Param) bool { return p.Name == name }) {
					r := lt.FixKeys[name]
					c.errs.Errorf(r.Pos, "invariant %s: fix: unknown param %q%s", inv.ID.Name, name, diag.Suggest(name, paramNames(c.m)))
				}
			}
		}
		if o := inv.Only; o != nil {
			for _, r := range append(slices.Clone(o.From), o.To...) {
				c.state(r)
			}
			for _, r := range o.On {
				c.event(r)
			}
		}
	}
}

func paramNames(m *Model) []string {
	var out []string
	for _, p := range m.Params {
		out = append(out, p.Name)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
