package rebootlock

import "context"

// Slot is one holder's view of a Semaphore: Lock and Unlock without arguments, the shape
// the reboot strategy consumes.
type Slot struct {
	sem    *Semaphore
	holder Holder
}

// Slot returns h's slot in s.
func (s *Semaphore) Slot(h Holder) Slot { return Slot{sem: s, holder: h} }

// Lock takes the slot, waiting while the group is full (Semaphore.Lock).
func (sl Slot) Lock(ctx context.Context) error { return sl.sem.Lock(ctx, sl.holder) }

// Unlock releases the slot (Semaphore.Unlock).
func (sl Slot) Unlock(ctx context.Context) error { return sl.sem.Unlock(ctx, sl.holder.ID) }
