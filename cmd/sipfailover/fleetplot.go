package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// picture draws the run into file (.svg or .png).
func (f *fleet) picture(file string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), ".")
	if format != "svg" && format != "png" {
		return fmt.Errorf("-picture %s: an .svg or .png file", file)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := f.draw(out, format); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// draw writes the run so far as a picture in format (svg or png): above,
// how many lines were in each state over time; below, how many new
// requests each server was sent each second.
func (f *fleet) draw(out io.Writer, format string) error {
	f.mu.Lock()
	samples := slices.Clone(f.samples)
	begin := f.begin
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
	for _, server := range f.servers() {
		label := server
		if n, ok := f.numbers[server]; ok {
			label = fmt.Sprintf("server %d: %s", n, server)
		}
		series = append(series, label, f.network.perSecond(server, begin, end))
	}
	if err := plotutil.AddLines(load, series...); err != nil {
		return err
	}
	// The legends go right of the curves, in room the x axes leave for them.
	for _, p := range []*plot.Plot{states, load} {
		p.X.Min, p.X.Max = 0, max(1, end.Sub(begin).Seconds())*1.35
		p.Legend.Top = true
		p.Y.Min = 0
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
