package statuspage

import (
	"embed"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed assets
var assets embed.FS

// Handler serves the page at /, its data at /status and the metrics at
// /metrics (404 without Config.Metrics). Unless Config.Public, requests
// whose Host is not a loopback name or address get 403.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.asset("assets/index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", p.asset("assets/app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", p.asset("assets/app.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /status", p.serveStatus)
	if p.cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(p.cfg.Metrics, promhttp.HandlerOpts{}))
	}
	var h http.Handler = mux
	if !p.cfg.Public {
		h = loopbackOnly(h)
	}
	return secure(h)
}

func (p *Page) asset(name, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := assets.ReadFile(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(b)
	}
}

func (p *Page) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(p.Status()); err != nil {
		p.log.Debug("statuspage: writing /status", "err", err)
	}
}

// secure sets the headers that keep the page to itself: its own scripts
// only, not framed by another site, types as sent.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// loopbackOnly refuses requests addressed to a host that is not loopback:
// a page elsewhere that resolves its own name to 127.0.0.1 (DNS
// rebinding) gets 403 instead of the mesh's status.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			http.Error(w, "statuspage: this page answers only on a loopback address (Host "+r.Host+")", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsLoopbackHost reports whether hostport (a Host header or a listen
// address, with or without a port) names the loopback interface:
// "localhost", an address in 127.0.0.0/8, or ::1. An empty host (every
// interface) is not loopback.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
