package testutil

import "runtime/metrics"

// HeapResident reads the Go heap that is mapped and not returned to the
// OS: live and dead objects, fragmentation, and free spans not yet
// released.
func HeapResident() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	var sum uint64
	for _, x := range s {
		sum += x.Value.Uint64()
	}
	return sum
}
