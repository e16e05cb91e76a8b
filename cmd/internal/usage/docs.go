package usage

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand is the hidden `PROG man DIR`: it writes the section-1 man pages of root's
// whole tree into DIR, one per command (PROG.1, PROG-SUB.1, ...). `make packages` runs it.
func manCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write the man pages of every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return ManPages(root, args[0])
		},
	}
}

// ManPages writes the section-1 man pages of root and every available subcommand into
// dir. The date in the header is SOURCE_DATE_EPOCH's when set (reproducible packages).
func ManPages(root *cobra.Command, dir string) error {
	Setup(root)
	h := &doc.GenManHeader{Section: "1", Source: "Switchyard", Manual: "Switchyard Manual"}
	if err := doc.GenManTree(root, h, dir); err != nil {
		return fmt.Errorf("usage: man pages: %w", err)
	}
	return nil
}

// Markdown renders root's tree for docs/commands.md: a heading per available command (the
// completion command's shell subcommands and cobra's help command left out), its one-line
// description, and its help block.
func Markdown(root *cobra.Command) string {
	Setup(root)
	var b bytes.Buffer
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		fmt.Fprintf(&b, "### %s\n\n", c.CommandPath())
		if c.Short != "" {
			fmt.Fprintf(&b, "%s\n\n", c.Short)
		}
		b.WriteString("```\n")
		PrintHelp(&b, c)
		b.WriteString("```\n\n")
		if c.Name() == "completion" && c.HasParent() {
			return
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && sub.Name() != "help" {
				visit(sub)
			}
		}
	}
	visit(root)
	return strings.TrimRight(b.String(), "\n") + "\n"
}
