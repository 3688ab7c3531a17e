package readme

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// snippets holds README.md's Go snippets as one program: each may start
// with an import statement; the rest of each is code that runs in order,
// using what the snippets before it declared (as the README reads).
type snippets struct {
	imports []string
	body    []string
	lines   []int // README.md line of each snippet's first line
}

// importSpec matches an import spec of a line whose "import" keyword and
// parenthesis are removed: an optional name ("_" included), then the path.
var importSpec = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*\s+)?("[^"]+")`)

// extract finds the ```go snippets of the README.
func extract(t *testing.T, readme string) snippets {
	t.Helper()
	var out snippets
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		start := i + 1
		j := start
		for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
			j++
		}
		if j == len(lines) {
			t.Fatalf("README.md:%d: unterminated Go snippet", i+1)
		}
		snippet := lines[start:j]
		i = j
		k := 0 // lines of the import statement
		if len(snippet) > 0 && strings.HasPrefix(snippet[0], "import") {
			k = 1
			if strings.HasSuffix(strings.TrimSpace(snippet[0]), "(") {
				for k < len(snippet) && strings.TrimSpace(snippet[k]) != ")" {
					k++
				}
				k++
			}
			for _, l := range snippet[:min(k, len(snippet))] {
				l = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(l), "import"), " (")
				if m := importSpec.FindStringSubmatch(l); m != nil {
					out.imports = append(out.imports, strings.TrimSpace(strings.TrimSpace(m[1])+" "+m[2]))
				}
			}
		}
		out.body = append(out.body, snippet[min(k, len(snippet)):]...)
		out.lines = append(out.lines, start+1)
	}
	return out
}

// prelude is what the snippets take for granted: the application types
// they name. (ctx is the program's parameter.)
const prelude = `
type Point struct{ X, Y int }

type User struct{ Name string }
`

// source renders the snippets as a Go file. Standard-library packages they
// use are imported for them, as an editor would; the project's own they
// must import themselves, as a newcomer needs to see.
func source(s snippets) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"context\"\n")
	seen := map[string]bool{`"context"`: true}
	for _, imp := range s.imports { // `"path"` or `name "path"`
		if !seen[imp] {
			seen[imp] = true
			fmt.Fprintf(&b, "\t%s\n", imp)
		}
	}
	body := strings.Join(s.body, "\n")
	for _, std := range []string{"fmt", "log", "time"} {
		if !seen[strconv.Quote(std)] && strings.Contains(body, std+".") {
			fmt.Fprintf(&b, "\t%q\n", std)
		}
	}
	b.WriteString(")\n" + prelude)
	fmt.Fprintf(&b, "\n// README.md, the snippets at lines %v\nfunc program(ctx context.Context) {\n%s\n}\n", s.lines, body)
	b.WriteString("\nfunc main() { program(context.Background()) }\n")
	return b.String()
}

// TestSnippetsCompile type-checks the README's snippets against the
// packages of this module: what they call must exist with those
// signatures, and what they declare must be used (go vet too).
func TestSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a program")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snips := extract(t, string(readme))
	if len(snips.lines) < 3 {
		t.Fatalf("found %d Go snippets in README.md, want at least 3 (pub/sub, more than maps, the store)", len(snips.lines))
	}
	// A package inside this module, so that its imports resolve to the
	// working tree: a directory of the test's own under internal/readme.
	dir, err := os.MkdirTemp(".", "snippets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	src := source(snips)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md's snippets do not compile:\n%s\nas one program:\n%s", out, numbered(src))
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, l)
	}
	return b.String()
}
