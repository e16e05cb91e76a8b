package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress tells a person how a long transfer goes (an upload, a payload's verification or
// application): on a terminal a line redrawn at most every progressInterval with the bytes
// done, the percentage and the rate, ended by a newline when done; elsewhere (a log, a pipe)
// nothing, unless the caller asks for the one summary line at the end.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	now   func() time.Time

	start, last time.Time
	done, total int64
}

// progressInterval is how often the terminal line is redrawn at most.
const progressInterval = 200 * time.Millisecond

// newProgress reports on w, the line only when w is a terminal.
func newProgress(w io.Writer, label string, now func() time.Time) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), label: label, now: now, start: now()}
}

// update records done of total bytes and redraws the terminal line when due.
func (p *progress) update(done, total int64) {
	p.done, p.total = done, total
	if !p.tty {
		return
	}
	t := p.now()
	if done < total && t.Sub(p.last) < progressInterval {
		return
	}
	p.last = t
	fmt.Fprintf(p.w, "\r%s %s of %s (%d%%), %s/s   ", p.label, size(done), size(total), p.percent(), size(p.rate(t)))
	if done >= total {
		fmt.Fprintln(p.w)
	}
}

// summary prints, when w is not a terminal, one line with the bytes, the time and the rate
// (on a terminal the last line drawn says it).
func (p *progress) summary() {
	if p.tty {
		return
	}
	t := p.now()
	fmt.Fprintf(p.w, "%s %s (%d bytes) in %s, %s/s\n", p.label, size(p.done), p.done, t.Sub(p.start).Round(time.Millisecond), size(p.rate(t)))
}

func (p *progress) percent() int64 {
	if p.total <= 0 {
		return 0
	}
	return p.done * 100 / p.total
}

// rate is bytes per second since the start.
func (p *progress) rate(t time.Time) int64 {
	s := t.Sub(p.start).Seconds()
	if s <= 0 {
		return 0
	}
	return int64(float64(p.done) / s)
}

// progressReader updates p with the bytes read through it, of total.
type progressReader struct {
	r     io.Reader
	p     *progress
	n     int64
	total int64
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	r.p.update(r.n, r.total)
	return n, err
}

// size formats n bytes in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
