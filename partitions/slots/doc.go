// Package slots implements the A/B boot protocol that ChromeOS cgpt, Flatcar's GRUB
// (gptprio.next) and Flatcar's update_engine agree on, over a gpt.Table.
//
// # Format
//
// Only partitions of type USRType (5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6, Flatcar's and
// CoreOS's usr type) are slots. Their attribute bits 48–51 hold the priority (0–15), bits
// 52–55 the tries left (0–15) and bit 56 the successful flag. Every other attribute bit is
// kept as read. Operating on a partition that is not USR-typed is ErrNotUSR.
//
// # Operations
//
// Every operation is absolute and idempotent: applying it twice leaves the same bits as
// applying it once, so a caller can re-apply it after a crash.
//
//	Next        GRUB's gptprio.next: the highest priority with tries > 0 or successful wins;
//	            priority 0 never does; ties go to the lower partition number; a try is used.
//	Prepare     the target becomes unbootable: 0/0/0 (before a payload is written to it).
//	Flip        the target gets tries 1, successful 0 and, by cgpt's prioritize, a priority
//	            above every other slot; the other slots keep their successful bit.
//	MarkGood    successful 1, tries 0, prioritized (Flatcar's flatcar-setgoodroot).
//	Rollback    the other, known-good slot (successful, priority > 0) is prioritized.
//	Prioritize  cgpt's prioritize: the chosen slot on top, the others renumbered by rank
//	            below it, nothing lowered to 0, slots at 0 left at 0.
//
// # Invariant
//
// No operation leaves the table with nothing to boot: after each one, the slot Next would
// choose must exist, and Flip and Prepare require another slot that is known good, so a
// target that fails to come up falls back to it. Violations are ErrWouldBrick and
// ErrNoFallback, and the table is left unchanged.
//
// Apply runs one operation against a device: read, repair, change, write (in the crash-safe
// order of package gpt), read back. It imports only partitions/gpt.
package slots
