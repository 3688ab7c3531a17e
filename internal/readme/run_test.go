package readme

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// runMain is the main of a snippet run as a program: the snippet gets a
// context that ends after a while, as an app's would at Ctrl-C.
const runMain = `
func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	program(ctx)
}
`

// TestFirstSnippetRuns does what the README says of its first snippet:
// "Start it twice with the same Key on one network: each instance finds the
// other, and prints got hello from it." Two copies start at once, found by
// mDNS in the test's namespace, three times over.
func TestFirstSnippetRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs a program")
	}
	netns.Require(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	all := extract(t, string(readme))
	first := extract(t, "```go\n"+firstSnippet(t, string(readme))+"\n```\n")
	if len(all.lines) == 0 || !strings.Contains(strings.Join(first.body, "\n"), "Broadcast") {
		t.Fatalf("the README's first Go snippet does not broadcast:\n%s", strings.Join(first.body, "\n"))
	}
	first.lines = all.lines[:1]
	src := strings.Replace(source(first), "\nfunc main() { program(context.Background()) }\n", runMain, 1)
	if !strings.Contains(src, `"time"`) {
		src = strings.Replace(src, "import (\n", "import (\n\t\"time\"\n", 1)
	}
	dir, err := os.MkdirTemp(".", "snippet1-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "snippet1")
	if out, err := exec.Command("go", "build", "-o", bin, "./"+filepath.Base(dir)).CombinedOutput(); err != nil {
		t.Fatalf("building the first snippet: %v\n%s\n%s", err, out, numbered(src))
	}
	for round := range 3 {
		got := make(chan string, 2)
		var cmds []*exec.Cmd
		for range 2 {
			cmd := exec.Command(bin)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if strings.TrimSpace(sc.Text()) == "got hello" {
						got <- sc.Text()
						return
					}
				}
				got <- ""
			}()
		}
		n := 0
		timeout := time.After(15 * time.Second)
	wait:
		for n < 2 {
			select {
			case line := <-got:
				if line == "" {
					break wait // an instance ended without it
				}
				n++
			case <-timeout:
				break wait
			}
		}
		for _, cmd := range cmds {
			_ = cmd.Process.Kill() // ours, by its PID
			_ = cmd.Wait()
		}
		if n != 2 {
			t.Fatalf("round %d: %d of 2 instances printed \"got hello\"", round+1, n)
		}
	}
}

// firstSnippet returns the body of the README's first Go snippet.
func firstSnippet(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "```go\n")
	if !ok {
		t.Fatal("no Go snippet in README.md")
	}
	body, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatal("unterminated Go snippet")
	}
	return body
}
