package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// tmpPrefix starts the name of a file Put is still writing. List skips
// such files and keys whose last element starts with it are refused, so a
// half-written object is never visible.
const tmpPrefix = ".silt-tmp-"

// FS is a Bucket in a local directory: each key is a file under the
// directory, with "/" in keys making subdirectories. It is for `silt dev`
// and tests; unlike S3 it cannot hold both "a" and "a/b".
type FS struct {
	dir string
}

var _ Bucket = (*FS)(nil)

// NewFS returns a Bucket storing objects under dir, creating dir if needed.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("objstore: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	return &FS{dir: abs}, nil
}

// Dir returns the bucket's directory.
func (f *FS) Dir() string { return f.dir }

// checkKey refuses keys that would escape the directory or alias another
// key on the filesystem.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if strings.HasPrefix(key, "/") || strings.ContainsRune(key, 0) || strings.ContainsRune(key, '\\') {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." || strings.HasPrefix(el, tmpPrefix) {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return nil
}

func (f *FS) path(key string) string { return filepath.Join(f.dir, filepath.FromSlash(key)) }

// Put writes body to a temporary file in the key's directory, syncs it and
// renames it into place, then syncs the directory so the rename is durable:
// a crash leaves either the old object or the new one, never a torn one.
func (f *FS) Put(ctx context.Context, key string, body []byte) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	dst := f.path(key)
	dir := filepath.Dir(dst)
	if err := f.ensureDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(body); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// ensureDir creates dir and any missing parents, syncing each new
// directory's parent so the new entries survive a crash.
func (f *FS) ensureDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is an object, not a directory", dir)
		}
		return nil
	}
	if dir == f.dir || len(dir) <= len(f.dir) {
		return os.MkdirAll(dir, 0o755)
	}
	parent := filepath.Dir(dir)
	if err := f.ensureDir(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// GetRange reads the range with ReadAt.
func (f *FS) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if offset < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: %w: offset %d length %d", key, ErrInvalidRange, offset, length)
	}
	file, err := os.Open(f.path(key))
	if err != nil {
		if isMissing(err) {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if fi.IsDir() {
		// "a" when only "a/b" exists: on S3 "a" does not exist either.
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	size := fi.Size()
	if offset >= size && !(offset == 0 && size == 0) {
		return nil, fmt.Errorf("get %s: %w: offset %d, size %d", key, ErrRangeNotSatisfiable, offset, size)
	}
	end := size
	if length >= 0 && offset+length < size {
		end = offset + length
	}
	buf := make([]byte, end-offset)
	n, err := file.ReadAt(buf, offset)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-offset) {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return buf, nil
}

// Delete removes the file; a missing one is not an error. Empty
// directories are left behind: removing them would race with a Put
// creating a file in them.
func (f *FS) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	p := f.path(key)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List walks the directory holding prefix and reports matching files
// sorted by key. Walk order is not key order ("a-b" sorts before "a/b" but
// its file comes after the directory "a"), hence the sort.
func (f *FS) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	root := f.dir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dirPart := prefix[:i]
		if checkKey(dirPart) != nil {
			return nil // no valid key can start with this prefix
		}
		root = f.path(dirPart)
	}
	var found []Attrs
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking, or root missing
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(f.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a matching key.
			if p != root && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		found = append(found, Attrs{Key: key, Size: info.Size(), LastModified: info.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
	for _, a := range found {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// IsNotFound reports whether err means the object does not exist.
func (f *FS) IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

// isMissing reports a path that does not exist, including "a/b" when "a"
// is a file (ENOTDIR): on S3 that key simply does not exist either.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Close does nothing: an FS holds no resources between calls.
func (f *FS) Close() error { return nil }
