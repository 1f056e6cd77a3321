// Command sipfailover is the SIP server redundancy toolkit's program.
//
//	sipfailover demo                  play failover and failback on loopback
//	sipfailover run -config FILE      the agent for real servers
//	sipfailover status [-json]        the lines of a running agent
//	sipfailover call [-line N] NUMBER|URI  place a call through a running agent
//	sipfailover hangup [ID]           end a call (or every call) of a running agent
//	sipfailover fleet -config FILE    many lines from one template, and a report
//	sipfailover hash-password         the bcrypt hash of a password read from stdin, for web.password_hash
//	sipfailover gen [-check]          regenerate fsm/ and docs/ from model/
//	sipfailover check MODEL.yaml...   validate models only
//	sipfailover verify                every reachable state of the models checked with SPIN
//	sipfailover verify-capture FILE   any phone checked against the invariants from a packet capture
//	sipfailover lab -user U -password P  a phone's failover tested against servers the lab breaks
//	sipfailover version               the build: module version and commit
//
// See README.md for the rest.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/sipfailover/sipfailover/cmd/sipfailover/web"
	"github.com/sipfailover/sipfailover/gen"
)

const usage = `usage: sipfailover <command> [arguments]

commands:
  demo                  play failover and failback against two embedded
                        registrars on loopback, and print a timeline
  run -config FILE      register the configured lines on real servers; SIGHUP
                        reloads the settings, SIGINT/SIGTERM de-registers
  status [-json]        print the lines of a running agent, and their calls
  calls [-json]         list the calls of a running agent: ID, line, far end,
                        state, server and age
  call [-line N] NUMBER place a call from line N of a running agent (a number,
                        user@host or sip: URI) and wait for the answer
  hangup [ID]           end a call of a running agent (every call without ID)
  event [-line N] EVENT deliver a user's event of the line model to a line of a
                        running agent: user.register re-registers it at once
  fleet -config FILE -lines N
                        run N lines made from the settings' first line against
                        its servers, and report failovers, failbacks and load
  hash-password         read a password on standard input and print its bcrypt
                        hash, for the settings' web.password_hash
  gen [-check]          regenerate fsm/*_gen.go, docs/ and verify/ from model/*.yaml;
                        with -check, write nothing and print a diff if out of date
  check MODEL.yaml...   validate models and print every problem as file:line:col
  verify [-model M]     check every reachable state of the models against their
                        invariants with the SPIN model checker (verify/*.pml)
  verify-capture FILE -servers ADDR:PORT,ADDR:PORT
                        check any phone against the invariants from a pcap or
                        pcapng capture of its SIP traffic, with a timeline picture
  lab -user U -password P
                        play a primary and a backup server for a phone under
                        test, break the primary in every way the line model
                        knows, and judge the phone's failover and failback
  version               print the build: module version, commit, Go version

Every command takes -h.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// hashPasswordCmd prints the bcrypt hash of the first line of in, or,
// when in is a terminal, of a password typed there without echo.
func hashPasswordCmd(in *os.File, stdout, stderr io.Writer) int {
	var password string
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(stderr, "password (not shown): ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintln(stderr, "hash-password:", err)
			return 1
		}
		password = string(b)
	} else {
		line, _ := bufio.NewReader(in).ReadString('\n') // a last line without a newline counts too
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		fmt.Fprintln(stderr, "hash-password: give the password on standard input, on one line")
		return 2
	}
	hash, err := web.HashPassword(password)
	if err != nil {
		fmt.Fprintln(stderr, "hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return demo(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "call":
		return callCmd(args[1:], stdout, stderr)
	case "hangup":
		return hangupCmd(args[1:], stdout, stderr)
	case "calls":
		return callsCmd(args[1:], stdout, stderr)
	case "event":
		return eventCmd(args[1:], stdout, stderr)
	case "fleet":
		return fleetCmd(args[1:], stdout, stderr)
	case "verify":
		return verifyCmd(args[1:], stdout, stderr)
	case "verify-capture":
		return verifyCaptureCmd(args[1:], stdout, stderr)
	case "lab":
		return labCmd(args[1:], stdout, stderr)
	case "hash-password":
		fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
		if code, ok := parse(fs, args[1:], "hash-password < FILE  (or type it: it is not echoed)", 0, 0, stdout, stderr); !ok {
			return code
		}
		return hashPasswordCmd(os.Stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return 0
	case "gen", "check":
		return gen.Main(args[0], args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sipfailover: unknown command %q\n\n%s", args[0], usage)
	return 2
}
