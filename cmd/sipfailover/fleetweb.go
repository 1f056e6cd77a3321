package main

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"
)

// fleetPage is the live report of a running fleet (R21): the report as
// the end of the run prints it, refreshed every few seconds, with the
// picture of the run so far. It serves loopback only, and only requests
// that name this address as their host, so that no other web page can read
// it through the browser (DNS rebinding).
var fleetPage = template.Must(template.New("fleet").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>sipfailover fleet: {{.Lines}} lines</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem; max-width: 60rem; }
pre { overflow-x: auto; background: #f4f6f8; padding: .75rem; }
img { width: 100%; height: auto; border: 1px solid #ccd; }
</style></head>
<body>
<h1>Fleet of {{.Lines}} lines</h1>
<p>Running for {{.Elapsed}}; this page reloads every {{.Refresh}} s. The same report as JSON: <a href="report.json">report.json</a>.</p>
<pre>{{.Text}}</pre>
<img src="picture.png?at={{.Elapsed}}" alt="Lines per state over time, and new requests a second to each server">
</body></html>
`))

// serveFleet serves the live report on ln until the server is closed.
func (f *fleet) serveFleet(ln net.Listener) *http.Server {
	hosts := hostsFor(ln.Addr())
	mux := http.NewServeMux()
	ours := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !hostAllowed(r.Host, hosts) {
				http.Error(w, "host "+r.Host+" is not this fleet's", http.StatusMisdirectedRequest)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /{$}", ours(func(w http.ResponseWriter, r *http.Request) {
		rep := f.snapshot()
		var text bytes.Buffer
		rep.print(&text)
		var page bytes.Buffer
		if err := fleetPage.Execute(&page, map[string]any{"Lines": rep.Lines, "Elapsed": rep.Elapsed, "Text": text.String(), "Refresh": 2}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
		w.Write(page.Bytes())
	}))
	mux.HandleFunc("GET /report.json", ours(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.snapshot())
	}))
	mux.HandleFunc("GET /{file}", ours(func(w http.ResponseWriter, r *http.Request) {
		format, ok := strings.CutPrefix(r.PathValue("file"), "picture.")
		types := map[string]string{"svg": "image/svg+xml", "png": "image/png"}
		if !ok || types[format] == "" {
			http.Error(w, fmt.Sprintf("%s: no such page; picture.svg or picture.png", r.PathValue("file")), http.StatusNotFound)
			return
		}
		var pic bytes.Buffer
		if err := f.draw(&pic, format); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", types[format])
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write(pic.Bytes())
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	go srv.Serve(ln)
	return srv
}
