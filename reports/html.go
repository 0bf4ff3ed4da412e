package reports

import (
	_ "embed"
	"html/template"
	"io"
	"slices"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate renders report.html: one self-contained page (inline CSS, no script,
// no external assets). html/template escapes every value, messages included.
var htmlTemplate = template.Must(template.New("report.html").
	Funcs(template.FuncMap{
		"verdictWord": verdictWord,
		"versionsOf":  versionsOf,
		"short": func(s string) string {
			short, _ := shorten(s, shortMessageRunes)
			return short
		},
	}).
	Parse(htmlSource))

func writeHTML(w io.Writer, v *view) error {
	return htmlTemplate.Execute(w, v)
}

// versionsOf lists the distinct versions the observations were made on, in order.
func versionsOf(obs []Observation) []string {
	var out []string
	for _, o := range obs {
		if o.Versions != "" && !slices.Contains(out, o.Versions) {
			out = append(out, o.Versions)
		}
	}
	return out
}
