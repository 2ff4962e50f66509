package main

import "runtime/debug"

// buildVersion is set at link time:
// go build -ldflags "-X main.buildVersion=v1.2.3" ./cmd/silt
var buildVersion string

// version is the link-time version, else the module version and VCS
// revision Go recorded in the binary.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		return v + " (" + rev + dirty + ")"
	}
	return v
}
