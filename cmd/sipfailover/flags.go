package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
)

// about says in a line what each command does, under its usage line.
var about = map[string]string{
	"demo":           "Plays failover and failback against two embedded registrars on loopback, and prints a timeline.",
	"run":            "Registers the configured lines on real servers; SIGHUP reloads the settings, SIGINT/SIGTERM de-registers.",
	"status":         "Prints the lines of a running agent, and the calls they have.",
	"calls":          "Lists the calls of a running agent that have not ended: each with its line, far end, state, server and age, and the ID hangup takes.",
	"call":           "Places a call from a line of a running agent and waits for the answer.",
	"hangup":         "Ends calls of a running agent: those named, or every call without an ID.",
	"event":          "Delivers a user's event of model/line.yaml (user.register, user.unregister, and any user.* event added to the model) to a line of a running agent, as a phone's menu does, and prints how the line stands then.",
	"fleet":          "Runs many lines made from the settings' first line against its servers, and reports failovers, failbacks and load. Line i registers as -user-pattern and -password-pattern of i: accounts the servers must have (interop/kam fleetdb makes them for the interop servers).",
	"verify":         "Checks every reachable state of the models against their invariants with the SPIN model checker.",
	"verify-capture": "Checks any phone against the invariants from a pcap or pcapng capture of its SIP traffic.",
	"hash-password":  "Reads a password on standard input and prints its bcrypt hash, for the settings' web.password_hash.",
}

// usageLine is "usage: sipfailover " + synopsis, with every flag of fs the
// synopsis does not name added ([-name ARG]), wrapped at 80 columns: the
// usage is complete whatever the synopsis lists. A flag whose usage is
// "the same as -other" is another name of one listed.
func usageLine(fs *flag.FlagSet, synopsis string) string {
	words := []string{"usage: sipfailover " + synopsis}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "the same as -") || names(synopsis, f.Name) {
			return
		}
		arg, _ := flag.UnquoteUsage(f)
		switch arg {
		case "":
			words = append(words, fmt.Sprintf("[-%s]", f.Name))
		default:
			words = append(words, fmt.Sprintf("[-%s %s]", f.Name, cmp.Or(argNames[arg], strings.ToUpper(arg))))
		}
	})
	return wrap(words, strings.Repeat(" ", len("usage: sipfailover ")+len(fs.Name())+1))
}

// argNames are the placeholders of the usage line for the flags' types.
var argNames = map[string]string{"duration": "D", "int": "N", "uint": "N", "float": "X", "string": "VALUE"}

// wrap joins words with spaces into lines of at most 80 columns (a word
// longer than that has a line of its own), the lines after the first
// beginning with indent.
func wrap(words []string, indent string) string {
	var b strings.Builder
	col := 0
	for i, w := range words {
		switch {
		case i == 0:
		case col+1+len(w) > 80:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteString(" ")
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// names says whether synopsis names flag -name.
func names(synopsis, name string) bool {
	return regexp.MustCompile(`(^|[\s\[{|])-` + regexp.QuoteMeta(name) + `($|[\s\]}|])`).MatchString(synopsis)
}

// parse parses args into fs, whose usage is usageLine(fs, synopsis) and
// what the command does. -h prints the usage on stdout (exit 0); a bad
// flag, fewer than minArgs or more than maxArgs arguments (-1: any) print
// the problem and the usage on stderr (exit 2). ok says whether to go on.
func parse(fs *flag.FlagSet, args []string, synopsis string, minArgs, maxArgs int, stdout, stderr io.Writer) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usageLine(fs, synopsis))
		if a := about[fs.Name()]; a != "" {
			fmt.Fprintf(fs.Output(), "\n%s\n\n", wrap(strings.Fields(a), ""))
		}
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

// writeFile writes a file with write, and says whether all of it was
// written.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pictureFormat is the format of a -picture file by its name: svg or png
// ("" for no file).
func pictureFormat(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "svg" && format != "png" {
		return "", fmt.Errorf("-picture %s: an .svg or .png file", path)
	}
	return format, nil
}
