// Package units formats quantities for people: the sizes and counts that logs, errors
// and the demo's progress lines show.
package units
