package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// run runs a setup command to completion, feeding it stdin (a script for
// `ip -batch -` or `nft -f -`) if not empty. Its error wraps the exec error
// and names the command, its output and its script.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out // ip and nft report problems on either
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	var detail string
	if s := strings.TrimSpace(out.String()); s != "" {
		detail = ": " + s
	}
	if stdin != "" {
		detail += "\ninput was:\n" + strings.TrimRight(stdin, "\n")
	}
	return fmt.Errorf("netlab: %s: %w%s", strings.Join(cmd.Args, " "), err, detail)
}
