package main

import (
	"fmt"
	"image/color"
	"io"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// picture draws the run into file (.svg or .png).
func (f *fleet) picture(file string) error {
	format, err := pictureFormat(file)
	if err != nil {
		return err
	}
	return writeFile(file, func(w io.Writer) error { return f.draw(w, format) })
}

// draw writes the run so far as a picture in format (svg or png): above,
// how many lines were in each state over time; below, how many new
// requests each server was sent each second.
func (f *fleet) draw(out io.Writer, format string) error {
	f.mu.Lock()
	samples := slices.Clone(f.samples)
	begin := f.begin
	faults, back := slices.Clone(f.faults), slices.Clone(f.backAt)
	f.mu.Unlock()

	states := plot.New()
	states.Title.Text = fmt.Sprintf("%d lines: how many in each state", len(f.lines))
	states.X.Label.Text = "seconds"
	states.Y.Label.Text = "lines"
	var names []string
	for _, s := range samples {
		for name := range s.states {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	var lines []any
	for _, name := range names {
		xy := make(plotter.XYs, len(samples))
		for i, s := range samples {
			xy[i] = plotter.XY{X: s.at.Seconds(), Y: float64(s.states[name])}
		}
		lines = append(lines, name, xy)
	}
	if err := plotutil.AddLines(states, lines...); err != nil {
		return err
	}

	load := plot.New()
	load.Title.Text = "new requests a second, per server"
	load.X.Label.Text = "seconds"
	load.Y.Label.Text = "requests"
	var series []any
	end := begin
	if len(samples) > 0 {
		end = begin.Add(samples[len(samples)-1].at)
	}
	peak := 1.0
	for _, server := range f.servers() {
		label := server
		switch n := f.numbers[server]; {
		case n == 1:
			label = fmt.Sprintf("server 1 (primary): %s", server)
		case n > 1:
			label = fmt.Sprintf("server %d (backup): %s", n, server)
		}
		xy := f.network.perSecond(server, begin, end)
		for _, p := range xy {
			peak = max(peak, p.Y)
		}
		series = append(series, label, xy)
	}
	if err := plotutil.AddLines(load, series...); err != nil {
		return err
	}
	// The x axes end with the run; the legends go above the curves, in
	// room the y axes leave for them.
	states.Y.Max, load.Y.Max = float64(len(f.lines))*1.5, peak*1.6
	for _, p := range []*plot.Plot{states, load} {
		p.X.Min, p.X.Max = 0, max(1, end.Sub(begin).Seconds())
		p.Legend.Top = true
		p.Y.Min = 0
		if err := mark(p, begin, waves(faults), "fault seen"); err != nil {
			return err
		}
		if err := mark(p, begin, recoveries(waves(faults), back), "primary back"); err != nil {
			return err
		}
	}

	w, h := 24*vg.Centimeter, 20*vg.Centimeter
	canvas, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter,
		PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	plots := [][]*plot.Plot{{states}, {load}}
	cells := plot.Align(plots, tiles, draw.New(canvas))
	for i, row := range plots {
		row[0].Draw(cells[i][0])
	}
	_, err = canvas.WriteTo(out)
	return err
}

// waveGap is the quiet that separates two waves of failovers: a fault
// seen after it is a new one.
const waveGap = 30 * time.Second

// waves are the first fault of each wave of failovers: the faults lines saw,
// apart from the one before by more than waveGap.
func waves(faults []time.Time) []time.Time {
	slices.SortFunc(faults, time.Time.Compare)
	var out []time.Time
	for i, t := range faults {
		if i == 0 || t.Sub(faults[i-1]) > waveGap {
			out = append(out, t)
		}
	}
	return out
}

// recoveries are, for each wave, the first time a line came back to the
// primary after it began.
func recoveries(waves, back []time.Time) []time.Time {
	slices.SortFunc(back, time.Time.Compare)
	var out []time.Time
	for _, w := range waves {
		if i := slices.IndexFunc(back, func(t time.Time) bool { return t.After(w) }); i >= 0 {
			out = append(out, back[i])
		}
	}
	return out
}

// mark draws a dashed vertical line, labelled, at each of times.
func mark(p *plot.Plot, begin time.Time, times []time.Time, label string) error {
	for _, t := range times {
		x := t.Sub(begin).Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Color = color.Gray{Y: 90}
		text, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: p.Y.Max * 0.62}}, Labels: []string{" " + label}})
		if err != nil {
			return err
		}
		p.Add(l, text)
	}
	return nil
}

// perSecond returns what server was sent each second of the run, from
// begin to end, a second with nothing sent as 0.
func (n *countingNetwork) perSecond(server string, begin, end time.Time) plotter.XYs {
	n.mu.Lock()
	defer n.mu.Unlock()
	var xy plotter.XYs
	for s := begin.Unix(); s <= end.Unix(); s++ {
		xy = append(xy, plotter.XY{X: float64(s - begin.Unix()), Y: float64(n.sent[server][s])})
	}
	return xy
}
