package engine

import (
	"reflect"
	"testing"

	"github.com/switchyard-os/switchyard/partitions/slots"
)

// TestBootSpeaksSlots: the partition table's answer is slots.Slot itself, not a copy that
// must be kept in step with it field by field (and that dropped the partition GUID).
func TestBootSpeaksSlots(t *testing.T) {
	m, ok := reflect.TypeFor[Boot]().MethodByName("Slots")
	if !ok {
		t.Fatal("Boot has no Slots method")
	}
	want := reflect.TypeFor[slots.Slot]()
	for i := range 2 {
		if got := m.Type.Out(i); got != want {
			t.Errorf("Boot.Slots result %d is %s, want %s", i, got, want)
		}
	}
}
