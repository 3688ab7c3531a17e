// Package readme holds the test that keeps README.md's Go snippets true to
// the API: it compiles them, as a newcomer would paste them into a program.
package readme
