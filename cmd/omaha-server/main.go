// Command omaha-server is replaced by the work that owns it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "omaha-server: not built yet")
	os.Exit(1)
}
