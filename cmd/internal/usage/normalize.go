package usage

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Normalize rewrites the single-dash long flags in args (-config FILE, -listen=ADDR) to the
// double-dash form pflag parses (--config FILE), so command lines written for the standard
// flag package keep working. It follows the arguments down the command tree the way cobra
// will, and rewrites -NAME only when NAME (two characters or more) is a long flag of the
// command being run: shorthand clusters (-h, -vf), a lone "-", negative numbers, the value
// of a flag and everything after "--" are left alone.
func Normalize(root *cobra.Command, args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, 0, len(args))
	cmd := root
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			if name, _, _ := strings.Cut(a[1:], "="); len(name) > 1 && lookup(cmd, name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
		switch {
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			if f := lookup(cmd, name); f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				out = append(out, args[i]) // the flag's value, never a command name
			}
		case len(a) == 2 && a[0] == '-':
			if f := cmd.Flags().ShorthandLookup(a[1:]); f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		case strings.HasPrefix(a, "-"):
		case !positional:
			if sub := subcommand(cmd, a); sub != nil {
				cmd = sub
				continue
			}
			positional = true
		}
	}
	return out
}

func lookup(cmd *cobra.Command, name string) *pflag.Flag {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	return cmd.InheritedFlags().Lookup(name)
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

func isUsage(err error) bool { return errors.Is(err, ErrUsage) }
