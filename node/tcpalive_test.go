package node

import (
	"testing"
	"time"

	"github.com/reflectmesh/reflect/pubsub"
)

func TestTCPAliveOptions(t *testing.T) {
	for _, c := range []struct {
		keepAlive, writeTimeout time.Duration
		idle                    time.Duration
		count                   int
		userTimeout             time.Duration
	}{
		{DefaultKeepAlive, DefaultWriteTimeout, 5 * time.Second, 3, 8 * time.Second},
		{time.Second, time.Second, time.Second, 3, 4 * time.Second},                // -fast-timers: three probes at the least
		{300 * time.Millisecond, time.Second, time.Second, 3, 4 * time.Second},     // the kernel counts whole seconds
		{5 * time.Second, 10 * time.Second, 5 * time.Second, 10, 15 * time.Second}, // a probe a second for WriteTimeout
	} {
		a := newTCPAlive(c.keepAlive, c.writeTimeout, nil)
		if a.idle != c.idle || a.interval != time.Second || a.count != c.count || a.userTimeout != c.userTimeout {
			t.Errorf("newTCPAlive(%v, %v) = idle %v, interval %v, count %d, user timeout %v; want %v, 1s, %d, %v",
				c.keepAlive, c.writeTimeout, a.idle, a.interval, a.count, a.userTimeout, c.idle, c.count, c.userTimeout)
		}
	}
}

func TestMuxerPingsOnlyWithoutKernelKeepalive(t *testing.T) {
	cfg := Config{KeepAlive: 2 * time.Second, WriteTimeout: 3 * time.Second}
	if m := muxer(cfg, true); m.EnableKeepAlive || m.ConnectionWriteTimeout != cfg.WriteTimeout {
		t.Errorf("with the kernel's keepalive: yamux keepalive %v, write timeout %v; want off, %v", m.EnableKeepAlive, m.ConnectionWriteTimeout, cfg.WriteTimeout)
	}
	if m := muxer(cfg, false); !m.EnableKeepAlive || m.KeepAliveInterval != cfg.KeepAlive || m.ConnectionWriteTimeout != cfg.WriteTimeout {
		t.Errorf("on other transports: yamux keepalive %v every %v, write timeout %v; want on, %v, %v", m.EnableKeepAlive, m.KeepAliveInterval, m.ConnectionWriteTimeout, cfg.KeepAlive, cfg.WriteTimeout)
	}
	// A full pub/sub batch frame, and a 64 KiB message's, fit one yamux
	// frame with its 12-byte header.
	if m, need := muxer(cfg, true), uint32(pubsub.DefaultMaxBatchBytes+8<<10+12); m.MaxMessageSize < need {
		t.Errorf("yamux frames of at most %d bytes; a full batch needs %d", m.MaxMessageSize, need)
	}
	// An idle connection is not woken every 30 s to measure its RTT.
	for _, kernel := range []bool{true, false} {
		if m := muxer(cfg, kernel); m.MeasureRTTInterval < 5*time.Minute {
			t.Errorf("yamux measures the RTT every %v; want 5 min or more", m.MeasureRTTInterval)
		}
	}
}
