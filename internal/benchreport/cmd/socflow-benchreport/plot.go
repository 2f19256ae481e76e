package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"math"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/socflow/socflow/internal/benchreport"
)

// The plot's layout in pixels: panels stacked one above the other, each a title line,
// a plotting area with the y axis's labels on its left, the runs below it and the
// legend on its right.
const (
	plotWidth   = 760
	panelHeight = 210
	marginLeft  = 70
	marginRight = 150
	marginTop   = 28
	marginBelow = 32
)

// panel is one chart: the series (name -> value per run) of one benchmark in one unit.
type panel struct {
	title  string
	series map[string][]xy
}

type xy struct{ run, v float64 }

// panels are the charts the points make: per benchmark, one of its stage gaps (ms)
// when it measured any, and one of its overhead per unit.
func panels(points []benchreport.Point) []panel {
	var out []panel
	at := map[string]int{} // panel title -> index in out
	add := func(title, name string, p xy) {
		i, ok := at[title]
		if !ok {
			i, at[title] = len(out), len(out)
			out = append(out, panel{title: title, series: map[string][]xy{}})
		}
		out[i].series[name] = append(out[i].series[name], p)
	}
	for _, p := range points {
		for _, name := range slices.Sorted(maps.Keys(p.GapsMS)) {
			add(p.Benchmark+": stage gaps (ms)", name, xy{float64(p.Run), p.GapsMS[name]})
		}
		if p.OverheadUnit != "" {
			add(p.Benchmark+": overhead ("+p.OverheadUnit+")", "overhead", xy{float64(p.Run), p.Overhead})
		}
	}
	return out
}

// plotSize is the image's size for n panels (an empty plot is one panel high).
func plotSize(n int) image.Point { return image.Pt(plotWidth, max(n, 1)*panelHeight) }

// palette colours the series of a panel in the order of their names.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

var (
	ink  = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grid = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// plot draws the points' panels as a PNG: each series a line with a dot per run.
func plot(points []benchreport.Point) ([]byte, error) {
	ps := panels(points)
	img := image.NewRGBA(image.Rectangle{Max: plotSize(len(ps))})
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	if len(ps) == 0 {
		text(img, marginLeft, panelHeight/2, ink, "no per-run points were recorded")
	}
	for i, p := range ps {
		drawPanel(img, image.Rect(0, i*panelHeight, plotWidth, (i+1)*panelHeight), p)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("cannot encode the plot: %w", err)
	}
	return buf.Bytes(), nil
}

func drawPanel(img *image.RGBA, r image.Rectangle, p panel) {
	area := image.Rect(r.Min.X+marginLeft, r.Min.Y+marginTop, r.Max.X-marginRight, r.Max.Y-marginBelow)
	text(img, r.Min.X+8, r.Min.Y+18, ink, p.title)

	// The axes' ranges: every run, and from zero (or below, for a negative value) to a
	// round number above the highest value.
	lo, hi, first, last := 0.0, 0.0, math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, q := range s {
			lo, hi = min(lo, q.v), max(hi, q.v)
			first, last = min(first, q.run), max(last, q.run)
		}
	}
	hi = roundUp(hi)
	if lo < 0 {
		lo = -roundUp(-lo)
	}
	x := func(run float64) int {
		if first == last {
			return (area.Min.X + area.Max.X) / 2
		}
		return area.Min.X + int(math.Round((run-first)/(last-first)*float64(area.Dx())))
	}
	y := func(v float64) int { return area.Max.Y - int(math.Round((v-lo)/(hi-lo)*float64(area.Dy()))) }

	for k := range 5 {
		v := lo + (hi-lo)*float64(k)/4
		line(img, area.Min.X, y(v), area.Max.X, y(v), grid)
		label := benchreport.FormatValue(v)
		text(img, area.Min.X-8-7*len(label), y(v)+4, ink, label)
	}
	line(img, area.Min.X, area.Min.Y, area.Min.X, area.Max.Y, ink)
	line(img, area.Min.X, area.Max.Y, area.Max.X, area.Max.Y, ink)
	step := math.Max(1, math.Ceil((last-first+1)/15)) // at most about 15 run labels
	for run := first; run <= last; run += step {
		label := fmt.Sprint(run)
		line(img, x(run), area.Max.Y, x(run), area.Max.Y+4, ink)
		text(img, x(run)-7*len(label)/2, area.Max.Y+17, ink, label)
	}
	text(img, area.Max.X-21, area.Max.Y+29, ink, "run")

	for i, name := range slices.Sorted(maps.Keys(p.series)) {
		c := palette[i%len(palette)]
		s := p.series[name]
		for j, q := range s {
			dot(img, x(q.run), y(q.v), c)
			if j > 0 {
				thickLine(img, x(s[j-1].run), y(s[j-1].v), x(q.run), y(q.v), c)
			}
		}
		ly := area.Min.Y + 8 + 18*i
		draw.Draw(img, image.Rect(area.Max.X+14, ly-5, area.Max.X+26, ly+5), image.NewUniform(c), image.Point{}, draw.Src)
		text(img, area.Max.X+32, ly+4, ink, name)
	}
}

// roundUp is the smallest of 1, 2, 2.5 and 5 times a power of ten that is at least v
// (1 for v <= 0).
func roundUp(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// text writes s with its baseline's left end at (x, y), in a 7×13 pixel font.
func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// line draws a one-pixel line from (x0, y0) to (x1, y1).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	n := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= n; i++ {
		img.Set(x0+(x1-x0)*i/n, y0+(y1-y0)*i/n, c)
	}
}

// thickLine draws a line two pixels wide, so series stand out from the grid.
func thickLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	line(img, x0, y0, x1, y1, c)
	line(img, x0, y0+1, x1, y1+1, c)
}

// dot draws a 5×5 pixel square centred on (x, y).
func dot(img *image.RGBA, x, y int, c color.Color) {
	draw.Draw(img, image.Rect(x-2, y-2, x+3, y+3), image.NewUniform(c), image.Point{}, draw.Src)
}

func abs(n int) int { return max(n, -n) }
