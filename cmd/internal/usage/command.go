package usage

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/buildinfo"
)

// Func is what a command does once cobra has parsed its flags: args are the positional
// arguments. It is the run(ctx, args, stdout, stderr) shape of cmd/ in STYLE.md.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Run adapts f to cobra's RunE.
func Run(f Func) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return f(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
}

// Group makes cmd a command that only holds subs: called without a subcommand it is the
// usage error "CMD needs a command", with an unknown one `unknown command "CMD WORD"`.
func Group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.AddCommand(subs...)
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = groupRunE
	return cmd
}

func groupRunE(c *cobra.Command, args []string) error {
	{
		path := commandPath(c)
		if len(args) == 0 {
			if path == "" {
				return fmt.Errorf("%w: no command given", ErrUsage)
			}
			return fmt.Errorf("%w: %s needs a command", ErrUsage, path)
		}
		if args[0] == "help" && len(args) == 1 {
			return c.Help() // PROG GROUP help, as PROG help
		}
		return fmt.Errorf("%w: unknown command %q", ErrUsage, strings.TrimSpace(path+" "+args[0]))
	}
}

// NoArgs refuses positional arguments with a usage error naming the first.
func NoArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, args[0])
	}
	return nil
}

// commandPath is cmd's path without the binary's name: "release publish", "" for the root.
func commandPath(cmd *cobra.Command) string {
	p := cmd.CommandPath()
	_, rest, _ := strings.Cut(p, " ")
	return rest
}

// Execute runs the command tree root with args the way every binary does (see the package
// comment) and returns the error for Report: a usage error names the command it came from.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) error {
	root.SetOut(stdout) // before Setup: the completion command keeps the writer it sees
	root.SetErr(stderr)
	Setup(root)
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		// Handled here rather than by cobra's version flag so that update-engine, whose
		// --version VALUE names the running version, prints the build's version too.
		fmt.Fprintln(stdout, buildinfo.String(root.Name()))
		return nil
	}
	args = Normalize(root, args)
	if args == nil {
		args = []string{} // nil makes cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && cmd != nil {
		return InCommand(commandPath(cmd), err)
	}
	return err
}

// Setup applies the conventions to the tree root: silenced cobra errors and usage, flag
// and argument errors as usage errors, the help block, --version, the completion and the
// hidden man command. Execute calls it; so do the generators. It may be called again.
func Setup(root *cobra.Command) {
	if root.Annotations[setupDone] != "" {
		return
	}
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations[setupDone] = "yes"
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.DisableAutoGenTag = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	})
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { PrintHelp(cmd.OutOrStdout(), cmd) })
	if root.Flags().Lookup("version") == nil {
		root.Version = buildinfo.String(root.Name())
		root.SetVersionTemplate("{{.Version}}\n")
		root.InitDefaultVersionFlag()
	}
	root.AddCommand(manCommand(root))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root, func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		if !c.Runnable() && c.HasSubCommands() {
			// cobra prints the help of a command that only holds others, even for an
			// unknown subcommand (completion tcsh), and exits 0.
			c.Args, c.RunE = cobra.ArbitraryArgs, groupRunE
		}
		if orig := c.Args; orig != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := orig(c, args); err != nil && !isUsage(err) {
					return fmt.Errorf("%w: %v", ErrUsage, err)
				} else if err != nil {
					return err
				}
				return nil
			}
		}
	})
}

const setupDone = "switchyard.usage.setup"

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// PrintHelp writes cmd's usage block: "usage: SYNOPSIS", its description, its subcommands
// and its flags. A flag's default is the one declared on the command, so a default must
// never be a secret (an environment variable's value): name the variable in the text.
func PrintHelp(w io.Writer, cmd *cobra.Command) {
	fmt.Fprintf(w, "usage: %s\n", cmd.UseLine())
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	if desc != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(desc, "\n"))
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprint(w, "\ncommands:\n")
		width := 0
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				width = max(width, len(c.Name()))
			}
		}
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name(), c.Short)
			}
		}
	}
	if fs := cmd.LocalFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(w, "\nflags:\n%s", fs.FlagUsages())
	}
	if fs := cmd.InheritedFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(w, "\nflags of %s:\n%s", cmd.Parent().CommandPath(), fs.FlagUsages())
	}
}
