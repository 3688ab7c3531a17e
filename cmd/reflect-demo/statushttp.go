package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/statuspage"
	"github.com/reflectmesh/reflect/node"
)

// statusServer serves the status page of -http.
type statusServer struct {
	page *statuspage.Page
	srv  *http.Server
	link string        // the page's URL
	done chan struct{} // closed when Serve returns
}

// newRegistry is the registry -http serves at /metrics: the node's and
// the store's metrics (given to them), Go's runtime and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startStatus listens on addr and serves the status page of n and store.
func startStatus(addr string, public bool, n *node.Node, store *crdtstore.Store, storeName string, reg *prometheus.Registry, log *slog.Logger) (*statusServer, error) {
	if storeName == "" {
		storeName = crdtstore.DefaultName
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http %s: %w", addr, err)
	}
	page, err := statuspage.New(statuspage.Config{
		Node: n, Store: store, StoreName: storeName,
		Metrics: reg, Version: versionLine(), Public: public, Logger: log,
	})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &statusServer{
		page: page,
		srv: &http.Server{
			Handler:           page.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		link: pageURL(addr, ln.Addr()),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("reflect-demo: status page stopped", "err", err)
		}
	}()
	return s, nil
}

// url is the page's address, "" for a nil server.
func (s *statusServer) url() string {
	if s == nil {
		return ""
	}
	return s.link
}

// pageURL is the URL of the page listening at bound for the -http address
// asked: the host asked (localhost for every interface), the port bound.
func pageURL(asked string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(asked)
	if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	_, port, _ := net.SplitHostPort(bound.String())
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// close stops serving (open requests get a second to finish) and stops the
// page. A nil server does nothing.
func (s *statusServer) close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	_ = s.page.Close()
}
