package statuspage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("statuspage: invalid config")

const (
	// sampleEvery is how often counters are read and rates computed.
	sampleEvery = time.Second
	// pingEvery is how often a round of pings starts; pingsPerRound bounds
	// the peers pinged in one round (the others wait for later rounds).
	pingEvery     = 5 * time.Second
	pingsPerRound = 16
	// maxEvents is how many recent events the page keeps.
	maxEvents = 100
	// watchBuffer is the store watcher's channel capacity: changes beyond
	// it while the page is busy are counted, not shown.
	watchBuffer = 256
)

// Config says what the page shows.
type Config struct {
	// Node is the node shown. Required.
	Node *node.Node
	// Store is the store shown, if any; StoreName is its name
	// (crdtstore.Options.Name).
	Store     *crdtstore.Store
	StoreName string
	// Metrics is served at /metrics if set: the registry given to
	// node.Config.Metrics and crdtstore.Options.Metrics.
	Metrics prometheus.Gatherer
	// Version is shown in the page's header.
	Version string
	// Public serves requests whatever their Host header says. By default
	// only loopback names and addresses are accepted (see the package
	// documentation).
	Public bool
	// Logger receives the page's warnings (default slog.Default()).
	Logger *slog.Logger
}

// Page is a running status page. Its goroutines run until Close.
type Page struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopPeers func()
	watcher   *crdtstore.Watcher
	closeOnce sync.Once

	mu     sync.Mutex
	last   sample          // the latest sample (sample.go)
	events []Event         // ring of the last maxEvents, oldest first
	synced map[string]bool // per peer: whether the last sample saw it synced (events.go)
}

// New starts a status page of cfg.Node; serve it with Handler, stop it
// with Close.
func New(cfg Config) (*Page, error) {
	if cfg.Node == nil {
		return nil, errors.Join(ErrConfig, errors.New("statuspage: Config.Node is nil"))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Page{
		cfg:     cfg,
		log:     log,
		started: time.Now(),
		ctx:     ctx,
		cancel:  cancel,
		synced:  map[string]bool{},
	}
	p.takeSample(time.Now()) // the first page load has data at once
	p.stopPeers = cfg.Node.OnPeer(p.peerEvent)
	if cfg.Store != nil {
		p.watcher = cfg.Store.Watch("", crdtstore.WithBuffer(watchBuffer))
		p.wg.Add(1)
		go p.watchLoop()
	}
	p.wg.Add(2)
	go p.sampleLoop()
	go p.pingLoop()
	return p, nil
}

// Close stops the page's goroutines and waits for them. Safe to call more
// than once. Handler keeps answering from the last sample.
func (p *Page) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.stopPeers()
		if p.watcher != nil {
			p.watcher.Stop()
		}
		p.wg.Wait()
	})
	return nil
}

func (p *Page) sampleLoop() {
	defer p.wg.Done()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.takeSample(now)
		}
	}
}
