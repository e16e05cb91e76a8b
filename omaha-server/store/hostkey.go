package store

import "time"

// MaxHostKeys bounds one ListHostKeys page.
const MaxHostKeys = 1000

// HostKey is a host's public key (package omaha/hostsig) pinned to its machine id: reports
// for that machine id count only when signed with this key (package hostauth). A key is
// pinned by the host's first signed contact (trust on first use) or enrolled by an
// operator; an enrolled key replaces whatever was pinned.
type HostKey struct {
	MachineID string `json:"machine_id"`
	// PublicKey is base64 of the 32-byte Ed25519 key, as the host's host-key.pub holds it.
	PublicKey string `json:"public_key"`
	// Enrolled is true when an operator enrolled the key, false when it was pinned on
	// first contact.
	Enrolled  bool      `json:"enrolled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
