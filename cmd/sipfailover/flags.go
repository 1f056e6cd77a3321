package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// parse parses args into fs, whose usage line is "sipfailover " + synopsis.
// -h prints the usage on stdout (exit 0); a bad flag, fewer than minArgs
// or more than maxArgs arguments (-1: any) print the problem and the usage
// on stderr (exit 2). ok says whether to go on.
func parse(fs *flag.FlagSet, args []string, synopsis string, minArgs, maxArgs int, stdout, stderr io.Writer) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sipfailover %s\n", synopsis)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard) // the problems are printed below, once
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
	case fs.NArg() < minArgs:
		fmt.Fprintf(stderr, "%s: missing argument\n", fs.Name())
	case maxArgs >= 0 && fs.NArg() > maxArgs:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(maxArgs))
	default:
		fs.SetOutput(stderr)
		return 0, true
	}
	fs.SetOutput(stderr)
	fs.Usage()
	return 2, false
}

// agentAddr defines -status-addr, the address of a running agent's status
// port, as `run` names it, with -addr as another name for it.
func agentAddr(fs *flag.FlagSet) *string {
	addr := new(string)
	fs.StringVar(addr, "status-addr", defaultStatusAddr, "the running agent's -status-addr")
	fs.StringVar(addr, "addr", defaultStatusAddr, "the same as -status-addr")
	return addr
}

// noAgent says that no agent answers at addr, and what to try.
func noAgent(addr string, err error) error {
	return fmt.Errorf("no agent answering at %s (start one with `sipfailover run`, or give the -status-addr it runs with): %w", addr, err)
}

// releaseVersion is the version a release build names itself with:
//
//	go build -ldflags "-X main.releaseVersion=v0.4.0" ./cmd/sipfailover
//
// Without it the module's version is printed, "(devel)" in a checkout.
var releaseVersion string

// version says which build this is: its version, the commit it was built
// from, as the Go toolchain recorded them, and the Go version.
func version() string {
	info, ok := debug.ReadBuildInfo()
	return versionOf(info, ok, releaseVersion)
}

// versionOf is version with the build information and the release version
// given: a build without its VCS stamp (-buildvcs=false, as some build
// machines set it) says so rather than print no commit at all.
func versionOf(info *debug.BuildInfo, ok bool, release string) string {
	if !ok {
		return cmp.Or(release, "sipfailover") + " (no build information)"
	}
	v := cmp.Or(release, info.Main.Version, "(devel)")
	var commit, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sipfailover %s", v)
	if commit != "" {
		fmt.Fprintf(&b, " (commit %.12s %s%s)", commit, at, dirty)
	} else {
		b.WriteString(" (unknown commit: built without version control information)")
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}
