package payload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"runtime"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// Delta builder tuning. Each figure was measured on the userland pair of the delta
// benchmark (docs/payload.md).
const (
	// deltaPatchOut is the target bytes of one SOURCE_ZSTD operation.
	deltaPatchOut = 2 << 20
	// deltaDictMax is the source bytes one SOURCE_ZSTD operation reads as its dictionary.
	deltaDictMax = 6 << 20
	// deltaCopyMax is the bytes one SOURCE_COPY operation copies.
	deltaCopyMax = MaxSourceRead
	// deltaMinCopyRun: a run of fewer target blocks found in the source, between changed
	// blocks, goes into the patch around it (the dictionary nearly always holds it) rather
	// than into an operation of its own.
	deltaMinCopyRun = 4
	// anchorMask sets the anchor density of the similarity index: one anchor per 256 bytes
	// on average, chosen by content (a gear hash over the last 64 bytes) so that an
	// insertion in a file moves the anchors after it with the data.
	anchorMask = 1<<8 - 1
	// dictPad is the blocks kept around each source block an anchor votes for.
	dictPad = 2
)

// Block kinds in a delta plan.
const (
	kindChanged uint8 = iota
	kindZero
	kindCopy
)

// deltaPlan is what the builder learns about the target, block by block.
type deltaPlan struct {
	kind []uint8
	src  []uint32 // source block of a kindCopy block
}

// gear is the gear hash's byte table: fixed pseudo-random values (splitmix64 of the byte),
// so that anchors are the same in every build.
var gear = func() (g [256]uint64) {
	for i := range g {
		z := uint64(i+1) * 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		g[i] = z ^ (z >> 31)
	}
	return g
}()

// anchors calls fn with the gear hash and byte offset of every anchor in b.
func anchors(b []byte, fn func(h uint64, off int)) {
	var h uint64
	for i, c := range b {
		h = h<<1 + gear[c]
		if i >= 63 && h&anchorMask == 0 {
			fn(h, i)
		}
	}
}

// buildDelta builds a delta payload of image against cfg.Source (see the package doc,
// "Delta payloads").
func buildDelta(ctx context.Context, image io.ReaderAt, size int64, out io.Writer, cfg BuildConfig) (*Manifest, error) {
	bs := int64(cfg.BlockSize)
	if cfg.SourceSize <= 0 || cfg.SourceSize%bs != 0 || uint64(cfg.SourceSize) > MaxPartitionSize {
		return nil, fmt.Errorf("payload: source size %d is not a positive multiple of the block size %d", cfg.SourceSize, bs)
	}
	if !validLabel(cfg.SourceVersion) {
		return nil, fmt.Errorf("payload: source version %q must be 1..%d printable characters without spaces", cfg.SourceVersion, MaxLabel)
	}
	m := &Manifest{BlockSize: cfg.BlockSize, PartitionSize: uint64(size), Version: cfg.Version, Board: cfg.Board,
		Source: &Source{Size: uint64(cfg.SourceSize), Version: cfg.SourceVersion}}

	// 1. Index the source's blocks by content.
	seed := maphash.MakeSeed()
	srcBlocks := cfg.SourceSize / bs
	blockHash := make([]uint64, srcBlocks)
	byHash := make(map[uint64]uint32, srcBlocks)
	srcSum := sha256.New()
	if err := scan(ctx, cfg.Source, cfg.SourceSize, "source", func(off int64, b []byte) {
		srcSum.Write(b)
		for i := int64(0); i < int64(len(b)); i += bs {
			blk := b[i : i+bs]
			if allZero(blk) {
				continue
			}
			n := (off + i) / bs
			h := maphash.Bytes(seed, blk)
			blockHash[n] = h
			if _, dup := byHash[h]; !dup {
				byHash[h] = uint32(n)
			}
		}
	}); err != nil {
		return nil, err
	}
	srcSum.Sum(m.Source.SHA256[:0])

	// 2. Classify the target's blocks: zero, found in the source (preferring the block
	// after the previous one found, so runs stay runs), or changed.
	blocks := size / bs
	plan := deltaPlan{kind: make([]uint8, blocks), src: make([]uint32, blocks)}
	sum := sha256.New()
	srcBlk := make([]byte, bs)
	same := func(n uint32, blk []byte) (bool, error) {
		if _, err := cfg.Source.ReadAt(srcBlk, int64(n)*bs); err != nil {
			return false, fmt.Errorf("payload: reading source block %d: %w", n, err)
		}
		return bytes.Equal(srcBlk, blk), nil
	}
	var cerr error
	if err := scan(ctx, image, size, "image", func(off int64, b []byte) {
		sum.Write(b)
		for i := int64(0); i < int64(len(b)) && cerr == nil; i += bs {
			blk := b[i : i+bs]
			n := (off + i) / bs
			if allZero(blk) {
				plan.kind[n] = kindZero
				continue
			}
			h := maphash.Bytes(seed, blk)
			if n > 0 && plan.kind[n-1] == kindCopy && int64(plan.src[n-1])+1 < srcBlocks && blockHash[plan.src[n-1]+1] == h {
				ok, err := same(plan.src[n-1]+1, blk)
				if err != nil {
					cerr = err
					return
				}
				if ok {
					plan.kind[n], plan.src[n] = kindCopy, plan.src[n-1]+1
					continue
				}
			}
			if s, found := byHash[h]; found {
				ok, err := same(s, blk)
				if err != nil {
					cerr = err
					return
				}
				if ok {
					plan.kind[n], plan.src[n] = kindCopy, s
				}
			}
		}
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	sum.Sum(m.PartitionSHA256[:0])
	// Short runs found in the source between changed blocks go into the patch.
	for n := int64(0); n < blocks; {
		if plan.kind[n] != kindCopy {
			n++
			continue
		}
		e := n
		for e < blocks && plan.kind[e] == kindCopy {
			e++
		}
		if e-n < deltaMinCopyRun && (n == 0 || plan.kind[n-1] == kindChanged) && (e == blocks || plan.kind[e] == kindChanged) {
			for k := n; k < e; k++ {
				plan.kind[k] = kindChanged
			}
		}
		n = e
	}

	// 3. Index the similarity anchors of the source blocks no target block copies: where
	// the old versions of the changed files are.
	used := make([]bool, srcBlocks)
	for n := int64(0); n < blocks; n++ {
		if plan.kind[n] == kindCopy {
			used[plan.src[n]] = true
		}
	}
	anchorsAt := map[uint64]uint32{}
	if err := scan(ctx, cfg.Source, cfg.SourceSize, "source", func(off int64, b []byte) {
		// Anchors are taken per run of unused blocks, so that one never spans a used block.
		for i := int64(0); i < int64(len(b)); {
			n := (off + i) / bs
			if used[n] || blockHash[n] == 0 {
				i += bs
				continue
			}
			j := i
			for j < int64(len(b)) && !used[(off+j)/bs] && blockHash[(off+j)/bs] != 0 {
				j += bs
			}
			base := off + i
			anchors(b[i:j], func(h uint64, o int) {
				if _, dup := anchorsAt[h]; !dup {
					anchorsAt[h] = uint32((base + int64(o)) / bs)
				}
			})
			i = j
		}
	}); err != nil {
		return nil, err
	}

	// 4. Plan the operations in target order.
	ops := planOps(&plan, blocks, bs)
	for i := range ops {
		if ops[i].Type == SourceCopy {
			var b []byte
			h := sha256.New()
			for _, e := range ops[i].Src {
				b = growTo(b, int(e.Count*uint64(bs)))
				if _, err := cfg.Source.ReadAt(b, int64(e.Start)*bs); err != nil {
					return nil, fmt.Errorf("payload: reading source at block %d: %w", e.Start, err)
				}
				h.Write(b)
			}
			h.Sum(ops[i].SHA256[:0])
		}
	}
	m.Operations = ops

	// 5. Encode the patches in parallel, and write them in order.
	tmp, err := os.CreateTemp(cfg.TempDir, "payload-data-*")
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	d := &deltaEncoder{cfg: cfg, image: image, bs: bs, anchorsAt: anchorsAt, srcBlocks: srcBlocks, encoders: make(chan *zstd.Encoder, workers)}
	defer func() {
		for len(d.encoders) > 0 {
			(<-d.encoders).Close()
		}
	}()
	var dataOff uint64
	var done int64
	err = parallelOrdered(ctx, workers, len(ops),
		func(i int) ([]byte, error) { return d.encode(&ops[i]) },
		func(i int, data []byte) error {
			op := &ops[i]
			op.DataOffset, op.DataLength = dataOff, uint64(len(data))
			if _, err := bw.Write(data); err != nil {
				return fmt.Errorf("payload: writing temporary data: %w", err)
			}
			dataOff += uint64(len(data))
			done += int64(m.opBytes(op))
			if cfg.Progress != nil {
				cfg.Progress(done, size)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("payload: writing temporary data: %w", err)
	}
	mb, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	e := &Envelope{Header: Header{Version: m.FormatVersion()}, ManifestBytes: mb, Manifest: m}
	if err := e.WriteHead(out); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if _, err := io.Copy(out, bufio.NewReaderSize(tmp, 1<<20)); err != nil {
		return nil, fmt.Errorf("payload: writing data: %w", err)
	}
	return m, nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// scan reads r (size bytes) sequentially in 1 MiB pieces (whole blocks) and calls fn with
// each piece and its offset.
func scan(ctx context.Context, r io.ReaderAt, size int64, what string, fn func(off int64, b []byte)) error {
	buf := make([]byte, pieceSize)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:c], off); err != nil {
			return fmt.Errorf("payload: reading %s at %d: %w", what, off, err)
		}
		fn(off, buf[:c])
		off += c
	}
	return nil
}

// planOps turns the block plan into operations in target order: ZERO runs, SOURCE_COPY
// runs (source extents merged where consecutive) and changed runs, whose type and source
// extents the encoder decides.
func planOps(p *deltaPlan, blocks, bs int64) []Operation {
	var ops []Operation
	for n := int64(0); n < blocks; {
		k := p.kind[n]
		e := n + 1
		for e < blocks && p.kind[e] == k {
			e++
		}
		switch k {
		case kindZero:
			for s := n; s < e; {
				c := min(e-s, MaxOperationSize/bs)
				ops = append(ops, Operation{Type: Zero, Dst: []Extent{{uint64(s), uint64(c)}}})
				s += c
			}
		case kindChanged:
			for s := n; s < e; {
				c := min(e-s, deltaPatchOut/bs)
				ops = append(ops, Operation{Type: SourceZstd, Dst: []Extent{{uint64(s), uint64(c)}}})
				s += c
			}
		case kindCopy:
			var op *Operation
			var opBlocks int64
			for s := n; s < e; s++ {
				if op == nil || opBlocks == deltaCopyMax/bs || (len(op.Src) == MaxExtentsPerOp && op.Src[len(op.Src)-1].Start+op.Src[len(op.Src)-1].Count != uint64(p.src[s])) {
					ops = append(ops, Operation{Type: SourceCopy, Dst: []Extent{{uint64(s), 0}}})
					op, opBlocks = &ops[len(ops)-1], 0
				}
				op.Dst[0].Count++
				opBlocks++
				if last := len(op.Src) - 1; last >= 0 && op.Src[last].Start+op.Src[last].Count == uint64(p.src[s]) {
					op.Src[last].Count++
				} else {
					op.Src = append(op.Src, Extent{uint64(p.src[s]), 1})
				}
			}
		}
		n = e
	}
	return ops
}

// deltaEncoder encodes the changed runs.
type deltaEncoder struct {
	cfg       BuildConfig
	image     io.ReaderAt
	bs        int64
	anchorsAt map[uint64]uint32 // read-only once encoding starts
	srcBlocks int64
	encoders  chan *zstd.Encoder // idle encoders, one per worker at most
}

// encode returns the data of one operation, choosing, for a changed run, its dictionary and
// then SOURCE_ZSTD, or REPLACE when the patch would not be smaller than the bytes.
func (d *deltaEncoder) encode(op *Operation) ([]byte, error) {
	if op.Type != SourceZstd {
		return nil, nil
	}
	dst := op.Dst[0]
	raw := make([]byte, int64(dst.Count)*d.bs)
	if _, err := d.image.ReadAt(raw, int64(dst.Start)*d.bs); err != nil {
		return nil, fmt.Errorf("payload: reading image at block %d: %w", dst.Start, err)
	}
	op.Src = d.dictionary(raw, int64(dst.Start))
	var dict []byte
	for _, e := range op.Src {
		b := make([]byte, int64(e.Count)*d.bs)
		if _, err := d.cfg.Source.ReadAt(b, int64(e.Start)*d.bs); err != nil {
			return nil, fmt.Errorf("payload: reading source at block %d: %w", e.Start, err)
		}
		dict = append(dict, b...)
	}
	// Encoders are reused: a new one allocates its match tables (tens of MiB) again.
	var enc *zstd.Encoder
	select {
	case enc = <-d.encoders:
	default:
		var err error
		enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false),
			zstd.WithWindowSize(windowFor(deltaDictMax+deltaPatchOut)))
		if err != nil {
			return nil, fmt.Errorf("payload: zstd encoder: %w", err)
		}
	}
	defer func() {
		select {
		case d.encoders <- enc:
		default:
			enc.Close()
		}
	}()
	if err := enc.ResetWithOptions(nil, zstd.WithEncoderDictRaw(0, dict)); err != nil {
		return nil, fmt.Errorf("payload: zstd encoder: %w", err)
	}
	data := enc.EncodeAll(raw, nil)
	if len(data) >= len(raw) {
		op.Type, op.Src = Replace, nil
		op.SHA256 = sha256.Sum256(raw)
		return raw, nil
	}
	op.SHA256 = sha256.Sum256(data)
	op.SourceSHA256 = sha256.Sum256(dict)
	return data, nil
}

// dictionary chooses the source extents a changed run is encoded against: the source
// blocks its anchors are found in (with dictPad blocks around each), the most voted first,
// up to deltaDictMax bytes; with no anchor found, the source blocks at the same offset.
func (d *deltaEncoder) dictionary(raw []byte, start int64) []Extent {
	votes := map[int64]int{}
	anchors(raw, func(h uint64, _ int) {
		if s, ok := d.anchorsAt[h]; ok {
			votes[int64(s)]++
		}
	})
	maxBlocks := int64(deltaDictMax) / d.bs
	if len(votes) == 0 {
		n := min(int64(len(raw))/d.bs, maxBlocks)
		s := min(start, d.srcBlocks-n)
		if s < 0 {
			s, n = 0, d.srcBlocks
		}
		return []Extent{{uint64(s), uint64(n)}}
	}
	// Padded ranges around the voted blocks, merged, with their votes.
	type run struct {
		start, end int64
		votes      int
	}
	keys := make([]int64, 0, len(votes))
	for s := range votes {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	var runs []run
	for _, s := range keys {
		a, b := max(s-dictPad, 0), min(s+dictPad+1, d.srcBlocks)
		if l := len(runs) - 1; l >= 0 && a <= runs[l].end {
			runs[l].end = max(runs[l].end, b)
			runs[l].votes += votes[s]
			continue
		}
		runs = append(runs, run{a, b, votes[s]})
	}
	sort.SliceStable(runs, func(a, b int) bool {
		return runs[a].votes*int(runs[b].end-runs[b].start) > runs[b].votes*int(runs[a].end-runs[a].start)
	})
	var chosen []run
	var total int64
	for _, r := range runs {
		if len(chosen) == MaxExtentsPerOp {
			break
		}
		n := r.end - r.start
		if total+n > maxBlocks {
			n = maxBlocks - total
			if n <= 0 {
				break
			}
		}
		chosen = append(chosen, run{r.start, r.start + n, r.votes})
		total += n
	}
	// In source order: a file's old version reads front to back, as its new one does.
	sort.Slice(chosen, func(a, b int) bool { return chosen[a].start < chosen[b].start })
	ext := make([]Extent, len(chosen))
	for i, r := range chosen {
		ext[i] = Extent{uint64(r.start), uint64(r.end - r.start)}
	}
	return ext
}

// parallelOrdered runs work(i) for i in 0..n on up to workers goroutines and calls emit(i,
// result) in order. It returns the first error; every goroutine has ended when it returns.
func parallelOrdered(ctx context.Context, workers, n int, work func(int) ([]byte, error), emit func(int, []byte) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		data []byte
		err  error
		done chan struct{}
	}
	results := make(chan *result, workers)
	jobs := make(chan func(), workers)
	finished := make(chan struct{})
	fed := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { finished <- struct{}{} }()
			for j := range jobs {
				j()
			}
		}()
	}
	go func() {
		defer close(fed)
		defer close(jobs)
		defer close(results)
		for i := 0; i < n; i++ {
			r := &result{done: make(chan struct{})}
			select {
			case results <- r:
			case <-ctx.Done():
				return
			}
			i := i
			select {
			case jobs <- func() {
				defer close(r.done)
				if ctx.Err() != nil {
					r.err = ctx.Err()
					return
				}
				r.data, r.err = work(i)
			}:
			case <-ctx.Done():
				close(r.done)
				return
			}
		}
	}()
	var first error
	i := 0
	for r := range results {
		<-r.done
		if first == nil {
			first = r.err
			if first == nil {
				first = emit(i, r.data)
			}
			if first != nil {
				cancel()
			}
		}
		i++
	}
	for w := 0; w < workers; w++ {
		<-finished
	}
	<-fed
	if first == nil && i < n {
		first = ctx.Err()
	}
	return first
}
