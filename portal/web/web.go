// Package web holds the portal's server-rendered pages (html/template) and
// static assets, embedded in the binary. Pages use no inline script or
// style, so the Content-Security-Policy can forbid both.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static is the static assets, served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

// Pages renders named pages inside the shared layout.
type Pages struct {
	pages map[string]*template.Template
}

// Load parses every page with the layout.
func Load() (*Pages, error) {
	layout, err := template.ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &Pages{pages: map[string]*template.Template{}}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", n, err)
		}
		p.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return p, nil
}

// Render writes page with data.
func (p *Pages) Render(w io.Writer, page string, data any) error {
	t, ok := p.pages[page]
	if !ok {
		return fmt.Errorf("no page %q", page)
	}
	return t.ExecuteTemplate(w, "layout", data)
}
