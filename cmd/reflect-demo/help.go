package main

import (
	"flag"
	"fmt"
	"runtime/debug"
	"strings"
)

// examples gives one example of each command, for -h.
var examples = map[string]string{
	"sub":              "sub orders.*",
	"unsub":            "unsub orders.*",
	"pub":              `pub -h trace=1 chat {"text": "hi", "n": 1}`,
	"send":             "send 12D3KooW... chat just for you",
	"req":              "req -t 2 time what time is it?",
	"reply":            "reply -q clocks time {\"now\": \"noon\"}",
	"unreply":          "unreply -q clocks time",
	"set":              "set color light blue",
	"get":              "get color",
	"del":              "del color",
	"keys":             "keys user/",
	"dump":             "dump user/",
	"watch":            "watch user/",
	"peers":            "peers",
	"id":               "id",
	"wait-peers":       "wait-peers 2 30",
	"wait-synced":      "wait-synced",
	"wait-subscribers": "wait-subscribers chat 1",
	"wait-responders":  "wait-responders time 1 5",
	"stats":            "stats",
	"help":             "help",
	"quit":             "quit",
}

// helpPage is the text of -h: how to run the demo, the flags (without the
// hidden ones), the commands with an example each, and the exit statuses.
func helpPage() string {
	var b strings.Builder
	b.WriteString(`usage: reflect-demo [flags]                  read commands from standard input
       reflect-demo [flags] COMMAND [ARG...]   run one command, print its result, exit

  reflect-demo -key SECRET                    by hand, in two terminals
  reflect-demo -key SECRET get color          one-shot: join, sync, print, exit
  reflect-demo -key SECRET pub chat hi        one-shot: join, wait for a peer, publish
  reflect-demo -key SECRET sub chat           one-shot: print messages until Ctrl-C
  printf 'wait-peers 1\nset k v\n' | reflect-demo -key SECRET -json   a script

Flags:
`)
	var o options
	fs := newFlagSet(&o)
	fs.VisitAll(func(f *flag.Flag) {
		if hiddenFlags[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		syn := "-" + f.Name
		if name != "" {
			syn += " " + name
		}
		fmt.Fprintf(&b, "  %-20s %s", syn, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && !strings.Contains(usage, "default") {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	b.WriteString("\nCommands (on standard input, one per line, or after the flags):\n")
	for _, u := range usage {
		fmt.Fprintf(&b, "  %s\n      %s\n      e.g. %s\n", strings.TrimSpace(u.name+" "+u.args), u.what, examples[u.name])
	}
	b.WriteString(`
Exit status: 0 when all went well; 1 when the demo could not start, could not
read its input or, reading commands from a pipe or file, with -json, or as a
one-shot COMMAND, when a command failed (a person at a terminal sees the
errors instead); 2 for bad usage (flags, no secret, invalid addresses or
COMMAND). In human mode errors go to standard error, results to standard
output. go doc github.com/reflectmesh/reflect/cmd/reflect-demo has the whole
contract.
`)
	return b.String()
}

// versionLine is the text of -version: the module version, and the VCS
// revision and Go version when the build recorded them.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "reflect-demo (no build information)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	s := "reflect-demo " + v
	var rev, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			modified = kv.Value
		}
	}
	if rev != "" {
		s += " revision " + rev
		if modified == "true" {
			s += " (modified)"
		}
	}
	if bi.GoVersion != "" {
		s += " " + bi.GoVersion
	}
	return s
}
