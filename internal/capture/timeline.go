package capture

import (
	"fmt"
	"image/color"
	"io"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	red    = color.RGBA{R: 220, A: 255}
	green  = color.RGBA{G: 150, A: 255}
	orange = color.RGBA{R: 230, G: 140, A: 255}
	blue   = color.RGBA{B: 200, A: 255}
	purple = color.RGBA{R: 140, B: 200, A: 255}
	grey   = color.RGBA{R: 140, G: 140, B: 140, A: 255}
	black  = color.RGBA{A: 255}
)

// Picture draws the capture as a timeline in format (svg or png), 900
// pixels wide: a lane per server, the primary on top, with each request the
// phone sent it (a triangle, small dots for retransmissions), each answer
// (a circle: green 2xx, orange others) and each ICMP unreachable or reset
// (a cross); above them a lane per judged phone with where it was
// registered, a span per stay coloured by server; and each violation in
// red, a ring on its frames, a line across the lanes and its invariant and
// words below them. Outages, when given, are shaded on their servers'
// lanes with their words: the faults a lab put the servers in.
func (a *Analysis) Picture(out io.Writer, format string, verdicts []Verdict, outages ...Outage) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d SIP messages over %v", a.Messages, a.End.Sub(a.Begin).Round(time.Millisecond))
	p.X.Label.Text = "seconds since the first frame"
	n := len(a.Servers)
	lane := func(server int) float64 { return float64(n - server) }
	sec := func(t time.Time) float64 { return t.Sub(a.Begin).Seconds() }
	// A lane per judged phone above the servers: where it is registered.
	phoneLane := func(line int) float64 { return float64(n + 1 + line) }
	top := phoneLane(max(len(a.Lines), 1) - 1)

	var ticks []plot.Tick
	for k, s := range a.Servers {
		name := fmt.Sprintf("server %d %s", k+1, s)
		if k == 0 {
			name = fmt.Sprintf("primary %s", s)
		}
		ticks = append(ticks, plot.Tick{Value: lane(k), Label: name})
	}
	for i, l := range a.Lines {
		ticks = append(ticks, plot.Tick{Value: phoneLane(i), Label: l.AOR + " on"})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = -0.6, top+0.7

	// The outages: a pale red band on the server's lane, its words above.
	for _, o := range outages {
		to := o.To
		if to.IsZero() || to.After(a.End) {
			to = a.End
		}
		band, err := plotter.NewLine(plotter.XYs{{X: sec(o.From), Y: lane(o.Server)}, {X: sec(to), Y: lane(o.Server)}})
		if err != nil {
			return err
		}
		band.Color, band.Width = color.RGBA{R: 250, G: 200, B: 200, A: 255}, 22
		p.Add(band)
		p.Add(labelAt(sec(o.From), lane(o.Server)+0.3, o.What))
	}

	scatter := func(xy plotter.XYs, shape draw.GlyphDrawer, c color.Color, radius vg.Length) error {
		if len(xy) == 0 {
			return nil
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: radius, Shape: shape}
		p.Add(s)
		return nil
	}
	type marks struct {
		xy    plotter.XYs
		shape draw.GlyphDrawer
		color color.Color
		size  vg.Length
		label string
	}
	groups := []*marks{
		{shape: draw.TriangleGlyph{}, color: blue, size: 4, label: "REGISTER"},
		{shape: draw.TriangleGlyph{}, color: purple, size: 4, label: "failback probe"},
		{shape: draw.TriangleGlyph{}, color: green, size: 4, label: "INVITE, ACK, BYE"},
		{shape: draw.TriangleGlyph{}, color: grey, size: 4, label: "other request"},
		{shape: draw.CircleGlyph{}, color: grey, size: 1.5, label: "retransmission"},
		{shape: draw.CircleGlyph{}, color: green, size: 3, label: "2xx"},
		{shape: draw.CircleGlyph{}, color: orange, size: 3, label: "other answer"},
		{shape: draw.CrossGlyph{}, color: black, size: 4, label: "ICMP unreachable, reset"},
	}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			y := lane(t.Server)
			g := groups[3]
			switch {
			case t.Probe:
				g = groups[1]
			case t.Method == "REGISTER":
				g = groups[0]
			case t.Method == "INVITE" || t.Method == "ACK" || t.Method == "BYE":
				g = groups[2]
			}
			if t.Method != "SYN" {
				g.xy = append(g.xy, plotter.XY{X: sec(t.start()), Y: y + 0.12})
				for _, m := range t.Sends[1:] {
					groups[4].xy = append(groups[4].xy, plotter.XY{X: sec(m.At), Y: y + 0.12})
				}
			}
			for _, m := range t.Answers {
				if m.Code < 200 {
					continue
				}
				g := groups[6]
				if m.Code < 300 {
					g = groups[5]
				}
				g.xy = append(g.xy, plotter.XY{X: sec(m.At), Y: y - 0.12})
			}
			if t.Fault != nil {
				groups[7].xy = append(groups[7].xy, plotter.XY{X: sec(t.Fault.At), Y: y - 0.12})
			}
		}
	}
	for _, g := range groups {
		if err := scatter(g.xy, g.shape, g.color, g.size); err != nil {
			return err
		}
		if len(g.xy) > 0 {
			s, _ := plotter.NewScatter(g.xy[:1])
			s.GlyphStyle = draw.GlyphStyle{Color: g.color, Radius: g.size, Shape: g.shape}
			p.Legend.Add(g.label, s)
		}
	}

	// Where each phone is registered, as the checks read it (the newest
	// binding it holds, while live): a span per stay, coloured by server,
	// its number where it begins.
	serverColor := func(k int) color.Color { return []color.Color{green, orange, purple, grey}[min(k, 3)] }
	for i, l := range a.Lines {
		for _, s := range l.stays(a.End) {
			span, err := plotter.NewLine(plotter.XYs{{X: sec(s.from), Y: phoneLane(i)}, {X: sec(s.until), Y: phoneLane(i)}})
			if err != nil {
				return err
			}
			span.Color, span.Width = serverColor(s.server), 8
			p.Add(span)
			p.Add(labelAt(sec(s.from), phoneLane(i)+0.22, fmt.Sprintf("server %d", s.server+1)))
		}
	}

	// Violations in red: a ring on each frame shown, a line across.
	where := map[int]plotter.XY{}
	for _, l := range a.Lines {
		for _, t := range l.Txns {
			for _, m := range t.Sends {
				where[m.Frame] = plotter.XY{X: sec(m.At), Y: lane(t.Server) + 0.12}
			}
			for _, m := range t.Answers {
				where[m.Frame] = plotter.XY{X: sec(m.At), Y: lane(t.Server) - 0.12}
			}
			if t.Fault != nil {
				where[t.Fault.Frame] = plotter.XY{X: sec(t.Fault.At), Y: lane(t.Server) - 0.12}
			}
		}
	}
	var rings plotter.XYs
	shown := 0
	for _, v := range verdicts {
		for _, f := range v.Findings {
			for _, fr := range f.Frames {
				if xy, ok := where[fr]; ok {
					rings = append(rings, xy)
				}
			}
			x := f.At.Seconds()
			// Each violation's words below the lanes, on one of three rows
			// in turn so that neighbours do not overwrite each other.
			row := -0.05 - 0.22*float64(shown%3)
			shown++
			line, err := plotter.NewLine(plotter.XYs{{X: x, Y: row}, {X: x, Y: top + 0.5}})
			if err != nil {
				return err
			}
			line.Color, line.Width, line.Dashes = red, 1, []vg.Length{vg.Points(3), vg.Points(2)}
			p.Add(line)
			p.Add(labelAt(x+0.006*a.End.Sub(a.Begin).Seconds(), row, v.ID+": "+short(f.Msg, 60)))
		}
	}
	if err := scatter(rings, draw.RingGlyph{}, red, 7); err != nil {
		return err
	}
	if len(rings) > 0 {
		s, _ := plotter.NewScatter(rings[:1])
		s.GlyphStyle = draw.GlyphStyle{Color: red, Radius: 5, Shape: draw.RingGlyph{}}
		p.Legend.Add("violation", s)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = vg.Length(0)
	p.Legend.ThumbnailWidth = vg.Points(16) // wider than the largest mark: no text over a mark
	p.Legend.Padding = vg.Points(2)
	p.X.Min = 0
	p.X.Max = max(1, a.End.Sub(a.Begin).Seconds()) * 1.35 // room for the legend

	// 900 pixels wide at the PNG's 96 dots an inch.
	canvas, err := draw.NewFormattedCanvas(900*vg.Inch/96, vg.Length(5+2*n+len(a.Lines))*vg.Centimeter, format)
	if err != nil {
		return err
	}
	p.Draw(draw.New(canvas))
	_, err = canvas.WriteTo(out)
	return err
}

// Outage is a time a server was out of order on purpose, as the lab put
// it: shaded on the timeline.
type Outage struct {
	Server   int
	From, To time.Time // To zero: to the capture's end
	What     string    // the fault, in words
}

// short is s cut to at most n runes, with an ellipsis when cut.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// stay is a time the phone was registered on one server.
type stay struct {
	server      int
	from, until time.Time
}

// stays are where the line was registered, as current reads it, from its
// first binding to end: a stay per run of one server.
func (l *LineTrace) stays(end time.Time) []stay {
	var cuts []time.Time
	for _, b := range l.Bindings {
		cuts = append(cuts, b.From, b.Until)
		if b.Removed {
			cuts = append(cuts, b.RemovedBefore)
		}
	}
	cuts = append(cuts, end)
	slices.SortFunc(cuts, func(x, y time.Time) int { return x.Compare(y) })
	cuts = slices.Compact(cuts)
	var out []stay
	for i := 0; i+1 < len(cuts) && !cuts[i].After(end); i++ {
		from, until := cuts[i], minTime(cuts[i+1], end)
		k := l.current(from)
		if k < 0 || !until.After(from) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].server == k && out[n-1].until.Equal(from) {
			out[n-1].until = until
			continue
		}
		out = append(out, stay{k, from, until})
	}
	return out
}

// labelAt is a small text at x, y.
func labelAt(x, y float64, text string) plot.Plotter {
	l, _ := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: y}}, Labels: []string{text}})
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = vg.Points(7)
		l.TextStyle[i].Color = black
	}
	return l
}
