// Package layout is Flatcar's disk layout (flatcar/scripts build_library/disk_layout.json)
// and a builder that writes it to an image file without root or loop devices.
//
// The layout: 1 EFI-SYSTEM, 2 BIOS-BOOT, 3 USR-A, 4 USR-B, 6 OEM, 7 OEM-CONFIG, 9 ROOT,
// with Flatcar's type GUIDs and the fixed unique GUIDs of USR-A and USR-B that Flatcar's
// grub.cfg knows. A fresh image has USR-A at priority 1, tries 0, successful 1 and USR-B at
// 0/0/0, as `cgpt add -i 3 -S1 -P1` leaves it. Partition sizes are parameters (1 GiB USR
// partitions in production, a few MiB in tests), each partition starts on an Align boundary,
// and ROOT takes what is left.
//
// update-engine imports this package to find USR-A and USR-B by label; tests and
// testimages/cmd/mkdisk use Build. It imports partitions/gpt, partitions/slots and
// internal/atomicfile only.
package layout

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/switchyard-os/switchyard/internal/atomicfile"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/slots"
)

// Partition labels.
const (
	LabelEFI       = "EFI-SYSTEM"
	LabelBIOS      = "BIOS-BOOT"
	LabelUSRA      = "USR-A"
	LabelUSRB      = "USR-B"
	LabelOEM       = "OEM"
	LabelOEMConfig = "OEM-CONFIG"
	LabelRoot      = "ROOT"
)

// Type GUIDs (cgpt's aliases efi, bios, flatcar-rootfs/coreos-usr, data, flatcar-reserved,
// flatcar-resize). Functions, not variables: a GUID is an array nobody may overwrite.

// TypeEFI is the EFI system partition's type.
func TypeEFI() gpt.GUID { return gpt.MustParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b") }

// TypeBIOS is the BIOS boot partition's type.
func TypeBIOS() gpt.GUID { return gpt.MustParseGUID("21686148-6449-6e6f-744e-656564454649") }

// TypeUSR is the USR partitions' type (slots.USRType).
func TypeUSR() gpt.GUID { return slots.USRType() }

// TypeData is the Linux data type (OEM).
func TypeData() gpt.GUID { return gpt.MustParseGUID("0fc63daf-8483-4772-8e79-3d69d8477de4") }

// TypeReserved is Flatcar's reserved type (OEM-CONFIG).
func TypeReserved() gpt.GUID { return gpt.MustParseGUID("c95dc21a-df0e-4340-8d7b-26cbfa9a03e0") }

// TypeResize is Flatcar's root type, grown to the disk at first boot.
func TypeResize() gpt.GUID { return gpt.MustParseGUID("3884dd41-8582-4404-b9a8-e9b84f2df50e") }

// IDUSRA and IDUSRB are the unique GUIDs of USR-A and USR-B, fixed in every Flatcar image
// (grub.cfg picks vmlinuz-a by USR-A's).
func IDUSRA() gpt.GUID { return gpt.MustParseGUID("7130c94a-213a-4e5a-8e26-6cce9662f132") }

// IDUSRB: see IDUSRA.
func IDUSRB() gpt.GUID { return gpt.MustParseGUID("e03dd35c-7c2d-4a47-b3fe-27f15780a57c") }

// Partition numbers.
const (
	NumEFI       = 1
	NumBIOS      = 2
	NumUSRA      = 3
	NumUSRB      = 4
	NumOEM       = 6
	NumOEMConfig = 7
	NumRoot      = 9
)

const (
	MiB = 1 << 20
	GiB = 1 << 30
)

// Sizes are the partition sizes in bytes. Root 0 means "the rest of the disk".
type Sizes struct {
	EFI, BIOS, USR, OEM, OEMConfig, Root int64
}

// Production returns Flatcar's layout with 1 GiB USR partitions (DESIGN.md section 5).
func Production() Sizes {
	return Sizes{EFI: 1 * GiB, BIOS: 2 * MiB, USR: 1 * GiB, OEM: 1 * GiB, OEMConfig: 64 * MiB, Root: 1784 * MiB}
}

// Small returns a few-MiB layout for tests.
func Small() Sizes {
	return Sizes{EFI: 1 * MiB, BIOS: 1 * MiB, USR: 2 * MiB, OEM: 1 * MiB, OEMConfig: 1 * MiB, Root: 1 * MiB}
}

// Options configure Build.
type Options struct {
	SectorSize int   // 512 (default) or 4096
	Sizes      Sizes // zero means Small
	Align      int64 // partition alignment in bytes; 0 means 1 MiB
	// DiskSize is the image size in bytes; 0 means just large enough.
	DiskSize int64
	// Rand supplies the disk GUID and the unique GUIDs other than USR-A/B; nil means
	// crypto/rand.
	Rand io.Reader
}

// Spec is one partition of the layout with its computed place.
type Spec struct {
	Number   int
	Label    string
	Type     gpt.GUID
	ID       gpt.GUID
	FirstLBA uint64
	LastLBA  uint64
	State    slots.State // meaningful for USR partitions only
}

// Plan computes the partitions and the disk size in sectors for opts.
func Plan(opts Options) ([]Spec, uint64, error) {
	ss := int64(opts.SectorSize)
	if ss == 0 {
		ss = 512
	}
	if ss != 512 && ss != 4096 {
		return nil, 0, fmt.Errorf("layout: sector size %d (want 512 or 4096)", ss)
	}
	sz := opts.Sizes
	if sz == (Sizes{}) {
		sz = Small()
	}
	align := opts.Align
	if align == 0 {
		align = MiB
	}
	if align < ss || align%ss != 0 {
		return nil, 0, fmt.Errorf("layout: alignment %d is not a multiple of the sector size %d", align, ss)
	}
	parts := []struct {
		num   int
		label string
		typ   gpt.GUID
		size  int64
		state slots.State
	}{
		{NumEFI, LabelEFI, TypeEFI(), sz.EFI, slots.State{}},
		{NumBIOS, LabelBIOS, TypeBIOS(), sz.BIOS, slots.State{}},
		{NumUSRA, LabelUSRA, TypeUSR(), sz.USR, slots.State{Priority: 1, Successful: true}},
		{NumUSRB, LabelUSRB, TypeUSR(), sz.USR, slots.State{}},
		{NumOEM, LabelOEM, TypeData(), sz.OEM, slots.State{}},
		{NumOEMConfig, LabelOEMConfig, TypeReserved(), sz.OEMConfig, slots.State{}},
		{NumRoot, LabelRoot, TypeResize(), sz.Root, slots.State{}},
	}
	first, _ := gpt.Layout{SectorSize: int(ss), Sectors: 1 << 40}.UsableRange()
	alignS := uint64(align / ss)
	next := (first + alignS - 1) / alignS * alignS
	var specs []Spec
	for _, p := range parts {
		if p.size <= 0 || p.size%ss != 0 {
			return nil, 0, fmt.Errorf("layout: %s size %d is not a positive multiple of %d", p.label, p.size, ss)
		}
		n := uint64(p.size / ss)
		specs = append(specs, Spec{Number: p.num, Label: p.label, Type: p.typ, FirstLBA: next, LastLBA: next + n - 1, State: p.state})
		next = (next + n + alignS - 1) / alignS * alignS
	}
	// The backup array and header follow the last partition.
	need := specs[len(specs)-1].LastLBA + 1 + (first - 2) + 1
	sectors := need
	if opts.DiskSize != 0 {
		if opts.DiskSize%ss != 0 || uint64(opts.DiskSize/ss) < need {
			return nil, 0, fmt.Errorf("layout: disk size %d is not a multiple of %d of at least %d bytes", opts.DiskSize, ss, need*uint64(ss))
		}
		sectors = uint64(opts.DiskSize / ss)
	}
	return specs, sectors, nil
}

// Build writes a Flatcar-layout GPT to w (an image file of any size; it is not truncated) and
// returns the planned partitions and the disk size in sectors. The caller sizes the file
// (see WriteFile).
func Build(ctx context.Context, w gpt.WriteSyncer, opts Options) ([]Spec, uint64, error) {
	specs, sectors, err := Plan(opts)
	if err != nil {
		return nil, 0, err
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	newGUID := func() (gpt.GUID, error) {
		var g gpt.GUID
		if _, err := io.ReadFull(rnd, g[:]); err != nil {
			return g, fmt.Errorf("layout: random GUID: %w", err)
		}
		g[7] = g[7]&0x0F | 0x40 // version 4 (byte 7 is the high byte of field 3, little-endian)
		g[8] = g[8]&0x3F | 0x80 // RFC 4122 variant
		return g, nil
	}
	l := gpt.Layout{SectorSize: opts.SectorSize, Sectors: sectors}
	if l.SectorSize == 0 {
		l.SectorSize = 512
	}
	if l.DiskGUID, err = newGUID(); err != nil {
		return nil, 0, err
	}
	for i := range specs {
		switch specs[i].Number {
		case NumUSRA:
			specs[i].ID = IDUSRA()
		case NumUSRB:
			specs[i].ID = IDUSRB()
		default:
			if specs[i].ID, err = newGUID(); err != nil {
				return nil, 0, err
			}
		}
		s := specs[i]
		var attrs uint64
		if s.Type == TypeUSR() {
			attrs = s.State.Encode(0)
		}
		l.Partitions = append(l.Partitions, gpt.NewPartition{Number: s.Number, Type: s.Type, ID: s.ID,
			FirstLBA: s.FirstLBA, LastLBA: s.LastLBA, Attributes: attrs, Name: s.Label})
	}
	if err := gpt.Create(ctx, w, l); err != nil {
		return nil, 0, fmt.Errorf("layout: %w", err)
	}
	return specs, sectors, nil
}

// WriteFile creates (or replaces) the image file path with the layout; when usrA is not nil,
// its contents are copied into USR-A (it must fit). The image is written through atomicfile (a
// temporary file next to path, synced, renamed over path, the directory synced), so a failure
// leaves path as it was. The file has mode 0644 and is sparse where nothing is written.
func WriteFile(ctx context.Context, path string, opts Options, usrA io.Reader) error {
	specs, sectors, err := Plan(opts)
	if err != nil {
		return err
	}
	ss := int64(opts.SectorSize)
	if ss == 0 {
		ss = 512
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if err := writeImage(ctx, f.File, specs, int64(sectors)*ss, ss, opts, usrA); err != nil {
		return err
	}
	return f.Commit()
}

func writeImage(ctx context.Context, f *os.File, specs []Spec, size, ss int64, opts Options, usrA io.Reader) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	if _, _, err := Build(ctx, f, opts); err != nil {
		return err
	}
	if usrA == nil {
		return nil
	}
	var a Spec
	for _, s := range specs {
		if s.Number == NumUSRA {
			a = s
		}
	}
	part := int64(a.LastLBA-a.FirstLBA+1) * ss
	n, err := io.Copy(io.NewOffsetWriter(f, int64(a.FirstLBA)*ss), io.LimitReader(usrA, part+1))
	if err != nil {
		return fmt.Errorf("layout: copying into %s: %w", LabelUSRA, err)
	}
	if n > part {
		return fmt.Errorf("%w: the image for %s is larger than its %d bytes", ErrTooLarge, LabelUSRA, part)
	}
	return nil
}

// ErrTooLarge: a filesystem image does not fit its partition.
var ErrTooLarge = errors.New("layout: image too large")

// ErrNoSuchLabel: no partition has the label looked for.
var ErrNoSuchLabel = errors.New("layout: no partition with that label")

// Find returns the number of the partition labelled label in t.
func Find(t *gpt.Table, label string) (int, error) {
	for _, e := range t.Entries() {
		if e.Name == label {
			return e.Number, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrNoSuchLabel, label)
}

// Other returns the number of the USR partition that is not n (USR-B for USR-A and back).
func Other(t *gpt.Table, n int) (int, error) {
	a, err := Find(t, LabelUSRA)
	if err != nil {
		return 0, err
	}
	b, err := Find(t, LabelUSRB)
	if err != nil {
		return 0, err
	}
	switch n {
	case a:
		return b, nil
	case b:
		return a, nil
	}
	return 0, fmt.Errorf("layout: partition %d is neither %s nor %s", n, LabelUSRA, LabelUSRB)
}
