package crdtstore_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/node"
)

// Issue 11, attack 4: sync streams that send what they declare.

// logSink collects a logger's output (testutil.LogBuffer).
type logSink struct{ testutil.LogBuffer }

// logger returns a logger of warnings and errors writing to l.
func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// heapPeak samples the heap in use every 10 ms until stop is closed, then
// sends the most it saw.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// openRaw opens a sync stream from one node to the store of another, for
// a test to speak the protocol by hand.
func openRaw(ctx context.Context, from, to testNode) (network.Stream, error) {
	s, err := from.n.Host().NewStream(ctx, to.n.ID(), crdtstore.SyncProtocol(to.s))
	if err != nil {
		return nil, err
	}
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	return s, nil
}

// zeros is what hostile frames carry.
var zeros = make([]byte, 256<<10)

// sendDeclared writes a frame of kind declaring length n (the kind byte
// and n-1 bytes), and sends them all, chunk by chunk; it returns the bytes
// written.
func sendDeclared(w io.Writer, kind byte, n int) (int, error) {
	sent, err := w.Write(append(binary.AppendUvarint(nil, uint64(n)), kind))
	for left := n - 1; err == nil && left > 0; {
		var m int
		m, err = w.Write(zeros[:min(left, len(zeros))])
		sent += m
		left -= m
	}
	return sent, err
}

// readRawFrame reads one frame and returns its kind and length.
func readRawFrame(r *bufio.Reader) (kind byte, n int, err error) {
	l, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, 0, err
	}
	if l == 0 || l > 1<<30 {
		return 0, 0, fmt.Errorf("frame of %d bytes", l)
	}
	if kind, err = r.ReadByte(); err != nil {
		return 0, 0, err
	}
	_, err = r.Discard(int(l - 1))
	return kind, int(l), err
}

var emptyContext = ormap.EncodeContext(ormap.Context{})

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// honestDuring checks, while an attack runs, that the victim's own writes
// and reads work and that a late joiner syncs with it and sees a write made
// during the attack.
func honestDuring(t *testing.T, victim testNode) {
	t.Helper()
	mustSet(t, victim.s, "during", "the attack")
	mustGet(t, victim.s, "during", "the attack")
	joiner := startStoreNode(t)
	connect(t, joiner, victim)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := joiner.s.WaitSynced(ctx); err != nil {
		t.Fatalf("late joiner during the attack: %v", err)
	}
	mustGet(t, joiner.s, "during", "the attack")
	mustGet(t, joiner.s, "key/0042", "v")
}

// Attack 4 as filed: 16 streams each sending a frame of a declared 64 MiB
// minus one byte, and the bytes (RSS 44 → 2,948 MB before). A request
// (context frame) that long is refused at its length; the same frames sent
// as the last delta of syncs the attackers started properly wait for one of
// the store's two large-read slots. The sync buffers stay within the
// documented bound (largeReads × MaxSyncFrame, and smallFrame per stream
// being read), and honest use goes on meanwhile.
func TestLoopbackSyncFramesBounded(t *testing.T) {
	for _, tc := range []struct {
		name               string
		request            bool // the frame is the request, not the last delta
		attackers, streams int  // attacker nodes, streams of each
	}{
		{"64 MiB requests", true, 1, 16},
		{"64 MiB deltas from 4 peers", false, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			syncFramesBounded(t, tc.request, tc.attackers, tc.streams)
		})
	}
}

func syncFramesBounded(t *testing.T, request bool, attackers, streams int) {
	var logs logSink
	opts := fastOptions()
	opts.Logger = logs.logger()
	victim := startStoreNodeWith(t, node.Config{}, opts)
	for i := range 100 {
		mustSet(t, victim.s, fmt.Sprintf("key/%04d", i), "v")
	}
	var bad []testNode
	for range attackers {
		x := startNode(t, node.Config{})
		connect(t, x, victim)
		bad = append(bad, x)
	}
	// Once synced with the attackers (they run no store), the victim is
	// caught up: it serves them rather than answering "busy".
	testutil.Eventually(t, 10*time.Second, "the victim synced with every attacker", func() bool {
		for _, x := range bad {
			if !crdtstore.Joined(victim.s, string(x.n.ID())) {
				return false
			}
		}
		return victim.s.Synced()
	})
	base := heapInuse()
	resetPeak(victim.s)
	stop := make(chan struct{})
	peak := heapPeak(stop)

	const declared = 64<<20 - 1
	var sent atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, x := range bad {
		for range streams {
			wg.Go(func() {
				s, err := openRaw(ctx, x, victim)
				if err != nil {
					return
				}
				defer s.Reset()
				kind := crdtstore.FrameContext
				if !request {
					if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(emptyContext)+1)), append([]byte{crdtstore.FrameContext}, emptyContext...)...)); err != nil {
						return
					}
					r := bufio.NewReader(s)
					if k, _, err := readRawFrame(r); err != nil || k != crdtstore.FrameDelta {
						return // reset by a newer stream of the same peer
					}
					if _, _, err := readRawFrame(r); err != nil {
						return
					}
					kind = crdtstore.FrameDelta
				}
				n, _ := sendDeclared(s, kind, declared)
				sent.Add(int64(n))
				_, _ = io.Copy(io.Discard, s)
			})
		}
	}
	honestDuring(t, victim)
	wg.Wait()
	close(stop)
	grew := int64(<-peak) - int64(base)

	// The documented bound: two large frames at once, and smallFrame per
	// stream being read (one served and one started per peer; the honest
	// joiner is a peer too).
	peers := int64(attackers + 1)
	bound := int64(crdtstore.LargeReads)*crdtstore.DefaultMaxSyncFrame + 2*peers*crdtstore.SmallFrame
	buffered := checkSyncBuffered(t, victim.s, bound)
	t.Logf("%d streams × %d MiB declared: %d MB sent, victim buffered at most %d MB (bound %d MB), heap +%d MB; %s",
		attackers*streams, declared>>20, sent.Load()>>20, buffered>>20, bound>>20, grew>>20, limitsSummary(victim.s))
	// Sanity: the heap in use, with room for the collector's headroom
	// (GOGC=100: the buffers outgrown lie there until it runs) and the
	// streams' own buffers.
	if grew > 3*bound {
		t.Fatalf("heap grew by %d MB during the attack (bound %d MB of sync buffers)", grew>>20, bound>>20)
	}
	if request {
		checkRefusedAndLogged(t, victim.s, &logs, bad[0], "frame")
	}
}

// Attack 4, second part: a loop of empty-context sync requests on 16
// streams (6.2 GB sent in 30 s before), and on one stream (whose replies
// no newer stream of the same peer resets). The attacker gets at most its
// reply budget (MaxSyncFrame at once, refilled over a minute) plus one
// reply, and honest syncs with the victim still succeed.
func TestLoopbackSyncRequestFloodBounded(t *testing.T) {
	for _, streams := range []int{16, 1} {
		t.Run(fmt.Sprintf("%d streams", streams), func(t *testing.T) { syncRequestFlood(t, streams) })
	}
}

func syncRequestFlood(t *testing.T, streams int) {
	var logs logSink
	opts := fastOptions()
	opts.MaxSyncFrame = 8 << 20
	opts.Logger = logs.logger()
	victim := startStoreNodeWith(t, node.Config{}, opts)
	v := strings.Repeat("v", 100)
	for i := range 10000 {
		mustSet(t, victim.s, fmt.Sprintf("key/%05d", i), v)
	}
	snapshot := int64(crdtstore.SnapshotBytes(victim.s))
	honest := startStoreNodeWith(t, node.Config{}, fastOptions())
	connect(t, honest, victim)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := honest.s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	attacker := startNode(t, node.Config{})
	connect(t, attacker, victim)

	const attack = 3 * time.Second
	var got, replies, requests atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			for time.Since(start) < attack {
				s, err := openRaw(ctx, attacker, victim)
				if err != nil {
					return
				}
				requests.Add(1)
				cr := &countingReader{r: s}
				r := bufio.NewReader(cr)
				_, err = s.Write(append(binary.AppendUvarint(nil, uint64(len(emptyContext)+1)), append([]byte{crdtstore.FrameContext}, emptyContext...)...))
				if err == nil {
					// A whole reply: the delta and the context. Then
					// "equal", which ends the exchange.
					if k, _, err := readRawFrame(r); err == nil && k == crdtstore.FrameDelta {
						if _, _, err := readRawFrame(r); err == nil {
							replies.Add(1)
							_, _ = s.Write([]byte{1, crdtstore.FrameEqual})
						}
					}
				}
				_, _ = io.Copy(io.Discard, r)
				got.Add(cr.n) // every byte read, whole frames or not
				_ = s.Reset()
			}
		})
	}
	// Honest syncs, both ways, each carrying a write, during the attack.
	for i := range 5 {
		key := fmt.Sprintf("honest/%d", i)
		mustSet(t, victim.s, key, "x")
		testutil.Eventually(t, 10*time.Second, "an honest sync", func() bool {
			return crdtstore.SyncNow(honest.s, string(victim.n.ID())) == nil && has(honest.s, key)
		})
		mustSet(t, honest.s, key+"/back", "y")
		testutil.Eventually(t, 10*time.Second, "an honest sync the other way", func() bool {
			return crdtstore.SyncNow(victim.s, string(honest.n.ID())) == nil && has(victim.s, key+"/back")
		})
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	served := got.Load()
	budget := int64(opts.MaxSyncFrame)
	// The budget, one reply that started within it (the snapshot and a
	// context of a few bytes), its refill over the attack, and a 2-byte
	// "busy" per request.
	bound := budget + (snapshot + 4<<10) + int64(float64(budget)*elapsed.Seconds()/crdtstore.ServeBytesWindow.Seconds()) + 2*requests.Load()
	t.Logf("%d streams for %v: %d requests, %d full replies, %d KB served to the attacker (bound %d KB; snapshot %d KB)",
		streams, elapsed.Round(time.Millisecond), requests.Load(), replies.Load(), served>>10, bound>>10, snapshot>>10)
	checkFlood(t, victim.s, &logs, attacker)
	if served > bound {
		t.Fatalf("served %d KB to one peer in %v, over its budget of %d KB", served>>10, elapsed, bound>>10)
	}
}

// refusedLogged reports whether logs hold a Warn about p from the sync
// limits.
func refusedLogged(logs *logSink, p testNode) bool {
	out := logs.String()
	return strings.Contains(out, "sync limit refused a peer") && strings.Contains(out, p.n.ID().String())
}
