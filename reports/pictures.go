package reports

import (
	"fmt"
	"html/template"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Pictures for report.html, drawn as inline SVG (no script, no external asset): the failover
// timeline, one lane per kill, from the failover scenario's per-kill figures; and a check's
// series (e.g. the lease storm's live Postgres roles and Vault leases over time, its restart
// marked). report.md keeps the numbers.

// Series is a measured quantity over time, for a picture.
type Series struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"` // [seconds since the series began, value]
}

// Mark is a moment on a series' time axis (e.g. "restart" at 42 s).
type Mark struct {
	Name string  `json:"name"`
	At   float64 `json:"at"`
}

// picture is one SVG with its caption.
type picture struct {
	Caption string
	SVG     template.HTML
}

var killFigure = regexp.MustCompile(`^kill([0-9]+)-(new-active|first-write|eso-error-window|rejoin)-seconds$`)

// failoverLane is one kill: seconds from the kill to each event.
type failoverLane struct {
	kill                                     int
	newActive, firstWrite, esoResync, rejoin float64
	has                                      map[string]bool
}

// failoverTimeline draws the kills of checks (the failover scenario's per-kill figures:
// killN-new-active-seconds, -first-write-seconds, -eso-error-window-seconds, measured from
// the kill, and -rejoin-seconds, measured from the ESO resync). Nil when there are none.
func failoverTimeline(checks []Check) *picture {
	lanes := map[int]*failoverLane{}
	for _, c := range checks {
		for name, v := range c.Figures {
			m := killFigure.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			k, _ := strconv.Atoi(m[1])
			l := lanes[k]
			if l == nil {
				l = &failoverLane{kill: k, has: map[string]bool{}}
				lanes[k] = l
			}
			l.has[m[2]] = true
			switch m[2] {
			case "new-active":
				l.newActive = v
			case "first-write":
				l.firstWrite = v
			case "eso-error-window":
				l.esoResync = v
			case "rejoin":
				l.rejoin = v
			}
		}
	}
	if len(lanes) == 0 {
		return nil
	}
	var order []*failoverLane
	for _, l := range lanes {
		order = append(order, l)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].kill < order[j].kill })
	type event struct {
		name, color string
		at          float64
	}
	var rows [][]event
	end := 30.0 // the chapter's "<30 s" is always on the axis
	for _, l := range order {
		row := []event{{"kill", "#c62828", 0}}
		add := func(key, name, color string, at float64) {
			if l.has[key] {
				row = append(row, event{name, color, at})
				end = math.Max(end, at)
			}
		}
		add("new-active", "election", "#ef6c00", l.newActive)
		add("first-write", "first write", "#2e7d32", l.firstWrite)
		add("eso-error-window", "ESO resync", "#1565c0", l.esoResync)
		add("rejoin", "rejoin", "#6a1b9a", l.esoResync+l.rejoin)
		rows = append(rows, row)
	}
	const left, right, laneH, top = 70.0, 20.0, 34.0, 30.0
	width := 760.0
	plot := width - left - right
	end = niceCeil(end)
	x := func(t float64) float64 { return left + plot*t/end }
	height := top + laneH*float64(len(rows)) + 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="failover timeline" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`, width, height, width, height)
	axisY := top + laneH*float64(len(rows))
	for _, t := range ticks(end) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s s</text>`,
			x(t), top-8, x(t), axisY, x(t), axisY+14, fmtNum(t))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" stroke-dasharray="4 3"/><text x="%.1f" y="%.1f" fill="#c62828" text-anchor="end">chapter: &lt;30 s</text>`,
		x(30), top-12, x(30), axisY, x(30), top-16)
	for i, row := range rows {
		y := top + laneH*float64(i) + laneH/2
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#222">kill %d</text>`, left-8, y+4, order[i].kill)
		last := row[len(row)-1].at
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-width="2"/>`, x(0), y, x(last), y)
		for _, ev := range row {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"><title>%s at %s s</title></circle>`, x(ev.at), y, ev.color, template.HTMLEscapeString(ev.name), fmtNum(ev.at))
		}
	}
	// the legend, under the axis
	lx := left
	for _, ev := range []event{{"kill", "#c62828", 0}, {"election", "#ef6c00", 0}, {"first write", "#2e7d32", 0}, {"ESO resync", "#1565c0", 0}, {"rejoin", "#6a1b9a", 0}} {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/><text x="%.1f" y="%.1f" fill="#222">%s</text>`, lx, axisY+32, ev.color, lx+9, axisY+36, ev.name)
		lx += 110
	}
	b.WriteString(`</svg>`)
	return &picture{Caption: fmt.Sprintf("Failover timeline: %d kill(s), seconds from each kill (rejoin counted after the ESO resync)", len(rows)), SVG: template.HTML(b.String())}
}

// seriesPicture draws a check's series as lines on one time axis, its marks as vertical
// lines. Nil when the check has no series.
func seriesPicture(c Check) *picture {
	if len(c.Series) == 0 {
		return nil
	}
	colors := []string{"#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a"}
	end, top := 1.0, 1.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			end, top = math.Max(end, p[0]), math.Max(top, p[1])
		}
	}
	for _, m := range c.Marks {
		end = math.Max(end, m.At)
	}
	end, top = niceCeil(end), niceCeil(top)
	const left, right, upper, plotH = 60.0, 175.0, 20.0, 220.0
	width := 760.0
	plotW := width - left - right
	x := func(t float64) float64 { return left + plotW*t/end }
	y := func(v float64) float64 { return upper + plotH*(1-v/top) }
	height := upper + plotH + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`,
		template.HTMLEscapeString(c.ID), width, height, width, height)
	for _, t := range ticks(end) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s s</text>`,
			x(t), upper, x(t), upper+plotH, x(t), upper+plotH+14, fmtNum(t))
	}
	for _, v := range ticks(top) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>`,
			left, y(v), left+plotW, y(v), left-6, y(v)+4, fmtNum(v))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`, left, upper, plotW, plotH)
	for _, m := range c.Marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" stroke-dasharray="4 3"/><text x="%.1f" y="%.1f" fill="#c62828">%s</text>`,
			x(m.At), upper, x(m.At), upper+plotH, x(m.At)+3, upper+12, template.HTMLEscapeString(m.Name))
	}
	for i, s := range c.Series {
		color := colors[i%len(colors)]
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		// each series drawn thinner than the one before, so a series that lies on another
		// (minted roles and live leases, usually) still shows beneath it
		width := 2 * (len(c.Series) - i)
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%d" points="%s"/>`, color, width, strings.Join(pts, " "))
		ly := upper + 14 + 16*float64(i)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/><text x="%.1f" y="%.1f" fill="#222">%s</text>`,
			left+plotW+10, ly-4, left+plotW+28, ly-4, color, left+plotW+32, ly, template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	names := make([]string, len(c.Series))
	for i, s := range c.Series {
		names[i] = s.Name
	}
	return &picture{Caption: fmt.Sprintf("%s: %s over seconds", c.ID, strings.Join(names, ", ")), SVG: template.HTML(b.String())}
}

// picturesOf are the pictures of one scenario's checks.
func picturesOf(checks []Check) []picture {
	var out []picture
	if p := failoverTimeline(checks); p != nil {
		out = append(out, *p)
	}
	for _, c := range checks {
		if p := seriesPicture(c); p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// niceCeil rounds v up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
// ten), so an axis ends near its data.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ticks are five evenly spaced values from 0 to end.
func ticks(end float64) []float64 {
	var out []float64
	for i := 0; i <= 5; i++ {
		out = append(out, end*float64(i)/5)
	}
	return out
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
