// Package warnlog builds the default logger of Reflect's packages: warnings
// and errors go to slog.Default(), debug and info records are dropped.
package warnlog
