package disk

import (
	"encoding/binary"
	"fmt"
)

// The format record is the one record of the reserved kind: key
// {kindFormat} + "format", value formatMagic followed by the version as a
// big-endian uint32 (12 bytes). Open writes it into an empty directory and
// checks it otherwise.
const (
	kindFormat    byte = 0
	formatName         = "format"
	formatVersion      = 1
	formatLen          = len(formatMagic) + 4
	lockName           = "REFLECT.LOCK"
)

const formatMagic = "reflect\x00"

func formatKey() []byte { return append([]byte{kindFormat}, formatName...) }

func encodeFormat(version uint32) []byte {
	b := make([]byte, 0, formatLen)
	b = append(b, formatMagic...)
	return binary.BigEndian.AppendUint32(b, version)
}

// decodeFormat returns the version in a format record: ErrCorrupt if b is
// not one, ErrFormat if its version is not one this code reads.
func decodeFormat(b []byte) (uint32, error) {
	if len(b) != formatLen || string(b[:len(formatMagic)]) != formatMagic {
		return 0, fmt.Errorf("%w: format record is %d bytes %q, want %d bytes starting %q",
			ErrCorrupt, len(b), clip(b), formatLen, formatMagic)
	}
	v := binary.BigEndian.Uint32(b[len(formatMagic):])
	if v != formatVersion {
		return v, fmt.Errorf("%w: on-disk format version %d, this build reads version %d", ErrFormat, v, formatVersion)
	}
	return v, nil
}

func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
