package capture

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a capture's check, as the terminal and -json show it.
type Report struct {
	Capture   string
	Frames    int // UDP, TCP and ICMP unreachable frames
	Messages  int // SIP messages
	Duration  time.Duration
	Transport string
	Servers   []string
	Lines     []LineSummary
	Verdicts  []Verdict
	Problems  []Problem `json:",omitempty"`
}

// LineSummary is what the capture shows of one line.
type LineSummary struct {
	AOR           string
	Transactions  int
	Registrations int
	Probes        int
}

// Report checks the capture and gathers the report.
func (a *Analysis) Report(name string) Report {
	r := Report{Capture: name, Frames: a.Packets, Messages: a.Messages, Duration: a.End.Sub(a.Begin), Transport: a.Transports,
		Verdicts: a.Check(), Problems: a.Problems}
	for _, s := range a.Servers {
		r.Servers = append(r.Servers, s.String())
	}
	for _, l := range a.Lines {
		s := LineSummary{AOR: l.AOR, Transactions: len(l.Txns), Registrations: len(l.Bindings)}
		for _, t := range l.Txns {
			if t.Probe {
				s.Probes++
			}
		}
		r.Lines = append(r.Lines, s)
	}
	return r
}

// Violated reports whether any invariant is violated.
func (r Report) Violated() bool {
	for _, v := range r.Verdicts {
		if v.Status == Violated {
			return true
		}
	}
	return false
}

// maxShown bounds the findings and problems printed of each kind; -json
// has them all.
const maxShown = 10

// Write prints the report for a reader at a terminal.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%s: %d frames, %d SIP messages over %v (%s)\n", r.Capture, r.Frames, r.Messages, r.Duration.Round(time.Millisecond), r.Transport)
	for i, s := range r.Servers {
		role := "backup"
		if i == 0 {
			role = "primary"
		}
		fmt.Fprintf(w, "  server %d: %s (%s)\n", i+1, s, role)
	}
	for _, l := range r.Lines {
		fmt.Fprintf(w, "  line %s: %d transactions, %d registrations, %d failback probes\n", l.AOR, l.Transactions, l.Registrations, l.Probes)
	}
	if len(r.Lines) == 0 {
		fmt.Fprintln(w, "  no request of a phone to the servers: are -servers the servers' addresses and ports?")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range r.Verdicts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.ID, strings.ToUpper(v.Status), v.Title, v.Why)
	}
	tw.Flush()
	for _, v := range r.Verdicts {
		for i, f := range v.Findings {
			if i == maxShown {
				fmt.Fprintf(w, "    ... and %d more (-json has them all)\n", len(v.Findings)-maxShown)
				break
			}
			fmt.Fprintf(w, "  %s at %v, frames %s: %s: %s\n", v.ID, f.At.Round(time.Millisecond), joinInts(f.Frames), f.Line, f.Msg)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\n%d frames could not be read as SIP:\n", len(r.Problems))
		for i, p := range r.Problems {
			if i == maxShown {
				fmt.Fprintf(w, "  ... and %d more\n", len(r.Problems)-maxShown)
				break
			}
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
