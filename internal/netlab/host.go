package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/reflectmesh/reflect/internal/netns"
)

// A Host is one machine of a lab: a network namespace cabled to the bridge.
type Host struct {
	lab   *Lab
	index int        // 1-based
	ns    string     // namespace name
	port  string     // bridge port in the bridge namespace
	ip    netip.Addr // on veth0
	mac   string     // veth0's, fixed: the other hosts know it (permanent neighbour entries)
}

// Name returns the host's network namespace name, as for `ip netns exec`.
func (h *Host) Name() string { return h.ns }

// Index returns the host's number in its lab, counting from 1.
func (h *Host) Index() int { return h.index }

// IP returns the host's IPv4 address on veth0.
func (h *Host) IP() netip.Addr { return h.ip }

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

func (h *Host) String() string { return fmt.Sprintf("h%d", h.index) }

// Command returns a command that runs name with args inside the host's
// network namespace, as `ip netns exec NAMESPACE name args...`; ip switches
// namespace and then executes name in its own place, so the command's process
// is the program itself (Process.Pid is its PID). The environment is this
// process's plus netns.HostEnv naming the host, and the process gets SIGKILL
// if the thread that starts it exits (PR_SET_PDEATHSIG): do not start it from
// a goroutine locked to its thread with runtime.LockOSThread that may end
// before it. As with exec.CommandContext, ctx kills the process when done.
//
// The caller owns the command; Close kills its process anyway if it is still
// in the lab. Use Start, or StartCmd, to have the lab track it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	env := os.Environ()
	for i := 0; i < len(env); i++ {
		if strings.HasPrefix(env[i], netns.HostEnv+"=") {
			env = append(env[:i], env[i+1:]...)
			i--
		}
	}
	cmd.Env = append(env, netns.HostEnv+"="+h.ns)
	cmd.SysProcAttr = procAttr()
	return cmd
}

// Start starts name with args on the host as a tracked process; see Proc and
// Command. ctx bounds the process's life; Close kills it in any case.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return h.StartCmd(h.Command(ctx, name, args...))
}

// StartCmd starts cmd, made by h.Command and perhaps adjusted (Env, Dir), as a
// tracked process. Its Stdin, Stdout and Stderr must be nil: the Proc
// provides them.
func (h *Host) StartCmd(cmd *exec.Cmd) (*Proc, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("netlab: StartCmd: Stdin, Stdout and Stderr must be nil")
	}
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, l.errClosed()
	}
	p, err := startProc(h, cmd, &l.wg)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	return p, nil
}
