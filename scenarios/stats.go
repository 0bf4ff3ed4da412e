package scenarios

import (
	"fmt"
	"slices"
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

// figureSpread records NAME-min, NAME-median and NAME-max of xs.
func (r *Result) figureSpread(name string, xs []float64) {
	sp, err := spreadOf(xs)
	if err != nil {
		return
	}
	r.Figure(name+"-min", sp.Min)
	r.Figure(name+"-median", sp.Median)
	r.Figure(name+"-max", sp.Max)
}
