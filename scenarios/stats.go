package scenarios

import (
	"fmt"
	"slices"
	"strings"
)

// spread is min, median and max of a series (the median of an even count is the mean of the
// middle two).
type spread struct{ Min, Median, Max float64 }

func spreadOf(xs []float64) (spread, error) {
	if len(xs) == 0 {
		return spread{}, fmt.Errorf("no values")
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := s[len(s)/2]
	if len(s)%2 == 0 {
		mid = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Min: s[0], Median: mid, Max: s[len(s)-1]}, nil
}

// figureSpread records the min, median and max of xs as NAME-min, NAME-median and NAME-max,
// the statistic before a unit suffix (-seconds, -ms) so the reports keep the unit:
// new-active-seconds gives new-active-min-seconds.
func (r *Result) figureSpread(name string, xs []float64) {
	sp, err := spreadOf(xs)
	if err != nil {
		return
	}
	base, unit := name, ""
	for _, u := range []string{"-seconds", "-ms"} {
		if b, ok := strings.CutSuffix(name, u); ok {
			base, unit = b, u
			break
		}
	}
	r.Figure(base+"-min"+unit, sp.Min)
	r.Figure(base+"-median"+unit, sp.Median)
	r.Figure(base+"-max"+unit, sp.Max)
}
