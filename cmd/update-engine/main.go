// Command update-engine is replaced by the work that owns it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "update-engine: not built yet")
	os.Exit(1)
}
