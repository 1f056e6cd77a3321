package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
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
