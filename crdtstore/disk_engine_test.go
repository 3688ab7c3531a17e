package crdtstore_test

// The tests open stores with Options.Dir: the program (this test binary)
// imports the engine, as a user's must.
import _ "github.com/reflectmesh/reflect/crdtstore/disk"
