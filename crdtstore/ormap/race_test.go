//go:build race

package ormap

// raceEnabled is true under -race; the tests then run fewer random cases,
// seeds and operations.
const raceEnabled = true
