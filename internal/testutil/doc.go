// Package testutil holds what the tests of several packages share: one way
// to wait for a condition (Eventually) and one driver for reflect-demo's
// -json protocol (Demo), which reads any LineSource: a netlab.Proc, or a
// process started with StartCmd (Cmd, over Lines). It is imported by tests
// only.
package testutil
