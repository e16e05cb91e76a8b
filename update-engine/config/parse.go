package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Size limits of a configuration file.
const (
	MaxFileSize = 64 << 10
	MaxLineSize = 4 << 10
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("config: syntax error")

// SyntaxError says where a file is malformed.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("config: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// Assignment is one KEY=VALUE line.
type Assignment struct {
	Key, Value string
	Line       int
}

// Parse reads KEY=VALUE lines from r. name is used in error messages only. Later assignments of
// the same key are returned too; callers apply them in order so the last one wins.
func Parse(r io.Reader, name string) ([]Assignment, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, &SyntaxError{File: name, Line: 0, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}
	}
	var out []Assignment
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), MaxLineSize+1)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if len(line) > MaxLineSize {
			return nil, &SyntaxError{File: name, Line: n, Msg: "line too long"}
		}
		a, ok, err := parseLine(line)
		if err != nil {
			return nil, &SyntaxError{File: name, Line: n, Msg: err.Error()}
		}
		if ok {
			a.Line = n
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SyntaxError{File: name, Line: n + 1, Msg: "line too long"}
		}
		return nil, fmt.Errorf("config: reading %s: %w", name, err)
	}
	return out, nil
}

func parseLine(line string) (Assignment, bool, error) {
	s := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	if s == "" || s[0] == '#' {
		return Assignment{}, false, nil
	}
	if rest, ok := strings.CutPrefix(s, "export "); ok {
		s = strings.TrimLeft(rest, " \t")
	}
	key, val, ok := strings.Cut(s, "=")
	if !ok {
		return Assignment{}, false, errors.New("expected KEY=VALUE")
	}
	key = strings.TrimRight(key, " \t")
	if !validKey(key) {
		return Assignment{}, false, fmt.Errorf("invalid key %q", key)
	}
	v, err := unquote(strings.TrimLeft(val, " \t"))
	if err != nil {
		return Assignment{}, false, fmt.Errorf("key %s: %w", key, err)
	}
	return Assignment{Key: key, Value: v}, true, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote returns v without its quotes. An unquoted value ends at a " #" comment.
func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote")
		}
		if err := trailing(v[end+2:]); err != nil {
			return "", err
		}
		return v[1 : end+1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch c {
			case '\\':
				if i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
					b.WriteByte(v[i+1])
					i++
					continue
				}
				b.WriteByte(c)
			case '"':
				if err := trailing(v[i+1:]); err != nil {
					return "", err
				}
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double quote")
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimRight(v, " \t")
	if strings.ContainsAny(v, "\"'") {
		return "", errors.New("quote inside an unquoted value")
	}
	return v, nil
}

// trailing accepts only blanks or a comment after a closing quote.
func trailing(s string) error {
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return nil
	}
	return fmt.Errorf("unexpected %q after closing quote", s)
}
