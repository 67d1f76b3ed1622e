//go:build !unix

package cluster

// freeBytes cannot tell here: the store's own errors say when it is full.
func freeBytes(string) (uint64, bool) { return 0, false }
