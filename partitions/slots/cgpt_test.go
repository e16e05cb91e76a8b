package slots_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/gpttest"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

// chromeOSKernel is the type Debian's `cgpt prioritize` works on (it refuses USR partitions).
var chromeOSKernel = gpt.MustParseGUID("fe3a2a5d-4f32-41a7-b725-accc3285a309")

// TestPrioritizeMatchesCgpt is a differential test: random priorities on six partitions, a
// random chosen one and sometimes a -P maximum; Debian's cgpt prioritizes ChromeOS-kernel
// partitions of one image, our Prioritize the same priorities on USR partitions of another,
// and the resulting priorities must be equal.
func TestPrioritizeMatchesCgpt(t *testing.T) {
	cgpt := gpttest.Need(t, "cgpt", "cgpt")
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	for round := 0; round < rounds; round++ {
		prios := make([]int, 6)
		for i := range prios {
			prios[i] = rng.IntN(5) // small range, so ties and zeros are common
		}
		chosen := 1 + rng.IntN(len(prios))
		max := 0
		if rng.IntN(3) == 0 {
			max = 1 + rng.IntN(15)
		}
		build := func(typ gpt.GUID) *gpttest.Mem {
			l := gpt.Layout{SectorSize: 512, Sectors: 4096}
			first, _ := l.UsableRange()
			for i, p := range prios {
				l.Partitions = append(l.Partitions, gpt.NewPartition{Number: i + 1, Type: typ,
					ID:       gpt.MustParseGUID("00000000-0000-4000-8000-00000000000" + strconv.Itoa(i)),
					FirstLBA: first + uint64(i)*100, LastLBA: first + uint64(i)*100 + 99,
					// Successful, so every state is bootable and the brick check stays quiet.
					Attributes: slots.State{Priority: p, Successful: true}.Encode(0)})
			}
			m := &gpttest.Mem{B: make([]byte, 4096*512)}
			if err := gpt.Create(context.Background(), m, l); err != nil {
				t.Fatal(err)
			}
			return m
		}
		kern := build(chromeOSKernel)
		img := filepath.Join(t.TempDir(), "kern.img")
		if err := os.WriteFile(img, kern.B, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"prioritize", "-i", strconv.Itoa(chosen)}
		if max != 0 {
			args = append(args, "-P", strconv.Itoa(max))
		}
		if out, err := exec.Command(cgpt, append(args, img)...).CombinedOutput(); err != nil {
			t.Fatalf("cgpt %v: %v\n%s", args, err, out)
		}
		usr := build(slots.USRType())
		tab := table(t, usr)
		// Every partition is successful and the chosen one ends at priority ≥ 1, so the
		// result is always bootable: Prioritize has no reason to refuse.
		if err := slots.Prioritize(tab, chosen, max); err != nil {
			t.Fatalf("round %d: Prioritize(%d, %d) on %v: %v", round, chosen, max, prios, err)
		}
		for n := 1; n <= len(prios); n++ {
			out, err := exec.Command(cgpt, "show", "-i", strconv.Itoa(n), "-P", img).Output()
			if err != nil {
				t.Fatalf("cgpt show -i %d -P: %v", n, err)
			}
			p, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatalf("cgpt show -i %d -P printed %q", n, out)
			}
			if ours := state(t, tab, n).Priority; ours != p {
				t.Fatalf("round %d: priorities %v, prioritize %d (max %d): partition %d is %d with cgpt, %d with us",
					round, prios, chosen, max, n, p, ours)
			}
		}
	}
}
