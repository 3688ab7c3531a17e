package pnet_test

import (
	"bytes"
	"fmt"

	"github.com/reflectmesh/reflect/pnet"
)

func ExampleFromPassphrase() {
	n, err := pnet.FromPassphrase("correct horse battery staple")
	if err != nil {
		panic(err)
	}
	fmt.Println(n.ServiceTag())
	fmt.Println(n.TopicPrefix() + "chat")
	fmt.Println(n.ProtocolPrefix() + "/store/sync/1.0.0")
	fmt.Println(n) // safe to log: fingerprint only
	// Output:
	// _rfl-82cfa8d5e3._udp
	// rfl/d59ee1011d5767fc/chat
	// /rfl/b21ee5e2abdf1b3b/store/sync/1.0.0
	// pnet(33380c134993c368, passphrase)
}

func ExampleGenerateSecret() {
	secret, err := pnet.GenerateSecret()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(secret), pnet.Weak(secret), pnet.Weak("hunter2"))
	// Output: 32 false true
}

func ExampleParseSwarmKey() {
	file := "/key/swarm/psk/1.0.0/\n/base16/\n" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
	n, err := pnet.ParseSwarmKey(bytes.NewReader([]byte(file)))
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Fingerprint(), bytes.Equal(n.SwarmKey(), []byte(file)))
	// Output: ee39155f15098b85 true
}
