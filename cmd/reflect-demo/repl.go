package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one input line: a value or message of up to the default
// 1 MiB pub/sub limit, with room for the command.
const maxLine = 1<<20 + 64<<10

// errLineTooLong is the reply to a line longer than maxLine.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// line is one line of input, or the error that ended the input.
type line struct {
	text    string
	tooLong bool // text holds only the line's start
	err     error
}

// readLines sends the lines of r to lines and closes it at the end of
// input (after sending a line with err set if reading failed).
func readLines(r io.Reader, lines chan<- line) {
	defer close(lines)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		l, err := readLine(br, maxLine)
		if l.text != "" || l.tooLong {
			lines <- l
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				lines <- line{err: err}
			}
			return
		}
	}
}

// readLine reads one line of at most limit bytes, without its line ending.
// Of a longer line it keeps the first bytes, discards the rest and sets
// tooLong. The error is io.EOF at the end of input (with the last line, if
// it had no newline).
func readLine(br *bufio.Reader, limit int) (line, error) {
	var b strings.Builder
	var l line
	for {
		chunk, err := br.ReadSlice('\n')
		if !l.tooLong {
			if b.Len()+len(chunk) > limit+2 { // +2: \r\n
				l.tooLong = true
				b.Write(chunk[:min(len(chunk), 64)])
			} else {
				b.Write(chunk)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		l.text = strings.TrimRight(b.String(), "\r\n")
		return l, err
	}
}

// repl runs the commands that read sends until the end of input, quit, or
// ctx ending (a signal). read sends the lines of the input and closes the
// channel at its end (readLines, or a terminal's). repl returns an error
// only if reading failed.
func (d *demo) repl(ctx context.Context, read func(chan<- line)) error {
	lines := make(chan line)
	// On a signal this goroutine may stay blocked in Read; the process exits.
	go read(lines)
	for {
		d.out.showPrompt()
		var l line
		var more bool
		select {
		case <-ctx.Done():
			return nil
		case l, more = <-lines:
		}
		switch {
		case !more:
			return nil
		case l.err != nil:
			return fmt.Errorf("reading commands: %w", l.err)
		case l.tooLong:
			name, _ := cut(l.text)
			d.out.reply(failure(name, errLineTooLong))
			continue
		}
		c, err := parseLine(l.text)
		switch {
		case errors.Is(err, errSkip):
			continue
		case err != nil:
			d.out.reply(failure(c.name, err))
			continue
		}
		r := d.exec(ctx, c)
		if _, failed := r.(errorReply); failed && ctx.Err() != nil {
			r = failure(c.name, errors.New("interrupted"))
		}
		d.out.reply(r)
		if c.name == "quit" || ctx.Err() != nil {
			return nil
		}
	}
}
