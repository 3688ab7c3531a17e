package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// maxIdentityFile bounds what we read from an identity file.
const maxIdentityFile = 16 << 10

// LoadIdentity reads the private key in path, or creates a new Ed25519 key
// there (mode 0600, written atomically) if the file does not exist. The file
// holds the key in libp2p's protobuf encoding.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(data) > maxIdentityFile {
			return nil, fmt.Errorf("%w: %s: %d bytes is too large for a key", ErrIdentity, path, len(data))
		}
		k, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrIdentity, path, err)
		}
		return k, nil
	case errors.Is(err, fs.ErrNotExist):
		return createIdentity(path)
	default:
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
}

func createIdentity(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate key: %w", ErrIdentity, err)
	}
	data, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: encode key: %w", ErrIdentity, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: write %s: %w", ErrIdentity, path, err)
	}
	// Link, not rename: if another process created the file meanwhile, keep
	// theirs and use it, so two starts never end up with different ids.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadIdentity(path)
		}
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return k, nil
}
