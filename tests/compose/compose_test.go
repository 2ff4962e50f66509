package compose

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, relative to this package.
const root = "../.."

// siltEnv is every environment variable silt reads (one per flag; see
// `silt help agent`).
var siltEnv = []string{
	"SILT_METASTORE", "SILT_BUCKET", "SILT_LISTEN", "SILT_ADVERTISED_ADDR",
	"SILT_ADVERTISED_ADDR_FILE", "SILT_ADMIN_LISTEN", "SILT_AGENT_ID", "SILT_ZONE",
	"SILT_FLUSH_BYTES", "SILT_FLUSH_INTERVAL", "SILT_CACHE_DIR", "SILT_CACHE_BYTES",
	"SILT_AUTO_CREATE_TOPICS", "SILT_DEFAULT_PARTITIONS", "SILT_LOG_FORMAT",
	"SILT_LOG_LEVEL", "SILT_DATA_DIR", "SILT_MAX_BUFFERED_BYTES",
	"SILT_LISTENERS", "SILT_ADVERTISED_LISTENERS", "SILT_LISTENER_SECURITY_PROTOCOL_MAP",
	"SILT_TLS_CERT_FILE", "SILT_TLS_KEY_FILE", "SILT_TLS_CLIENT_CA_FILE", "SILT_TLS_CLIENT_AUTH",
	"SILT_SASL_MECHANISMS", "SILT_AUTHORIZER", "SILT_SUPER_USERS",
}

// awsEnv is what the AWS SDK reads for the bucket's credentials.
var awsEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

// agentRequiredEnv must be set on every agent of the stack.
var agentRequiredEnv = []string{
	"SILT_METASTORE", "SILT_BUCKET", "SILT_LISTEN", "SILT_ADVERTISED_ADDR",
	"SILT_ADMIN_LISTEN", "SILT_AGENT_ID", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
}

var agents = []string{"silt-1", "silt-2", "silt-3"}

type composeFile struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	// Extensions holds the other top-level keys; compose allows only x-*
	// (used here for YAML anchors).
	Extensions map[string]any `yaml:",inline"`
}

type service struct {
	Image       string               `yaml:"image"`
	Build       any                  `yaml:"build"`
	Command     stringList           `yaml:"command"`
	Entrypoint  stringList           `yaml:"entrypoint"`
	Environment map[string]string    `yaml:"environment"`
	Ports       []string             `yaml:"ports"`
	Volumes     []string             `yaml:"volumes"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Healthcheck *struct {
		Test        stringList `yaml:"test"`
		Interval    string     `yaml:"interval"`
		Timeout     string     `yaml:"timeout"`
		StartPeriod string     `yaml:"start_period"`
		Retries     int        `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart  string   `yaml:"restart"`
	Profiles []string `yaml:"profiles"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

// stringList accepts compose's two spellings of a command: a string or a
// list of strings.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = stringList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // a misspelled key is a silent no-op in compose: reject it here
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for k := range f.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Fatalf("docker-compose.yml: unknown top-level key %q", k)
		}
	}
	return f
}

// portMapping is one "host:container" entry of ports.
type portMapping struct{ host, container int }

func parsePorts(t *testing.T, svc string, ports []string) []portMapping {
	t.Helper()
	var out []portMapping
	for _, p := range ports {
		p = strings.TrimSuffix(p, "/tcp")
		parts := strings.Split(p, ":")
		if len(parts) != 2 {
			t.Errorf("%s: port %q: want HOST:CONTAINER (no bind address, no ranges)", svc, p)
			continue
		}
		h, err1 := strconv.Atoi(parts[0])
		c, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil {
			t.Errorf("%s: port %q: not numeric", svc, p)
			continue
		}
		out = append(out, portMapping{h, c})
	}
	return out
}

func TestServicesPresent(t *testing.T) {
	f := loadCompose(t)
	want := append([]string{"minio", "minio-init", "postgres", "prometheus", "grafana"}, agents...)
	for _, name := range want {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	for name, s := range f.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		if s.Build == nil && !strings.Contains(s.Image, ":") {
			t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
		}
		if strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q: pin a version, not latest", name, s.Image)
		}
	}
	if f.Services["postgres"].Image != "postgres:15" {
		t.Errorf("postgres image %q, want postgres:15 (the version the tests run)", f.Services["postgres"].Image)
	}
}

func TestHealthchecks(t *testing.T) {
	f := loadCompose(t)
	for _, name := range []string{"minio", "postgres", "prometheus"} {
		hc := f.Services[name].Healthcheck
		if hc == nil || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck test", name)
			continue
		}
		if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %q: want CMD or CMD-SHELL form", name, hc.Test)
		}
		if hc.Retries < 1 {
			t.Errorf("%s: healthcheck without retries fails on the first slow start", name)
		}
	}
	if hc := f.Services["postgres"].Healthcheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), "pg_isready") {
		t.Errorf("postgres healthcheck %q does not use pg_isready", hc.Test)
	}
}

func TestDependsOn(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		for dep, d := range s.DependsOn {
			target, ok := f.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %q", name, dep)
				continue
			}
			switch d.Condition {
			case "service_healthy":
				if target.Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if target.Restart != "no" && target.Restart != "" {
					t.Errorf("%s waits for %s to complete, but %s restarts (%q)", name, dep, dep, target.Restart)
				}
			case "service_started":
			default:
				t.Errorf("%s -> %s: condition %q: want an explicit compose condition", name, dep, d.Condition)
			}
		}
	}
	wantDeps := func(svc string, want map[string]string) {
		t.Helper()
		got := f.Services[svc].DependsOn
		for dep, cond := range want {
			if got[dep].Condition != cond {
				t.Errorf("%s -> %s: condition %q, want %q", svc, dep, got[dep].Condition, cond)
			}
		}
	}
	wantDeps("minio-init", map[string]string{"minio": "service_healthy"})
	for _, a := range agents {
		wantDeps(a, map[string]string{
			"postgres":   "service_healthy",
			"minio":      "service_healthy",
			"minio-init": "service_completed_successfully",
		})
	}
	for _, a := range agents {
		if _, ok := f.Services["prometheus"].DependsOn[a]; !ok {
			t.Errorf("prometheus does not depend on %s", a)
		}
	}
	wantDeps("grafana", map[string]string{"prometheus": "service_healthy"})

	// The graph must have a start order: no cycles.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string)
	visit = func(n string, path []string) {
		switch state[n] {
		case 1:
			t.Errorf("depends_on cycle: %s", strings.Join(append(path, n), " -> "))
			return
		case 2:
			return
		}
		state[n] = 1
		for dep := range f.Services[n].DependsOn {
			visit(dep, append(path, n))
		}
		state[n] = 2
	}
	for name := range f.Services {
		visit(name, nil)
	}
}

func TestPortsUnique(t *testing.T) {
	f := loadCompose(t)
	owner := map[int]string{}
	for name, s := range f.Services {
		for _, p := range parsePorts(t, name, s.Ports) {
			if prev, ok := owner[p.host]; ok {
				t.Errorf("host port %d used by %s and %s", p.host, prev, name)
			}
			owner[p.host] = name
		}
	}
}

func TestAgents(t *testing.T) {
	f := loadCompose(t)
	known := append(slices.Clone(siltEnv), awsEnv...)
	ids := map[string]string{}
	wantKafka := map[string]int{"silt-1": 19092, "silt-2": 29092, "silt-3": 39092}
	for _, a := range agents {
		s := f.Services[a]
		if s.Build == nil {
			t.Errorf("%s: not built from the Dockerfile", a)
		}
		if len(s.Command) == 0 || s.Command[0] != "agent" {
			t.Errorf("%s: command %q, want `silt agent`", a, s.Command)
		}
		for k := range s.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("%s: environment %s is not a silt setting (known: %v)", a, k, known)
			}
		}
		for _, k := range agentRequiredEnv {
			if s.Environment[k] == "" {
				t.Errorf("%s: environment %s missing", a, k)
			}
		}
		env := s.Environment
		if prev, dup := ids[env["SILT_AGENT_ID"]]; dup {
			t.Errorf("%s and %s share agent id %q", prev, a, env["SILT_AGENT_ID"])
		}
		ids[env["SILT_AGENT_ID"]] = a

		_, listenPort := splitHostPort(t, a, "SILT_LISTEN", env["SILT_LISTEN"])
		_, adminPort := splitHostPort(t, a, "SILT_ADMIN_LISTEN", env["SILT_ADMIN_LISTEN"])
		advHost, advPort := splitHostPort(t, a, "SILT_ADVERTISED_ADDR", env["SILT_ADVERTISED_ADDR"])
		published := map[int]int{} // container port -> host port
		for _, p := range parsePorts(t, a, s.Ports) {
			published[p.container] = p.host
		}
		if published[listenPort] == 0 {
			t.Errorf("%s: kafka port %d not published", a, listenPort)
		}
		if published[adminPort] == 0 {
			t.Errorf("%s: admin port %d not published", a, adminPort)
		}
		// Clients on the host reach the agent on the published port, so
		// that is what Metadata must name.
		if advHost != "127.0.0.1" || advPort != published[listenPort] {
			t.Errorf("%s: advertises %s, want 127.0.0.1:%d (its published kafka port)", a, env["SILT_ADVERTISED_ADDR"], published[listenPort])
		}
		if published[listenPort] != wantKafka[a] {
			t.Errorf("%s: kafka host port %d, want %d", a, published[listenPort], wantKafka[a])
		}
	}
}

func splitHostPort(t *testing.T, svc, key, v string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		t.Errorf("%s: %s=%q: %v", svc, key, v, err)
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Errorf("%s: %s=%q: port: %v", svc, key, v, err)
	}
	return h, n
}

var mcMakeBucket = regexp.MustCompile(`mc mb (?:--ignore-existing |-p )*local/([a-z0-9.-]+)`)

func TestBucketAndMetastoreAgree(t *testing.T) {
	f := loadCompose(t)
	mc := f.Services["minio-init"]
	script := strings.Join(append(slices.Clone(mc.Entrypoint), mc.Command...), " ")
	m := mcMakeBucket.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("minio-init does not run `mc mb local/<bucket>`: %q", script)
	}
	bucket := m[1]
	minio := f.Services["minio"]
	pg := f.Services["postgres"]
	for _, a := range agents {
		env := f.Services[a].Environment
		u, err := url.Parse(env["SILT_BUCKET"])
		if err != nil {
			t.Fatalf("%s: SILT_BUCKET: %v", a, err)
		}
		if u.Scheme != "s3" || u.Host != bucket {
			t.Errorf("%s: SILT_BUCKET %q, want s3://%s/... (the bucket minio-init creates)", a, u, bucket)
		}
		ep, err := url.Parse(u.Query().Get("endpoint"))
		if err != nil || ep.Hostname() != "minio" || ep.Port() != "9000" {
			t.Errorf("%s: bucket endpoint %q, want http://minio:9000", a, u.Query().Get("endpoint"))
		}
		if u.Query().Get("region") == "" {
			t.Errorf("%s: bucket URL has no region", a)
		}
		if env["AWS_ACCESS_KEY_ID"] != minio.Environment["MINIO_ROOT_USER"] ||
			env["AWS_SECRET_ACCESS_KEY"] != minio.Environment["MINIO_ROOT_PASSWORD"] {
			t.Errorf("%s: AWS credentials do not match MinIO's root user", a)
		}

		pu, err := url.Parse(env["SILT_METASTORE"])
		if err != nil {
			t.Fatalf("%s: SILT_METASTORE: %v", a, err)
		}
		pass, _ := pu.User.Password()
		if pu.Scheme != "postgres" || pu.Hostname() != "postgres" || pu.Port() != "5432" ||
			pu.User.Username() != pg.Environment["POSTGRES_USER"] || pass != pg.Environment["POSTGRES_PASSWORD"] ||
			strings.TrimPrefix(pu.Path, "/") != pg.Environment["POSTGRES_DB"] {
			t.Errorf("%s: SILT_METASTORE %q does not match the postgres service", a, env["SILT_METASTORE"])
		}
	}
	if mc.Environment["MINIO_ROOT_USER"] != minio.Environment["MINIO_ROOT_USER"] {
		t.Errorf("minio-init logs in as %q, MinIO's root user is %q", mc.Environment["MINIO_ROOT_USER"], minio.Environment["MINIO_ROOT_USER"])
	}
}

type promConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusTargets(t *testing.T) {
	f := loadCompose(t)
	const cfgPath = "deploy/compose/prometheus.yml"
	if !slices.ContainsFunc(f.Services["prometheus"].Volumes, func(v string) bool {
		return strings.HasPrefix(v, "./"+cfgPath+":/etc/prometheus/prometheus.yml")
	}) {
		t.Errorf("prometheus does not mount ./%s", cfgPath)
	}
	b, err := os.ReadFile(filepath.Join(root, cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	var pc promConfig
	if err := yaml.Unmarshal(b, &pc); err != nil {
		t.Fatalf("%s: %v", cfgPath, err)
	}
	var got []string
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "silt" {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job silt scrapes %s, want /metrics", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
	}
	var want []string
	for _, a := range agents {
		_, port := splitHostPort(t, a, "SILT_ADMIN_LISTEN", f.Services[a].Environment["SILT_ADMIN_LISTEN"])
		want = append(want, fmt.Sprintf("%s:%d", a, port))
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("prometheus job silt targets %v, want %v (every agent's admin port)", got, want)
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(b), " ")
	var stages [][]string // instructions per stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a final stage", len(stages))
	}
	build := strings.Join(stages[0], "\n")
	for _, want := range []string{"golang:1.26", "CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w`, "./cmd/silt"} {
		if !strings.Contains(build, want) {
			t.Errorf("builder stage lacks %q", want)
		}
	}
	final := stages[len(stages)-1]
	instr := func(name string) []string {
		var out []string
		for _, l := range final {
			if strings.HasPrefix(l, name+" ") {
				out = append(out, strings.TrimSpace(strings.TrimPrefix(l, name+" ")))
			}
		}
		return out
	}
	from := instr("FROM")[0]
	if !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("final image %q: want distroless static or scratch", from)
	}
	if u := instr("USER"); len(u) != 1 || !strings.HasPrefix(u[0], "65532") {
		t.Errorf("final stage USER %v, want 65532 (non-root)", u)
	}
	if e := instr("EXPOSE"); len(e) != 1 || !slices.Equal(strings.Fields(e[0]), []string{"9092", "9644"}) {
		t.Errorf("EXPOSE %v, want 9092 9644", e)
	}
	jsonInstr := func(name string) []string {
		v := instr(name)
		if len(v) != 1 {
			t.Fatalf("final stage has %d %s instructions, want 1", len(v), name)
		}
		var l []string
		if err := json.Unmarshal([]byte(v[0]), &l); err != nil {
			t.Fatalf("%s %s: want exec (JSON) form: %v", name, v[0], err)
		}
		return l
	}
	if got := jsonInstr("ENTRYPOINT"); !slices.Equal(got, []string{"silt"}) {
		t.Errorf("ENTRYPOINT %q, want [silt]", got)
	}
	wantCmd := []string{"dev", "--listen", "0.0.0.0:9092", "--admin-listen", "0.0.0.0:9644", "--data-dir", "/data"}
	if got := jsonInstr("CMD"); !slices.Equal(got, wantCmd) {
		t.Errorf("CMD %q, want %q", got, wantCmd)
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(ignore), "\n")
	if !slices.Contains(lines, ".git") {
		t.Errorf(".dockerignore does not exclude .git")
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "cmd/", "*.go", "**/*.go"} {
		if slices.Contains(lines, keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}
