package lab

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sipfailover/sipfailover/internal/capture"
)

// Write prints the cases as a table, then the checker's report on the
// whole capture.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tVERDICT\tFAILOVER (BOUND)\tFAILBACK (BOUND)\tEVENTS OF THE LINE MODEL\tWHY")
	for _, c := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Case.Name, strings.ToUpper(c.Verdict), measured(c.Failover, c.FailoverBound),
			measured(c.Failback, c.FailbackBound), strings.Join(c.Case.Events, " "), c.Why)
	}
	tw.Flush()
	if r.Unusable != "" {
		fmt.Fprintf(w, "\nthe run could not go on: %s\n", r.Unusable)
	}
	fmt.Fprintln(w)
	r.Capture.Write(w)
}

// measured is a time against its bound, "-" when not measured.
func measured(d, bound time.Duration) string {
	switch {
	case bound == 0:
		return "-"
	case d == 0:
		return fmt.Sprintf("- (%v)", bound.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v (%v)", d.Round(time.Millisecond), bound.Round(time.Millisecond))
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the run as a JUnit XML test suite, for CI: a case for
// each of the plan's (violated: a failure; not run: skipped) and one for
// each invariant (not decidable: skipped).
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "sipfailover lab"}
	var total time.Duration
	for _, c := range r.Results {
		d := c.To - c.From
		total += d
		jc := junitCase{Name: c.Case.Name, ClassName: "lab.cases", Time: seconds(d)}
		switch c.Verdict {
		case Violated:
			var text strings.Builder
			for _, f := range c.Findings {
				fmt.Fprintf(&text, "%v: %s (frames %v)\n", f.At.Round(time.Millisecond), f.Msg, f.Frames)
			}
			jc.Failure = &junitMessage{Message: c.Why, Text: text.String()}
		case NotRun:
			jc.Skipped = &junitMessage{Message: c.Why}
		}
		s.Cases = append(s.Cases, jc)
	}
	for _, v := range r.Capture.Verdicts {
		jc := junitCase{Name: v.ID + " " + v.Title, ClassName: "lab.invariants", Time: "0"}
		switch v.Status {
		case capture.Violated:
			var text strings.Builder
			for _, f := range v.Findings {
				fmt.Fprintf(&text, "%v: %s (frames %v)\n", f.At.Round(time.Millisecond), f.Msg, f.Frames)
			}
			jc.Failure = &junitMessage{Message: v.Why, Text: text.String()}
		case capture.Held:
		default:
			jc.Skipped = &junitMessage{Message: v.Why}
		}
		s.Cases = append(s.Cases, jc)
	}
	if r.Unusable != "" {
		s.Cases = append(s.Cases, junitCase{Name: "the run", ClassName: "lab", Time: "0", Failure: &junitMessage{Message: r.Unusable}})
	}
	for _, c := range s.Cases {
		s.Tests++
		if c.Failure != nil {
			s.Failures++
		}
		if c.Skipped != nil {
			s.Skipped++
		}
	}
	s.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
