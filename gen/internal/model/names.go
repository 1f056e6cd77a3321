package model

import "strings"

// How model names are spelt in the generated Go and C.

// GoName maps a model name to an exported Go identifier: resp.503 → Resp503,
// primary_registered → PrimaryRegistered.
func GoName(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '_' || r == '.' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// CName is a model name as a C identifier: snake case, a dot as an
// underscore, and a trailing underscore on a C keyword.
func CName(name string) string {
	n := strings.ReplaceAll(name, ".", "_")
	if cKeywords[n] {
		n += "_"
	}
	return n
}

// CConst is the C constant of a state, event, timer or action of machine:
// MACHINE_KIND_NAME.
func CConst(machine, kind, name string) string {
	return strings.ToUpper(CName(machine) + "_" + kind + "_" + strings.ReplaceAll(name, ".", "_"))
}

// CFunctions are the functions every generated C machine has,
// <machine>_<name>: a derived value of that name would meet one.
var CFunctions = map[string]bool{"init": true, "validate": true, "start": true, "fire": true, "allowed": true,
	"check_always": true, "timer_event": true, "state_name": true, "event_name": true, "timer_name": true,
	"action_name": true, "branch_name": true}

var cKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`auto break case char const continue default do double else enum extern
		float for goto if inline int long register restrict return short signed sizeof static struct
		switch typedef union unsigned void volatile while bool true false`) {
		cKeywords[k] = true
	}
}
