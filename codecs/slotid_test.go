package codecs

import (
	"testing"
	"time"
)

// IsSlotEventID recognises exactly the slot's id: not another URL's,
// slot's or region's, and the default region's id is the one without a
// region.
func TestIsSlotEventID(t *testing.T) {
	at := time.Date(2026, 3, 2, 12, 0, 0, 5, time.UTC)
	id := SlotEventID("https://a.example/", at, "eu")
	if !IsSlotEventID(id, "https://a.example/", at, "eu") {
		t.Fatal("the slot's own id not recognised")
	}
	for name, ok := range map[string]bool{
		"url":    IsSlotEventID(id, "https://b.example/", at, "eu"),
		"slot":   IsSlotEventID(id, "https://a.example/", at.Add(1), "eu"),
		"region": IsSlotEventID(id, "https://a.example/", at, DefaultRegion),
		"short":  IsSlotEventID(id[:31], "https://a.example/", at, "eu"),
		"other":  IsSlotEventID("ev-1", "https://a.example/", at, "eu"),
	} {
		if ok {
			t.Errorf("another %s's id recognised", name)
		}
	}
	if SlotEventID("u", at, DefaultRegion) != SlotEventID("u", at, "") {
		t.Error("the default region's id differs from the one without a region")
	}
}
