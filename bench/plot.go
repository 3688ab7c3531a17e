package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette gives each system the same colour in every plot.
var palette = map[string]color.RGBA{
	"reflect":   {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"libp2p":    {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	"nats":      {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"redis":     {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"redis-rtt": {R: 0x98, G: 0xdf, B: 0x8a, A: 0xff},
}

func systemColor(name string) color.Color {
	if c, ok := palette[name]; ok {
		return c
	}
	return color.Black
}

// writePlots saves latency.png and throughput.png (pub/sub) and store.png
// in dir, for what was measured, and returns their paths.
func writePlots(dir string, res *Results) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	// A log scale with no value at all panics in gonum/plot: the latency
	// plot needs some latency measured.
	if slices.ContainsFunc(res.Summaries, func(s Summary) bool { return s.P50.ok() }) {
		lat := filepath.Join(dir, "latency.png")
		if err := latencyPlot(lat, res); err != nil {
			return nil, fmt.Errorf("latency plot: %w", err)
		}
		out = append(out, lat)
	}
	if slices.ContainsFunc(res.Ns, func(n int) bool { return hasPubSub(res, n) }) {
		tp := filepath.Join(dir, "throughput.png")
		if err := throughputPlot(tp, res); err != nil {
			return nil, fmt.Errorf("throughput plot: %w", err)
		}
		out = append(out, tp)
	}
	if len(res.StoreSummaries) > 0 {
		st := filepath.Join(dir, "store.png")
		if err := storePlot(st, res); err != nil {
			return nil, fmt.Errorf("store plot: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// storePlot draws the store scenarios, one panel per figure, one bar per
// system (median, range as error bars).
func storePlot(path string, res *Results) error {
	p := res.Params
	panel := func(title, ylabel string, log bool, value func(StoreSummary) Stat) (*plot.Plot, error) {
		pl := plot.New()
		if log {
			pl.Y.Scale = plot.LogScale{}
			pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		pl.Title.Text = title
		pl.Y.Label.Text = ylabel
		pl.Add(plotter.NewGrid())
		var names []string
		for _, s := range res.StoreSummaries {
			names = append(names, s.System)
		}
		pl.NominalX(names...)
		w := vg.Points(28)
		for k, s := range res.StoreSummaries {
			st := value(s)
			if !st.ok() || (log && st.Min <= 0) {
				continue
			}
			pts := plotter.XYs{{X: float64(k), Y: st.Median}}
			eb := &plotter.YErrorBars{XYs: pts, YErrors: plotter.YErrors{{Low: st.Median - st.Min, High: st.Max - st.Median}},
				LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1)}, CapWidth: vg.Points(4)}
			if log { // bars from 0 have no place on a log scale
				sc, err := plotter.NewScatter(pts)
				if err != nil {
					return nil, err
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: systemColor(s.System), Radius: vg.Points(6), Shape: draw.CircleGlyph{}}
				pl.Add(sc, eb)
				continue
			}
			bars, err := plotter.NewBarChart(plotter.Values{st.Median}, w)
			if err != nil {
				return nil, err
			}
			bars.Color = systemColor(s.System)
			bars.LineStyle.Width = 0
			bars.XMin = float64(k)
			pl.Add(bars, eb)
		}
		return pl, nil
	}
	specs := []struct {
		title, ylabel string
		log           bool
		f             func(StoreSummary) Stat
	}{
		{"Set → visible on all others, p99", "µs", false, func(s StoreSummary) Stat { return s.VisibleP99 }},
		{fmt.Sprintf("Sets/s with all replicas applied (%s × %d B)", count(p.StoreKeys), p.ValueSize), "writes/s", false, func(s StoreSummary) Stat { return s.SetsPerSec }},
		{fmt.Sprintf("New participant loads %s keys × %d B", count(p.StoreKeys), p.ValueSize), "seconds", false, func(s StoreSummary) Stat { return s.JoinSecs }},
		{"Join: bytes transferred", "MB", false, func(s StoreSummary) Stat { return mbStat(s.JoinBytes) }},
		{fmt.Sprintf("Reconnect after %d keys changed: bytes", p.Changed), "bytes (log scale)", true, func(s StoreSummary) Stat { return s.ReconBytes }},
		{fmt.Sprintf("Memory per live key (%s keys, 10 B key + %d B value)", count(p.MemKeys), p.MemValueSize), "bytes", false, func(s StoreSummary) Stat { return s.LivePerKey }},
	}
	var plots []*plot.Plot
	for _, sp := range specs {
		pl, err := panel(sp.title, sp.ylabel, sp.log, sp.f)
		if err != nil {
			return err
		}
		plots = append(plots, pl)
	}
	return saveTiles(path, [][]*plot.Plot{plots[:3], plots[3:]}, 4.5*vg.Inch)
}

// latencyPlot draws, for each N, every system's p50, p99 and p99.9 (medians
// over runs, with the range as error bars) on a log scale.
func latencyPlot(path string, res *Results) error {
	var row []*plot.Plot
	for _, n := range res.Ns {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Latency at %.0f msg/s, %d B, N = %d", res.Params.LatencyRate, res.Params.LatencySize, n)
		p.Y.Label.Text = "one-way latency (µs, log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		p.NominalX("p50", "p99", "p99.9")
		systems := summariesAt(res, n)
		for k, s := range systems {
			stats := []Stat{s.P50, s.P99, s.P999}
			var pts plotter.XYs
			var errs plotter.YErrors
			dx := (float64(k) - float64(len(systems)-1)/2) * 0.06
			for i, st := range stats {
				if !st.ok() || st.Median <= 0 {
					continue
				}
				pts = append(pts, plotter.XY{X: float64(i) + dx, Y: st.Median})
				errs = append(errs, struct{ Low, High float64 }{st.Median - max(st.Min, 1e-3), st.Max - st.Median})
			}
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			c := systemColor(s.System)
			line.Color, points.Color = c, c
			line.Width = vg.Points(1.5)
			points.Shape = draw.CircleGlyph{}
			points.Radius = vg.Points(3)
			eb := &plotter.YErrorBars{XYs: pts, YErrors: errs, LineStyle: draw.LineStyle{Color: c, Width: vg.Points(1)}, CapWidth: vg.Points(5)}
			p.Add(line, points, eb)
			p.Legend.Add(s.System, line, points)
		}
		row = append(row, p)
	}
	return saveTiles(path, [][]*plot.Plot{row}, 6*vg.Inch)
}

// throughputPlot draws lossless 256 B msgs/s and 64 KiB MB/s per system,
// grouped by N.
func throughputPlot(path string, res *Results) error {
	panel := func(title, ylabel string, value func(Summary) Stat) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = ylabel
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		var names []string
		for _, n := range res.Ns {
			names = append(names, fmt.Sprintf("N = %d", n))
		}
		p.NominalX(names...)
		systems := systemOrder(res)
		w := vg.Points(14)
		for k, sys := range systems {
			var vals plotter.Values
			var errs plotter.YErrors
			var pts plotter.XYs
			for i, n := range res.Ns {
				st := Stat{}
				for _, s := range res.Summaries {
					if s.System == sys && s.N == n {
						st = value(s)
					}
				}
				v := 0.0
				if st.ok() {
					v = st.Median
					errs = append(errs, struct{ Low, High float64 }{st.Median - st.Min, st.Max - st.Median})
				} else {
					errs = append(errs, struct{ Low, High float64 }{})
				}
				vals = append(vals, v)
				pts = append(pts, plotter.XY{X: float64(i), Y: v})
			}
			bars, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return nil, err
			}
			bars.Color = systemColor(sys)
			bars.LineStyle.Width = 0
			bars.Offset = w * vg.Length(float64(k)-float64(len(systems)-1)/2)
			eb := &plotter.YErrorBars{XYs: pts, YErrors: errs, LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1)}, CapWidth: vg.Points(4)}
			p.Add(bars, offsetErrors{eb, bars.Offset})
			p.Legend.Add(sys, bars)
		}
		return p, nil
	}
	a, err := panel("Highest lossless rate, 256 B", "messages/s per subscriber",
		func(s Summary) Stat { return s.size(small).MsgsPerSec })
	if err != nil {
		return err
	}
	b, err := panel("Highest lossless rate, 64 KiB", "MB/s per subscriber",
		func(s Summary) Stat { return s.size(large).MBPerSec })
	if err != nil {
		return err
	}
	return saveTiles(path, [][]*plot.Plot{{a, b}}, 5*vg.Inch)
}

// offsetErrors draws error bars shifted sideways like their bar.
type offsetErrors struct {
	*plotter.YErrorBars
	dx vg.Length
}

func (o offsetErrors) Plot(c draw.Canvas, p *plot.Plot) {
	c.Rectangle.Min.X += o.dx
	c.Rectangle.Max.X += o.dx
	o.YErrorBars.Plot(c, p)
}

// saveTiles draws one row (or grid) of plots into a PNG.
func saveTiles(path string, plots [][]*plot.Plot, tileW vg.Length) error {
	rows, cols := len(plots), len(plots[0])
	img := vgimg.New(tileW*vg.Length(cols), 4*vg.Inch*vg.Length(rows))
	dc := draw.New(img)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for j := range plots {
		for i := range plots[j] {
			if plots[j][i] != nil {
				plots[j][i].Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// summariesAt returns the summaries at one N in system order.
func summariesAt(res *Results, n int) []Summary {
	var out []Summary
	for _, s := range res.Summaries {
		if s.N == n {
			out = append(out, s)
		}
	}
	return out
}

// systemOrder lists the systems that have summaries, in table order.
func systemOrder(res *Results) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range res.Summaries {
		if !seen[s.System] {
			seen[s.System] = true
			out = append(out, s.System)
		}
	}
	return out
}
