package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// participantCmd is the hidden subcommand that runs one participant of the
// -procs mode: `bench participant -system S -role R [-url U] [-ca F]`.
// The parent (procs.go) drives it over stdin and stdout (procs_proto.go);
// everything the participant's libraries print goes to stderr, so that
// stdout carries only replies. natsServerCmd runs a NATS server the same
// way (procs_nats.go).
const (
	participantCmd = "participant"
	natsServerCmd  = "nats-server"
)

// errParticipantFlags is a participant started with flags it cannot use.
var errParticipantFlags = errors.New("participant flags")

// runParticipant runs the participant subcommand and returns the exit code.
func runParticipant(args []string, stdin io.Reader, stdout *os.File, stderr io.Writer) int {
	fs := flag.NewFlagSet(participantCmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	system := fs.String("system", "", "reflect, nats, nats-tls or redis")
	role := fs.String("role", "sub", "pub or sub")
	url := fs.String("url", "", "the server to connect to (nats, nats-tls: nats:// or tls:// URL; redis: host:port)")
	ca := fs.String("ca", "", "nats-tls: PEM file of the CA that signed the server's certificate")
	key := fs.String("key", "", "reflect: the network's secret (pnet.GenerateSecret)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := newMember(ctx, *system, *role == "pub", *url, *ca, *key)
	if err != nil {
		fmt.Fprintf(stderr, "participant %s/%s: %v\n", *system, *role, err)
		return 1
	}
	// Libraries that print to stdout must not break the protocol.
	os.Stdout = os.Stderr
	if err := serve(ctx, stdin, stdout, m); err != nil {
		fmt.Fprintf(stderr, "participant %s/%s: %v\n", *system, *role, err)
		return 1
	}
	return 0
}

// newMember starts the participant of one system.
func newMember(ctx context.Context, system string, pub bool, url, ca, key string) (member, error) {
	switch system {
	case "reflect":
		return newReflectMember(key)
	case "nats", "nats-tls":
		if url == "" || (system == "nats-tls") != (ca != "") {
			return nil, fmt.Errorf("%w: %s needs -url%s", errParticipantFlags, system, map[bool]string{true: " and -ca", false: " and no -ca"}[system == "nats-tls"])
		}
		return newNATSMember(url, ca)
	case "redis":
		if url == "" {
			return nil, fmt.Errorf("%w: redis needs -url", errParticipantFlags)
		}
		return newRedisMember(ctx, url, pub)
	}
	return nil, fmt.Errorf("%w: unknown -system %q", errParticipantFlags, system)
}
