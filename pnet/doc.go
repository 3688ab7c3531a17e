// Package pnet turns a mesh secret into the libp2p private network key (PSK)
// and the per-mesh names (mDNS service tag, pubsub topic prefix, stream
// protocol prefix, log fingerprint). It does no I/O of its own.
//
// # Sources
//
// A Network comes from one of:
//
//   - FromPassphrase: a human secret, stretched with Argon2id, then expanded
//     with HKDF-SHA256. The secret is used exactly as given, byte for byte
//     as UTF-8: no trimming, case folding or Unicode normalization, so a
//     trailing newline from a file makes a different mesh. Results are
//     cached per secret for the life of the process.
//   - FromKey: a uniformly random 32-byte key, used as the PSK as is.
//   - ParseSwarmKey: a standard libp2p swarm key file (/base16/, /base64/
//     or /bin/), as used by IPFS; the PSK is the file's key. SwarmKey writes
//     one back, so other libp2p tools can join the mesh.
//
// GenerateSecret makes a strong random passphrase; Weak flags secrets
// shorter than MinSecretLength characters, for which nodes log a warning.
//
// # Derivation, version 1
//
// Never changed without a version bump; golden vectors in pnet_test.go.
//
//	passphrase: master = Argon2id(secret, salt "reflect/pnet/v1",
//	                              t=2, m=19456 KiB (19 MiB), p=1, 32 bytes)
//	            PSK    = HKDF-SHA256(master, info "reflect/pnet/v1/psk", 32 bytes)
//	raw/swarm:  master = PSK = the key
//	names:      HKDF-SHA256(master, no salt, info "reflect/pnet/v1/<label>"), hex:
//	            mdns        5 bytes  ServiceTag     "_rfl-<10 hex>._udp"
//	            topic       8 bytes  TopicPrefix    "rfl/<16 hex>/"
//	            proto       8 bytes  ProtocolPrefix "/rfl/<16 hex>"
//	            fingerprint 8 bytes  Fingerprint    "<16 hex>"
//
// The Argon2id cost is OWASP's minimum. Measured with BenchmarkArgon2id on
// the development machine (2 shared cores of an AMD EPYC, Go 1.26): about
// 22-26 ms and 19 MiB per derivation. Every node and every guess by an
// attacker pays that once per secret. A process's first derivation also
// has the kernel fault in and zero the 19 MiB: about 95 ms in all there.
// FromPassphrase gives the 19 MiB back to the OS before it returns
// (runtime/debug.FreeOSMemory: one forced garbage collection per
// derivation, 4-12 ms after a fresh process's first one); left to the
// runtime, they stayed resident in an idle node for minutes.
//
// # What pnet protects
//
// libp2p's private network wraps every connection, below Noise, in XSalsa20
// keyed by the PSK. Peers without the secret cannot complete a handshake, so
// outsiders can neither connect to the mesh nor read or inject its traffic.
// Different secrets also give different mDNS tags, topics and protocol IDs,
// so meshes sharing a LAN or a peer do not mix.
//
// # What it does not protect
//
//   - pnet has no MAC: it only encrypts. Integrity and peer authentication
//     come from Noise above it, which must never be disabled.
//   - Anyone who records one connection can test guesses of a passphrase
//     offline (the stream after the nonce has known plaintext). Argon2id
//     makes each guess cost ~20 ms and 19 MiB; it does not make a weak
//     secret safe. Use GenerateSecret, or at least MinSecretLength
//     characters of something unguessable. Raw 32-byte keys are not
//     guessable.
//   - The same offline check is possible from the ServiceTag (broadcast
//     in mDNS adverts, visible to everyone on the LAN) and from the
//     Fingerprint wherever logs are shown: neither reveals the PSK, but each
//     confirms a correct guess at the same Argon2id cost. The adverts also
//     reveal that a mesh, and which one, is present on the LAN.
//   - Only stream transports are covered: go-libp2p refuses a PSK with
//     QUIC, WebTransport and WebRTC (and with a shared TCP listener), so a
//     node using one must listen on TCP (or WebSocket) only.
//   - There is no key rotation: a new secret means a new PSK and new names,
//     so every node must restart with it, and old and new nodes cannot
//     talk during the change. A member who leaves keeps the secret.
//   - The cache keeps derived keys (and a SHA-256 of each passphrase) in
//     memory for the life of the process.
package pnet
