package compose

import (
	"slices"
	"strings"
	"testing"
)

// TestSecureProfile checks the optional secure profile: every service of
// it is in the profile only (a plain `docker compose up` is unchanged),
// the certificate job and the first user run before the secure agent, and
// the agent's listeners, TLS files and authorizer settings fit together.
func TestSecureProfile(t *testing.T) {
	f := loadCompose(t)
	secure := []string{"certs", "secure-user", "silt-secure"}
	for name, s := range f.Services {
		in := slices.Contains(s.Profiles, "secure")
		if in != slices.Contains(secure, name) {
			t.Errorf("%s: profiles %v", name, s.Profiles)
		}
	}
	a := f.Services["silt-secure"]
	for _, dep := range []string{"certs", "secure-user", "minio-init"} {
		if a.DependsOn[dep].Condition != "service_completed_successfully" {
			t.Errorf("silt-secure must wait for %s to complete, has %+v", dep, a.DependsOn[dep])
		}
	}
	env := a.Environment
	if !strings.Contains(env["SILT_LISTENER_SECURITY_PROTOCOL_MAP"], "EXTERNAL:SASL_SSL") {
		t.Errorf("EXTERNAL is not SASL_SSL: %q", env["SILT_LISTENER_SECURITY_PROTOCOL_MAP"])
	}
	if env["SILT_AUTHORIZER"] != "true" || !strings.Contains(env["SILT_SUPER_USERS"], "User:admin") {
		t.Errorf("authorizer %q, super users %q", env["SILT_AUTHORIZER"], env["SILT_SUPER_USERS"])
	}
	// The advertised EXTERNAL port is the published one.
	published := map[int]int{}
	for _, p := range parsePorts(t, "silt-secure", a.Ports) {
		published[p.container] = p.host
	}
	var extPort, advPort int
	for l := range strings.SplitSeq(env["SILT_LISTENERS"], ",") {
		if rest, ok := strings.CutPrefix(l, "EXTERNAL://"); ok {
			_, extPort = splitHostPort(t, "silt-secure", "SILT_LISTENERS", rest)
		}
	}
	for l := range strings.SplitSeq(env["SILT_ADVERTISED_LISTENERS"], ",") {
		if rest, ok := strings.CutPrefix(l, "EXTERNAL://"); ok {
			_, advPort = splitHostPort(t, "silt-secure", "SILT_ADVERTISED_LISTENERS", rest)
		}
	}
	if extPort == 0 || published[extPort] != advPort {
		t.Errorf("EXTERNAL listens on %d, published as %d, advertised as %d", extPort, published[extPort], advPort)
	}
	// The certificate files live in the volume the certs job writes.
	certVol := ""
	for _, v := range f.Services["certs"].Volumes {
		if vol, dir, ok := strings.Cut(v, ":"); ok && dir == "/certs" {
			certVol = vol
		}
	}
	if certVol == "" || !slices.Contains(a.Volumes, certVol+":/certs:ro") {
		t.Errorf("silt-secure volumes %v do not mount the certs job's volume %q", a.Volumes, certVol)
	}
	for _, k := range []string{"SILT_TLS_CERT_FILE", "SILT_TLS_KEY_FILE"} {
		if !strings.HasPrefix(env[k], "/certs/") || !strings.Contains(strings.Join(f.Services["certs"].Command, " "), strings.TrimPrefix(env[k], "/certs/")) {
			t.Errorf("%s=%q is not a file the certs job writes", k, env[k])
		}
	}
	u := f.Services["secure-user"]
	if len(u.Command) < 2 || u.Command[0] != "user" || u.Command[1] != "create" || u.Environment["SILT_USER_PASSWORD"] == "" {
		t.Errorf("secure-user: command %v", u.Command)
	}
	if u.Environment["SILT_METASTORE"] != f.Services["silt-1"].Environment["SILT_METASTORE"] {
		t.Errorf("secure-user writes to another metastore than the agents")
	}
}
