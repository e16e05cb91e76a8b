package rebootlock

import "errors"

// Errors callers branch on. They are wrapped with details; compare with errors.Is.
var (
	// ErrFull means every slot of the group is held (TryLock).
	ErrFull = errors.New("rebootlock: group is full")
	// ErrNotHolder means the id holds no slot (Reclaim, KeepAlive).
	ErrNotHolder = errors.New("rebootlock: not a holder")
	// ErrAlive means a holder still shows liveness, so Reclaim refuses to free its slot.
	ErrAlive = errors.New("rebootlock: holder is alive")
	// ErrInvalidGroup means a group name does not match ^[a-zA-Z0-9.-]+$.
	ErrInvalidGroup = errors.New("rebootlock: invalid group name")
	// ErrInvalidID means a holder id is empty, too long, or has '/', control or format
	// characters.
	ErrInvalidID = errors.New("rebootlock: invalid holder id")
	// ErrInvalidMax means a max below 1.
	ErrInvalidMax = errors.New("rebootlock: invalid max")
	// ErrBadConfig means the group's config value in etcd cannot be read.
	ErrBadConfig = errors.New("rebootlock: unreadable group config")
)
