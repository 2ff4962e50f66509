package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/tests/harness"
)

// The differential test sends one corpus of requests (diffCorpus, valid
// and invalid) through kmsg to Apache Kafka and to silt, in the same order
// on the same fixtures, and compares the error codes and the fields that
// must agree. A case whose difference is deliberate names the reason
// (diffCase.deviation), which is also written in the handler's header
// comment and in the README; such a case must still differ, so the list
// stays true.

// diffSide is one broker under comparison, spoken to frame by frame.
type diffSide struct {
	name     string
	addr     string
	conn     net.Conn
	corr     int32
	f        *kmsg.RequestFormatter
	versions map[int16][2]int16
	// Per-broker facts the cases need: topic ids and a node id differ.
	topicIDs map[string][16]byte
	nodeID   int32
	// The idempotent producer of the produce cases.
	pid   int64
	epoch int16
	// The transactional producers of the transaction cases, by
	// transactional id.
	txns map[string]*diffTxn
}

// errClosed is the outcome of a request the broker answered by closing
// the connection, or did not answer in time.
var errClosed = errors.New("no answer (connection closed or timed out)")

func newDiffSide(name, addr string) *diffSide {
	return &diffSide{name: name, addr: addr, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("silt-diff")),
		topicIDs: map[string][16]byte{}, txns: map[string]*diffTxn{}}
}

func (s *diffSide) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// do sends req at its version and decodes the answer, reconnecting first
// when the last request closed the connection.
func (s *diffSide) do(req kmsg.Request) (kmsg.Response, error) {
	if s.conn == nil {
		c, err := net.DialTimeout("tcp", s.addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	s.corr++
	// Every answer comes at once (max wait 0 in fetches); a broker that
	// has not answered in 10 s is not going to.
	s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(s.f.AppendRequest(nil, req, s.corr)); err != nil {
		s.close()
		return nil, errClosed
	}
	if req.Key() == 0 && req.(*kmsg.ProduceRequest).Acks == 0 {
		return nil, nil
	}
	frame, err := readFrame(s.conn)
	if err != nil {
		s.close()
		return nil, errClosed
	}
	body := frame[4:]
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != s.corr {
		s.close()
		return nil, fmt.Errorf("%s: bad response header", s.name)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && resp.Key() != 18 {
		if len(body) == 0 || body[0] != 0 {
			return nil, fmt.Errorf("%s: unexpected response header tags", s.name)
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s: decode %T v%d: %w", s.name, resp, resp.GetVersion(), err)
	}
	return resp, nil
}

// diffEnv is what cases build requests from: one side's fixture names and
// ids.
type diffEnv struct {
	side *diffSide
	px   string // the run's name prefix, the same on both sides
}

func (e diffEnv) topic(name string) string { return e.px + "-" + name }

// id is the side's topic id of a fixture topic (zero when unknown).
func (e diffEnv) id(name string) [16]byte { return e.side.topicIDs[e.topic(name)] }

// diffCase is one request of the corpus.
type diffCase struct {
	name string
	// build makes the request for one side. prep, when set, runs first on
	// that side (requests whose outcome is not compared: joining a member
	// before a request about it, say) and may hand build a value.
	prep  func(e diffEnv) (any, error)
	build func(e diffEnv, prepped any) kmsg.Request
	// fields beyond every ErrorCode that must agree, by Go field name
	// anywhere in the response.
	fields []string
	// compare, when set, replaces the field comparison.
	compare func(k, s kmsg.Response) []string
	// deviation, when set, is the documented reason silt answers this
	// request differently on purpose.
	deviation string
	// settle repeats the request first until its answer stops changing:
	// for reads right after a change that Kafka's controller propagates
	// to the broker asynchronously (new partitions, deleted topics,
	// altered configs).
	settle bool
}

// TestDifferential runs the corpus against Apache Kafka and silt dev and
// silt agent.
//
// The backends run one after the other: a few cases touch names every run
// shares on the Kafka broker (the empty group id, __consumer_offsets).
func TestDifferential(t *testing.T) {
	t.Parallel()
	ref := harness.Kafka(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.define(t, "--flush-interval", "10ms", "--log-level", "warn").Start()
			runDifferential(t, ref.Addr, s.Kafka())
		})
	}
}

func runDifferential(t *testing.T, kafkaAddr, siltAddr string) {
	px := fmt.Sprintf("diff%d", time.Now().UnixNano()%1e9)
	k, s := newDiffSide("kafka", kafkaAddr), newDiffSide("silt", siltAddr)
	defer k.close()
	defer s.close()
	for _, side := range []*diffSide{k, s} {
		if err := diffFixtures(side, px); err != nil {
			t.Fatalf("%s fixtures: %v", side.name, err)
		}
	}
	// The version ranges: silt still serves versions Kafka 4 removed
	// (KIP-896) for older clients; the corpus uses the common ones.
	for key, sv := range s.versions {
		if kv, ok := k.versions[key]; ok && kv != sv {
			t.Logf("%s: silt v%d-%d, kafka v%d-%d", kmsg.NameForKey(key), sv[0], sv[1], kv[0], kv[1])
		} else if !ok {
			t.Logf("%s: silt v%d-%d, kafka does not serve it", kmsg.NameForKey(key), sv[0], sv[1])
		}
	}
	corpus := diffCorpus(k, s, px)
	if len(corpus) < 200 {
		t.Errorf("the corpus has %d requests; keep it at 200 or more", len(corpus))
	}
	var agreed, deviations int
	for _, c := range corpus {
		start := time.Now()
		var out [2]kmsg.Response
		var errs [2]error
		for i, side := range []*diffSide{k, s} {
			e := diffEnv{side: side, px: px}
			var prepped any
			if c.prep != nil {
				var err error
				if prepped, err = c.prep(e); err != nil {
					t.Fatalf("%s: prep on %s: %v", c.name, side.name, err)
				}
			}
			if c.settle {
				if err := settleOn(side, func() kmsg.Request { return c.build(e, prepped) }); err != nil {
					t.Fatalf("%s: settle on %s: %v", c.name, side.name, err)
				}
			}
			out[i], errs[i] = side.do(c.build(e, prepped))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("%s took %v", c.name, d.Round(time.Millisecond))
		}
		diffs := diffOutcomes(c, out, errs)
		switch {
		case c.deviation != "" && len(diffs) == 0:
			t.Errorf("%s: listed as a deliberate deviation (%s) but silt now answers as Kafka: remove the entry", c.name, c.deviation)
		case c.deviation != "":
			deviations++
			t.Logf("%s: deliberate deviation (%s): %s", c.name, c.deviation, strings.Join(diffs, "; "))
		case len(diffs) > 0:
			t.Errorf("%s: silt differs from Kafka: %s", c.name, strings.Join(diffs, "; "))
		default:
			agreed++
		}
	}
	t.Logf("%d requests: %d agree, %d deliberate deviations", len(corpus), agreed, deviations)
}

// settleOn repeats a request until three answers in a row are the same
// (or 10 s pass): a broker's view that is still catching up changes
// between them.
func settleOn(side *diffSide, build func() kmsg.Request) error {
	var prev kmsg.Response
	same := 0
	for deadline := time.Now().Add(10 * time.Second); same < 2 && time.Now().Before(deadline); {
		r, err := side.do(build())
		if err != nil {
			return err
		}
		if prev != nil && reflect.DeepEqual(prev, r) {
			same++
		} else {
			same = 0
		}
		prev = r
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// diffOutcomes compares the two answers to one case.
func diffOutcomes(c diffCase, out [2]kmsg.Response, errs [2]error) []string {
	if errs[0] != nil || errs[1] != nil {
		if errors.Is(errs[0], errClosed) && errors.Is(errs[1], errClosed) {
			return nil
		}
		return []string{fmt.Sprintf("kafka: %v, silt: %v", outcome(out[0], errs[0]), outcome(out[1], errs[1]))}
	}
	if out[0] == nil || out[1] == nil {
		return nil // acks=0
	}
	if c.compare != nil {
		return c.compare(out[0], out[1])
	}
	return compareFields(out[0], out[1], append([]string{"ErrorCode"}, c.fields...))
}

func outcome(r kmsg.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return "an answer"
}

// compareFields compares every field with one of names, by path.
func compareFields(k, s kmsg.Response, names []string) []string {
	kf, sf := map[string]any{}, map[string]any{}
	collect(reflect.ValueOf(k), "", names, kf)
	collect(reflect.ValueOf(s), "", names, sf)
	var paths []string
	for p := range kf {
		paths = append(paths, p)
	}
	for p := range sf {
		if _, ok := kf[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var diffs []string
	for _, p := range paths {
		kv, kok := kf[p]
		sv, sok := sf[p]
		switch {
		case !kok:
			diffs = append(diffs, fmt.Sprintf("%s: only silt answers it (%s)", p, show(p, sv)))
		case !sok:
			diffs = append(diffs, fmt.Sprintf("%s: only kafka answers it (%s)", p, show(p, kv)))
		case !reflect.DeepEqual(kv, sv):
			diffs = append(diffs, fmt.Sprintf("%s: kafka %s, silt %s", p, show(p, kv), show(p, sv)))
		}
	}
	return diffs
}

func show(path string, v any) string {
	if strings.HasSuffix(path, "ErrorCode") {
		if code, ok := v.(int16); ok {
			var ke *kerr.Error
			if errors.As(kerr.ErrorForCode(code), &ke) {
				return ke.Message
			}
			return "NONE"
		}
	}
	if p, ok := v.(*string); ok {
		if p == nil {
			return "null"
		}
		return *p
	}
	return fmt.Sprint(v)
}

// collect walks v and records the fields named in names by their path.
func collect(v reflect.Value, path string, names []string, into map[string]any) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collect(v.Elem(), path, names, into)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Name == "UnknownTags" {
				continue
			}
			p := f.Name
			if path != "" {
				p = path + "." + f.Name
			}
			if slices.Contains(names, f.Name) {
				into[p] = v.Field(i).Interface()
				continue
			}
			collect(v.Field(i), p, names, into)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			collect(v.Index(i), fmt.Sprintf("%s[%d]", path, i), names, into)
		}
	}
}

// diffFixtures creates the same topics, records and group offsets on a
// side and learns its topic ids and node id.
func diffFixtures(s *diffSide, px string) error {
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "silt-diff", "1"
	r, err := s.do(av)
	if err != nil {
		return err
	}
	s.versions = map[int16][2]int16{}
	for _, k := range r.(*kmsg.ApiVersionsResponse).ApiKeys {
		s.versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version = 5
	create.TimeoutMillis = 30000
	for _, ft := range []struct {
		name       string
		partitions int32
		configs    map[string]string
	}{
		{"a", 3, nil},
		{"b", 1, nil},
		{"c", 1, map[string]string{"cleanup.policy": "compact"}},
		{"small", 1, map[string]string{"max.message.bytes": "1024"}},
		{"grow", 1, nil},
		{"del", 1, nil},
		{"del2", 1, nil},
		{"cfg", 1, map[string]string{"retention.ms": "3600000"}},
		{"txn", 3, nil},
	} {
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic = px + "-" + ft.name
		ct.NumPartitions, ct.ReplicationFactor = ft.partitions, 1
		for k, v := range ft.configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			ct.Configs = append(ct.Configs, c)
		}
		create.Topics = append(create.Topics, ct)
	}
	r, err = s.do(create)
	if err != nil {
		return err
	}
	for _, ct := range r.(*kmsg.CreateTopicsResponse).Topics {
		if ct.ErrorCode != 0 {
			return fmt.Errorf("create %s: %w", ct.Topic, kerr.ErrorForCode(ct.ErrorCode))
		}
	}
	// 10 records with known timestamps in a-0 (record 7 the latest), 3 in a-1.
	for _, p := range []struct {
		partition int32
		n         int
	}{{0, 10}, {1, 3}} {
		var recs []diffRecord
		for i := range p.n {
			ts := diffBase + int64(i)*1000
			if i == 7 {
				ts = diffBase + 100_000
			}
			recs = append(recs, diffRecord{key: fmt.Sprintf("k%d", i), value: fmt.Sprintf("v%d", i), ts: ts})
		}
		// One batch per record, so offsets and timestamps map one to one.
		for _, rec := range recs {
			req := produceRequest(9, px+"-a", p.partition, diffBatch(-1, -1, -1, rec))
			err := retryRetriable(func() (int16, error) {
				r, err := s.do(req)
				if err != nil {
					return 0, err
				}
				return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, nil
			})
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
		}
	}
	// Committed offsets of an empty group (no members): 5 on a-0.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 8
	oc.Group, oc.Generation = px+"-g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = px + "-a"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 5
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	// A group lookup first, which creates __consumer_offsets on both.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = px + "-g"
	err = retryRetriable(func() (int16, error) {
		r, err := s.do(fc)
		if err != nil {
			return 0, err
		}
		return r.(*kmsg.FindCoordinatorResponse).ErrorCode, nil
	})
	if err != nil {
		return fmt.Errorf("find coordinator: %w", err)
	}
	err = retryRetriable(func() (int16, error) {
		r, err := s.do(oc)
		if err != nil {
			return 0, err
		}
		return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil
	})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	r, err = s.do(md)
	if err != nil {
		return err
	}
	mr := r.(*kmsg.MetadataResponse)
	s.nodeID = mr.Brokers[0].NodeID
	for _, t := range mr.Topics {
		if t.Topic != nil {
			s.topicIDs[*t.Topic] = t.TopicID
		}
	}
	return nil
}

// retryRetriable repeats a fixture request while it answers a retriable
// error: Kafka elects a new topic's leaders, and loads the group
// coordinator, a moment after it answers the request that made them.
func retryRetriable(do func() (int16, error)) error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, err := do()
		if err != nil || code == 0 {
			return err
		}
		if err := kerr.ErrorForCode(code); !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// diffBase is the fixtures' first record timestamp: a round minute an hour
// ago, so timestamp lookups have fixed answers.
var diffBase = (time.Now().Add(-time.Hour).UnixMilli() / 60000) * 60000

type diffRecord struct {
	key, value string
	ts         int64
	noKey      bool
}

// diffBatch encodes one uncompressed magic-2 batch of recs (first
// timestamp from the first record) with a producer id, epoch and first
// sequence (-1 for none), correct length and CRC.
func diffBatch(producerID int64, epoch int16, seq int32, recs ...diffRecord) []byte {
	var body []byte
	first, maxTS := recs[0].ts, recs[0].ts
	for i, r := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: r.ts - first, Value: []byte(r.value)}
		if !r.noKey {
			rec.Key = []byte(r.key)
		}
		maxTS = max(maxTS, r.ts)
		enc := rec.AppendTo(nil)[1:]
		body = binary.AppendVarint(body, int64(len(enc)))
		body = append(body, enc...)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}
