// Package testutil holds what the tests of several packages share: one way
// to wait for a condition (Eventually) and one driver for reflect-demo's
// -json protocol. It is imported by tests only.
package testutil
