package main

import (
	"crypto/rand"
	"runtime"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/salsa20"
)

// CryptoCeiling is the most a Reflect subscriber could receive of large
// messages on this machine if encryption were all the CPU did: every byte
// delivered is encrypted and decrypted once by each of Reflect's two
// layers, the private network's XSalsa20 and Noise's ChaCha20-Poly1305
// (x/crypto, 64 KiB buffers, one core each), and the machine's cores are
// shared by the publisher's N−1 encryptions and the subscribers'
// decryptions.
type CryptoCeiling struct {
	XSalsa20MBps   float64 `json:"xsalsa20_mb_per_sec"`
	ChaChaPolyMBps float64 `json:"chacha20poly1305_mb_per_sec"`
	// MSPerMB is the CPU time per MB delivered: encrypt + decrypt, both
	// layers.
	MSPerMB float64 `json:"cpu_ms_per_mb_delivered"`
	Cores   int     `json:"cores"`
}

// perSubscriber is the ceiling in MB/s per subscriber with n−1 of them.
func (c *CryptoCeiling) perSubscriber(n int) float64 {
	if c == nil || c.MSPerMB <= 0 || n < 2 {
		return 0
	}
	return float64(c.Cores) * 1000 / c.MSPerMB / float64(n-1)
}

// measureCrypto times both ciphers for about 300 ms each.
func measureCrypto() *CryptoCeiling {
	buf := make([]byte, 64<<10)
	var key [32]byte
	_, _ = rand.Read(key[:])
	nonce := make([]byte, 24)
	rate := func(f func()) float64 {
		f() // warm
		var n int
		start := time.Now()
		for time.Since(start) < 300*time.Millisecond {
			f()
			n++
		}
		return float64(n*len(buf)) / time.Since(start).Seconds() / mb
	}
	c := &CryptoCeiling{Cores: runtime.NumCPU()}
	c.XSalsa20MBps = rate(func() { salsa20.XORKeyStream(buf, buf, nonce, &key) })
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil
	}
	sealed := make([]byte, 0, len(buf)+aead.Overhead())
	c.ChaChaPolyMBps = rate(func() { sealed = aead.Seal(sealed[:0], nonce[:aead.NonceSize()], buf, nil) })
	c.MSPerMB = 2 * (1/c.XSalsa20MBps + 1/c.ChaChaPolyMBps) * 1000
	return c
}
