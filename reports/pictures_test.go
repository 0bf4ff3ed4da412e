package reports

import (
	"bytes"
	"strings"
	"testing"
)

func TestPicturesDrawFailoverLanesAndSeries(t *testing.T) {
	checks := []Check{
		{ID: "failover.new-active", Scenario: "failover", Status: Passed, Figures: map[string]float64{
			"kill1-new-active-seconds": 14.2, "kill1-first-write-seconds": 15, "kill1-eso-error-window-seconds": 17.5, "kill1-rejoin-seconds": 3,
			"kill2-new-active-seconds": 41, "failover-seconds": 41,
		}},
		{ID: "lease-storm.settle", Scenario: "lease-storm", Status: Passed,
			Series: []Series{{Name: "roles in Postgres", Points: [][2]float64{{0, 0}, {5, 200}, {60, 0}}}},
			Marks:  []Mark{{Name: "restart", At: 20}}},
	}
	pics := picturesOf(checks)
	if len(pics) != 2 {
		t.Fatalf("%d pictures, want the timeline and one series", len(pics))
	}
	tl := string(pics[0].SVG)
	for _, want := range []string{"kill 1", "kill 2", "election", "ESO resync", "rejoin", "chapter: &lt;30 s", ">40 s<"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	// kill 2 has no first write: its lane ends at the election
	if strings.Count(tl, "first write at") != 1 {
		t.Errorf("first-write events: %d, want 1 (kill 2 recorded none)", strings.Count(tl, "first write at"))
	}
	sp := string(pics[1].SVG)
	if !strings.Contains(sp, "<polyline") || !strings.Contains(sp, "restart") || !strings.Contains(sp, "roles in Postgres") {
		t.Errorf("series picture lacks its line, mark or legend:\n%s", sp)
	}
	if failoverTimeline(checks[1:]) != nil || len(picturesOf([]Check{{ID: "x.y"}})) != 0 {
		t.Error("a picture without data")
	}
	r := sampleReport()
	r.Checks = append(r.Checks, checks...)
	var b bytes.Buffer
	if err := writeHTML(&b, newView(r)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<svg"); n != 2 {
		t.Fatalf("report.html has %d inline SVGs, want 2", n)
	}
}
