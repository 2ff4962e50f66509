package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// initdbArgs are the initdb flags after -D; part of the template's cache
// key, so changing them makes a new template.
var initdbArgs = []string{"-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"}

// runInitdb creates a data directory at data (whose parent the server's
// user owns).
func runInitdb(bin, data string, cred *syscall.Credential) error {
	cmd := exec.Command(filepath.Join(bin, "initdb"), append([]string{"-D", data}, initdbArgs...)...)
	cmd.Dir = filepath.Dir(data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// pgDataTemplate returns a freshly initialized data directory to copy,
// creating it on first use. initdb takes seconds on a busy machine and
// every test binary needs a server; copying a template takes a fraction
// of that. The template lives in the temp directory, keyed by the
// binaries, their version, the initdb flags and the server's user, and is
// published with a rename so concurrent test binaries never see half of
// one.
func pgDataTemplate(bin string, cred *syscall.Credential) (string, error) {
	ver, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	h := sha256.New()
	fmt.Fprintln(h, bin, string(ver), initdbArgs, os.Geteuid())
	if cred != nil {
		fmt.Fprintln(h, cred.Uid, cred.Gid)
	}
	tmpl := filepath.Join(os.TempDir(), "silt-harness-pgtemplate-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(tmpl, "global", "pg_control")); err == nil {
		return tmpl, nil
	}
	work, err := os.MkdirTemp("", "silt-harness-pgtemplate-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if cred != nil {
		if err := os.Chown(work, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	data := filepath.Join(work, "data")
	if err := runInitdb(bin, data, cred); err != nil {
		return "", err
	}
	if err := os.Rename(data, tmpl); err != nil {
		// Another test binary published one first: use it.
		if _, statErr := os.Stat(filepath.Join(tmpl, "global", "pg_control")); statErr == nil {
			return tmpl, nil
		}
		return "", err
	}
	return tmpl, nil
}

// copyTree copies the directory src to dst (which must not exist), owned
// by cred's user when cred is set.
func copyTree(src, dst string, cred *syscall.Credential) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		default:
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		}
		if cred != nil {
			return os.Lchown(target, int(cred.Uid), int(cred.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
