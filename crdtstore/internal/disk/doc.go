// Package disk is the on-disk engine of a persistent store.
package disk
