package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// tools are the programs a lab runs, with the Debian package providing each.
var tools = []struct{ name, pkg string }{
	{"ip", "iproute2"},
	{"nft", "nftables"},
	{"sysctl", "procps"},
}

// Available returns nil if labs can be built here: Linux, root, and ip, nft
// and sysctl in PATH. Otherwise its error says everything that is missing.
func Available() error {
	return availability(runtime.GOOS, os.Geteuid(), exec.LookPath)
}

func availability(goos string, euid int, lookPath func(string) (string, error)) error {
	if goos != "linux" {
		return fmt.Errorf("netlab: network labs need Linux network namespaces (this is %s)", goos)
	}
	var missing []string
	if euid != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", euid))
	}
	for _, tool := range tools {
		if _, err := lookPath(tool.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s in PATH (apt-get install %s)", tool.name, tool.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("netlab: cannot build network labs: needs %s", strings.Join(missing, ", "))
	}
	return nil
}
