package pnet

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"unicode/utf8"
)

// MinSecretLength is the length, in characters (Unicode code points), below
// which Weak reports a passphrase as weak.
const MinSecretLength = 16

// generatedSecretBytes is the entropy of GenerateSecret: 160 bits.
const generatedSecretBytes = 20

// lowerBase32 renders generated secrets: letters a-z and digits 2-7, no
// padding, so they survive URLs, shells, double-click selection and
// environment variables unquoted.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// GenerateSecret returns a new random passphrase of 32 characters from
// [a-z2-7] carrying 160 bits from crypto/rand. It is meant for
// FromPassphrase (the mesh is then as strong as its 128-bit-plus secret,
// whatever the Argon2id cost).
func GenerateSecret() (string, error) {
	var b [generatedSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pnet: generate secret: %w", err)
	}
	return lowerBase32.EncodeToString(b[:]), nil
}

// Weak reports whether secret is shorter than MinSecretLength characters
// (the empty secret is weak). It is only a length check: a long but
// predictable phrase is not caught. Nodes should log a warning for weak
// secrets; they still work.
func Weak(secret string) bool {
	return utf8.RuneCountInString(secret) < MinSecretLength
}
