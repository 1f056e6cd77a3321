// Package gen compiles the YAML models in model/ into Go code in fsm/ and
// into diagrams and docs in docs/.
//
// A model is parsed with the position of every element and checked as a
// whole; every problem is reported as path:line:col: message, sorted, and
// nothing is written while any remains. Output is deterministic: the same
// model gives the same bytes.
//
// The usual way in is go generate ./... (the //go:generate line in
// fsm/doc.go) or the program:
//
//	go run ./cmd/sipfailover gen          # regenerate
//	go run ./cmd/sipfailover gen -check   # print a diff, exit 1 if out of date
//	go run ./cmd/sipfailover check model/line.yaml
//
// From Go:
//
//	res, err := gen.Generate(gen.Options{Root: "."})
//	if err != nil {
//		log.Fatal(err) // a *gen.Diagnostics lists every problem
//	}
//	err = gen.Write(gen.Options{Root: "."}, res)
package gen
