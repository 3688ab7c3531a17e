package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/pubsub"
)

// Command flags. A command's flags come before its arguments, so that they
// can never be taken for message text: "pub -h k=v chat hello" publishes
// "hello" with a header, "pub chat -h k=v" publishes the text "-h k=v".
// "--" ends the flags (for a topic starting with '-'). Commands whose
// arguments are all single words (sub, unsub, unreply) also take their
// flags after the topic: "sub jobs -q workers". A flag's value is one word,
// or a Go string literal for one with spaces or escapes: -h "k=two words".

// flagLetters are the flags each command takes.
var flagLetters = map[string]string{
	"sub": "q", "unsub": "q", "unreply": "q",
	"pub": "h", "send": "h", "req": "th", "reply": "qed",
}

// errNotFlag: the word at the start is an argument, not a flag.
var errNotFlag = errors.New("not a flag")

// parseFlag reads the flag at the start of s (after spaces) into c and
// returns what follows it. It returns errNotFlag, with s, when s starts with
// an argument, and the rest after "--" with errNotFlag too.
func parseFlag(c *command, s string) (string, error) {
	word, rest := cut(s)
	switch {
	case word == "--":
		return rest, errNotFlag
	case len(word) < 2 || word[0] != '-':
		return s, errNotFlag
	case len(word) != 2 || !strings.ContainsRune(flagLetters[c.name], rune(word[1])):
		return s, fmt.Errorf("unknown flag %s (%w)", word, usageError(c.name))
	}
	letter := word[1]
	if letter == 'e' {
		c.fail = true
		return rest, nil
	}
	v, rest, err := flagValue(rest)
	if err != nil {
		return s, fmt.Errorf("%s: %w (%w)", word, err, usageError(c.name))
	}
	switch letter {
	case 'q':
		if v == "" {
			return s, fmt.Errorf("-q: the group name is empty")
		}
		c.group = v
	case 'h':
		k, val, found := strings.Cut(v, "=")
		if !found || k == "" {
			return s, fmt.Errorf("-h %q: want KEY=VALUE", v)
		}
		if c.header == nil {
			c.header = pubsub.Header{}
		}
		c.header.Add(k, val)
	case 't', 'd':
		if c.timeout, err = parseTimeout([]string{v}); err != nil {
			return s, fmt.Errorf("-%c: %w", letter, err)
		}
	}
	return rest, nil
}

// flagValue reads a flag's value: a Go string literal, or one word.
func flagValue(s string) (v, rest string, err error) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", s, errors.New("bad quoted value")
		}
		rest := s[len(q):]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return "", s, errors.New("no space after the quoted value")
		}
		v, _ = strconv.Unquote(q) // QuotedPrefix checked it
		return v, strings.TrimLeft(rest, " \t"), nil
	}
	v, rest = cut(s)
	if v == "" {
		return "", s, errors.New("missing value")
	}
	return v, rest, nil
}

// parseCmdFlags reads the flags at the start of s and returns the rest.
func parseCmdFlags(c *command, s string) (string, error) {
	for {
		rest, err := parseFlag(c, s)
		if errors.Is(err, errNotFlag) {
			return rest, nil
		} else if err != nil {
			return s, err
		}
		s = rest
	}
}

// parseWords parses "[FLAGS] TOPIC [FLAGS]" (sub, unsub, unreply).
func parseWords(c *command, s string) error {
	rest, err := parseCmdFlags(c, s)
	if err != nil {
		return err
	}
	c.topic, rest = cut(rest)
	if rest, err = parseCmdFlags(c, rest); err != nil {
		return err
	}
	if c.topic == "" || strings.TrimSpace(rest) != "" {
		return usageError(c.name)
	}
	return nil
}

// parseMessage parses "[FLAGS] [PEER] TOPIC MESSAGE" (pub, send, req,
// reply; PEER for send only). MESSAGE is the rest of the line, spaces kept.
func parseMessage(c *command, s string) error {
	switch c.name {
	case "req", "send":
		c.timeout = defaultCallWait
	}
	rest, err := parseCmdFlags(c, s)
	if err != nil {
		return err
	}
	if c.name == "send" {
		var id string
		if id, rest = cut(rest); id != "" {
			if c.peer, err = peer.Decode(id); err != nil {
				return fmt.Errorf("bad peer id %q (as printed by peers or id)", id)
			}
		}
	}
	topic, msg := cut(rest)
	if topic == "" || strings.TrimSpace(msg) == "" {
		return usageError(c.name)
	}
	c.topic = topic
	if c.fail {
		c.data = []byte(msg) // the error text, verbatim
		return nil
	}
	c.data, err = pubData(msg)
	return err
}
