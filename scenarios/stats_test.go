package scenarios

import "testing"

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{14.4}, spread{14.4, 14.4, 14.4}},
		{[]float64{9, 3, 6}, spread{3, 6, 9}},
		{[]float64{4, 1, 3, 2}, spread{1, 2.5, 4}},
	} {
		got, err := spreadOf(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("spreadOf(%v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := spreadOf(nil); err == nil {
		t.Error("spreadOf(nil): want an error")
	}
	var r Result
	r.figureSpread("x", []float64{5, 1, 3})
	if r.figures["x-min"] != 1 || r.figures["x-median"] != 3 || r.figures["x-max"] != 5 {
		t.Errorf("figureSpread recorded %v", r.figures)
	}
	r.figureSpread("new-active-seconds", []float64{2, 4})
	if r.figures["new-active-min-seconds"] != 2 || r.figures["new-active-median-seconds"] != 3 || r.figures["new-active-max-seconds"] != 4 {
		t.Errorf("figureSpread with a unit recorded %v", r.figures)
	}
}

func TestStormPlan(t *testing.T) {
	for _, tc := range []struct{ n, eso, expiry, keep int }{
		{200, 20, 50, 130},
		{1000, 50, 250, 700}, // ESO's share is capped
		{5000, 50, 1250, 3700},
		{3, 0, 0, 3},
	} {
		eso, expiry, keep := stormPlan(tc.n)
		if eso != tc.eso || expiry != tc.expiry || keep != tc.keep || eso+expiry+keep != tc.n {
			t.Errorf("stormPlan(%d) = %d, %d, %d; want %d, %d, %d", tc.n, eso, expiry, keep, tc.eso, tc.expiry, tc.keep)
		}
	}
}
