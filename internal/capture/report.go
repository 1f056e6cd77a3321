package capture

import (
	"cmp"
	"fmt"
	"io"
	"slices"
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
	Servers   []ServerSummary
	Lines     []LineSummary
	Others    []Endpoint `json:",omitempty"` // endpoints that are not the phone -phone names: listed, not judged
	Verdicts  []Verdict
	Problems  []Problem `json:",omitempty"`
}

// ServerSummary is what the capture shows of one server's availability:
// the phone's transactions with it, those it answered, and each time it
// was found unavailable.
type ServerSummary struct {
	Addr         string
	Transactions int
	Answered     int
	Unavailable  []Unavailability `json:",omitempty"`
}

// Unavailability is one time the server failed a request of the phone.
type Unavailability struct {
	At    time.Duration // since the first frame
	Frame int           // the answer or fault; 0 when no answer came
	What  string
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
		Verdicts: a.Check(), Problems: a.Problems, Others: a.Others}
	for _, s := range a.Servers {
		r.Servers = append(r.Servers, ServerSummary{Addr: s.String()})
	}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			if t.Method == "ACK" {
				continue
			}
			sv := &r.Servers[t.Server]
			sv.Transactions++
			if len(t.Answers) > 0 {
				sv.Answered++
			}
			if o := a.outcome(t); failed(o) {
				what := o.What
				if o.Kind == "unavailable" && t.Final != nil {
					what = fmt.Sprintf("%d to a %s", t.Final.Code, t.Method)
				} else if o.Kind == "timeout" {
					what = fmt.Sprintf("%s unanswered for %v", t.Method, a.Settings.bounds().BudgetOf(t.Method, t.Server))
				}
				sv.Unavailable = append(sv.Unavailable, Unavailability{At: o.At.Sub(a.Begin), Frame: o.Frame, What: what})
			}
		}
	}
	for i := range r.Servers {
		slices.SortFunc(r.Servers[i].Unavailable, func(x, y Unavailability) int { return cmp.Compare(x.At, y.At) })
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
		fmt.Fprintf(w, "  server %d: %s (%s): %d transactions, %d answered", i+1, s.Addr, role, s.Transactions, s.Answered)
		for k, u := range s.Unavailable {
			if k == 0 {
				fmt.Fprint(w, "; unavailable at")
			}
			if k == maxShown {
				fmt.Fprintf(w, " ... (%d in all)", len(s.Unavailable))
				break
			}
			frame := ""
			if u.Frame > 0 {
				frame = fmt.Sprintf(", frame %d", u.Frame)
			}
			fmt.Fprintf(w, " %v (%s%s)", u.At.Round(time.Millisecond), u.What, frame)
		}
		fmt.Fprintln(w)
	}
	for _, l := range r.Lines {
		fmt.Fprintf(w, "  line %s: %d transactions, %d registrations, %d failback probes\n", l.AOR, l.Transactions, l.Registrations, l.Probes)
	}
	for i, e := range r.Others {
		if i == maxShown {
			fmt.Fprintf(w, "  ... and %d more endpoints not judged\n", len(r.Others)-maxShown)
			break
		}
		fmt.Fprintf(w, "  not judged (not the phone): %s from %s, %d requests\n", e.AOR, e.Addr, e.Requests)
	}
	if len(r.Lines) == 0 {
		if len(r.Others) > 0 {
			fmt.Fprintln(w, "  no request of the phone -phone names to the servers")
		} else {
			fmt.Fprintln(w, "  no request of a phone to the servers: are -servers the servers' addresses and ports?")
		}
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
