package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// uploadProgress counts the bytes read through it and tells a person how an upload goes:
// on a terminal a line redrawn at most every progressInterval (bytes sent, percent, rate),
// elsewhere (a log, a pipe) nothing until done prints one summary line.
type uploadProgress struct {
	r     io.Reader
	w     io.Writer
	tty   bool
	total int64
	now   func() time.Time

	done        int64
	start, last time.Time
}

// progressInterval is how often the terminal line is redrawn at most.
const progressInterval = 200 * time.Millisecond

// newUploadProgress reads r (total bytes long) and reports on w; the terminal line only when
// w is a terminal.
func newUploadProgress(r io.Reader, total int64, w io.Writer, now func() time.Time) *uploadProgress {
	f, ok := w.(*os.File)
	p := &uploadProgress{r: r, w: w, tty: ok && term.IsTerminal(int(f.Fd())), total: total, now: now}
	p.start = now()
	return p
}

func (p *uploadProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.tty {
		if t := p.now(); t.Sub(p.last) >= progressInterval {
			p.last = t
			fmt.Fprintf(p.w, "\ruploaded %s of %s (%d%%), %s/s   ", size(p.done), size(p.total), p.percent(), size(p.rate(t)))
		}
	}
	return n, err
}

// finish ends the report: the terminal line's newline, or the summary line.
func (p *uploadProgress) finish() {
	t := p.now()
	if p.tty {
		fmt.Fprintf(p.w, "\ruploaded %s of %s (%d%%), %s/s   \n", size(p.done), size(p.total), p.percent(), size(p.rate(t)))
		return
	}
	fmt.Fprintf(p.w, "uploaded %s (%d bytes) in %s, %s/s\n", size(p.done), p.done, t.Sub(p.start).Round(time.Millisecond), size(p.rate(t)))
}

func (p *uploadProgress) percent() int64 {
	if p.total <= 0 {
		return 0
	}
	return p.done * 100 / p.total
}

// rate is bytes per second since the start.
func (p *uploadProgress) rate(t time.Time) int64 {
	s := t.Sub(p.start).Seconds()
	if s <= 0 {
		return 0
	}
	return int64(float64(p.done) / s)
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
