package objstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/objstore/objstoretest"
)

func TestAcceptanceFS(t *testing.T) {
	t.Run("fs", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket {
			b, err := objstore.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
}

func TestFSRejectsBadKeys(t *testing.T) {
	dir := t.TempDir()
	b, err := objstore.NewFS(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "../escape", "a/../../escape", "a/..", "a//b", "a/./b", "trailing/", ".", "a\\b", ".silt-tmp-x", "a/.silt-tmp-1"} {
		if err := b.Put(ctx, key, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q): err %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.GetRange(ctx, key, 0, -1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("GetRange(%q): err %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q): err %v, want ErrInvalidKey", key, err)
		}
	}
	// Nothing escaped the bucket directory.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "bucket" {
		t.Fatalf("files outside the bucket: %v", entries)
	}
}

// TestFSPutLeavesNoTempFiles checks the temp-file-and-rename Put cleans up
// and that List never shows a half-written file.
func TestFSPutLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	b, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 3 {
		if err := b.Put(ctx, "x/y", []byte("body")); err != nil {
			t.Fatal(err)
		}
	}
	// A leftover from a crash mid-Put.
	if err := os.WriteFile(filepath.Join(dir, "x", ".silt-tmp-123"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(a objstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "x/y" {
		t.Fatalf("List = %v, want [x/y]", keys)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the object and the planted leftover", len(entries))
	}
}
