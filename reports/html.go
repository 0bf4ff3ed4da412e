package reports

import (
	_ "embed"
	"html/template"
	"io"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate renders report.html: one self-contained page (inline CSS, no script,
// no external assets). html/template escapes every value, messages included.
var htmlTemplate = template.Must(template.New("report.html").
	Funcs(template.FuncMap{"verdictWord": verdictWord}).
	Parse(htmlSource))

func writeHTML(w io.Writer, v *view) error {
	return htmlTemplate.Execute(w, v)
}
