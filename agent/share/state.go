package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A share-partition's in-flight records, as STATE.md describes them: the
// window [start, end) covered by spans of consecutive offsets sharing one
// state. All of it runs on one agent at a time per row version (the
// compare-and-set in the metastore decides whose change stands), so none
// of it is safe for concurrent use and none needs to be.

// recState is an in-flight record's state.
type recState uint8

const (
	stateAvailable recState = iota
	stateAcquired
	stateAcknowledged
	stateArchived
	numStates
)

func (s recState) done() bool { return s == stateAcknowledged || s == stateArchived }

// span is a run of consecutive offsets sharing one state.
type span struct {
	n        int64 // records in the span, >= 1
	state    recState
	count    int32  // delivery count
	member   string // acquired: the member holding the lock
	deadline int64  // acquired: when the lock expires, Unix milliseconds
}

func (s span) sameAs(o span) bool {
	return s.state == o.state && s.count == o.count && s.member == o.member && s.deadline == o.deadline
}

// partState is one share-partition's start offset and in-flight window.
type partState struct {
	start int64
	spans []span
}

// end is the offset after the window: the next offset to take from the
// log.
func (p *partState) end() int64 {
	e := p.start
	for _, s := range p.spans {
		e += s.n
	}
	return e
}

// Limits are a group's share settings that acquisitions follow.
type Limits struct {
	LockMs        int64 // share.record.lock.duration.ms
	DeliveryLimit int32 // share.delivery.count.limit
	MaxLocks      int64 // share.partition.max.record.locks
}

// errors of decode.
var errBadState = errors.New("share-partition state malformed")

const stateVersion = 1

// encode is the row's state bytes (STATE.md). An empty window encodes as
// no bytes at all, as the store initializes rows.
func (p *partState) encode() []byte {
	if len(p.spans) == 0 {
		return []byte{}
	}
	var members []string
	index := map[string]uint64{}
	for _, s := range p.spans {
		if s.state == stateAcquired {
			if _, ok := index[s.member]; !ok {
				index[s.member] = uint64(len(members))
				members = append(members, s.member)
			}
		}
	}
	b := []byte{stateVersion}
	b = binary.AppendUvarint(b, uint64(p.end()-p.start))
	b = binary.AppendUvarint(b, uint64(len(members)))
	for _, m := range members {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	b = binary.AppendUvarint(b, uint64(len(p.spans)))
	for _, s := range p.spans {
		b = binary.AppendUvarint(b, uint64(s.n))
		b = append(b, byte(s.state))
		b = binary.AppendUvarint(b, uint64(s.count))
		if s.state == stateAcquired {
			b = binary.AppendUvarint(b, index[s.member])
			b = binary.AppendVarint(b, s.deadline)
		}
	}
	return b
}

// decoder reads varints with a sticky error (the model is Prometheus'
// tsdb Decbuf).
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadState
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadState
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errBadState
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errBadState
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// maxDecodedSpans bounds what decode allocates for a corrupt row: no
// group may allow more in-flight records than this.
const maxDecodedSpans = 1 << 20

// decode parses a row's state bytes for a window starting at start.
func decode(start int64, b []byte) (*partState, error) {
	p := &partState{start: start}
	if len(b) == 0 {
		return p, nil
	}
	d := &decoder{b: b}
	if v := d.byte(); d.err == nil && v != stateVersion {
		return nil, fmt.Errorf("%w: version %d", errBadState, v)
	}
	window := d.uvarint()
	nm := d.uvarint()
	if nm > maxDecodedSpans {
		return nil, fmt.Errorf("%w: %d members", errBadState, nm)
	}
	members := make([]string, 0, min(nm, 1024))
	for range nm {
		members = append(members, string(d.bytes(d.uvarint())))
	}
	ns := d.uvarint()
	if ns > maxDecodedSpans || d.err != nil {
		return nil, fmt.Errorf("%w: %d spans", errBadState, ns)
	}
	p.spans = make([]span, 0, min(ns, 4096))
	var total uint64
	for range ns {
		s := span{n: int64(d.uvarint())}
		st := d.byte()
		s.count = int32(min(d.uvarint(), 1<<30))
		if st >= byte(numStates) || s.n <= 0 {
			return nil, fmt.Errorf("%w: span state %d length %d", errBadState, st, s.n)
		}
		s.state = recState(st)
		if s.state == stateAcquired {
			i := d.uvarint()
			if d.err == nil && i >= uint64(len(members)) {
				return nil, fmt.Errorf("%w: member %d of %d", errBadState, i, len(members))
			}
			if d.err == nil {
				s.member = members[i]
			}
			s.deadline = d.varint()
		}
		total += uint64(s.n)
		p.spans = append(p.spans, s)
	}
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.b) != 0:
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadState, len(d.b))
	case total != window:
		return nil, fmt.Errorf("%w: spans cover %d records of a window of %d", errBadState, total, window)
	}
	return p, nil
}

// split makes off a span boundary (off inside the window) and returns the
// index of the span starting at off, or len(spans) when off is the end.
func (p *partState) split(off int64) int {
	at := p.start
	for i := range p.spans {
		s := p.spans[i]
		switch {
		case off == at:
			return i
		case off < at+s.n:
			left, right := s, s
			left.n, right.n = off-at, at+s.n-off
			p.spans = slices.Insert(p.spans, i+1, right)
			p.spans[i] = left
			return i + 1
		}
		at += s.n
	}
	return len(p.spans)
}

// release is the state an acquired or released record takes when it
// becomes free: available, or archived past the delivery limit.
func release(s span, limit int32) span {
	s.member, s.deadline = "", 0
	if s.count >= limit {
		s.state = stateArchived
	} else {
		s.state = stateAvailable
	}
	return s
}

// normalize expires locks whose deadline passed (at nowMs), then moves
// the start past finished records and merges neighbouring spans. Every
// operation starts and ends with it.
func (p *partState) normalize(nowMs int64, lim Limits) {
	for i := range p.spans {
		if s := p.spans[i]; s.state == stateAcquired && s.deadline <= nowMs {
			p.spans[i] = release(s, lim.DeliveryLimit)
		}
	}
	merged := p.spans[:0]
	for _, s := range p.spans {
		if n := len(merged); n > 0 && merged[n-1].sameAs(s) {
			merged[n-1].n += s.n
			continue
		}
		merged = append(merged, s)
	}
	p.spans = merged
	for len(p.spans) > 0 && p.spans[0].state.done() {
		p.start += p.spans[0].n
		p.spans = p.spans[1:]
	}
	if len(p.spans) == 0 {
		p.spans = nil
	}
}

// skipTo moves the start to off (records below it left the log: retention
// or DeleteRecords), dropping what the window held below it.
func (p *partState) skipTo(off int64) {
	if off <= p.start {
		return
	}
	if off >= p.end() {
		p.start, p.spans = off, nil
		return
	}
	i := p.split(off)
	p.spans = slices.Clone(p.spans[i:])
	p.start = off
}

// nextFetch is the lowest offset an acquisition could take at nowMs: the
// first available record in the window, else the window's end when the
// window may grow (below MaxLocks). ok is false when nothing can be
// acquired until records are acknowledged, released or their locks
// expire.
func (p *partState) nextFetch(nowMs int64, lim Limits) (off int64, ok bool) {
	p.normalize(nowMs, lim)
	at := p.start
	for _, s := range p.spans {
		if s.state == stateAvailable {
			return at, true
		}
		at += s.n
	}
	return at, at-p.start < lim.MaxLocks
}

// earliestDeadline is the earliest lock deadline in the window, or 0.
func (p *partState) earliestDeadline() int64 {
	var d int64
	for _, s := range p.spans {
		if s.state == stateAcquired && (d == 0 || s.deadline < d) {
			d = s.deadline
		}
	}
	return d
}

// Acquired is one range of acquired offsets with its delivery count, as
// ShareFetch answers it.
type Acquired struct {
	First, Last int64
	Count       int32
}

// acquire takes up to max records for member among [from, to]: available
// records of the window, and new records past the window's end while the
// window stays below MaxLocks. An available record at the delivery limit
// is archived instead. It returns the acquired ranges.
func (p *partState) acquire(member string, from, to int64, max int64, nowMs int64, lim Limits) []Acquired {
	var out []Acquired
	add := func(first, n int64, count int32) {
		if k := len(out); k > 0 && out[k-1].Last == first-1 && out[k-1].Count == count {
			out[k-1].Last += n
			return
		}
		out = append(out, Acquired{First: first, Last: first + n - 1, Count: count})
	}
	p.normalize(nowMs, lim)
	deadline := nowMs + lim.LockMs
	from = maxInt(from, p.start)
	taken := int64(0)
	// Inside the window.
	for off, end := from, p.end(); off <= to && off < end && taken < max; {
		i := p.split(off)
		s := p.spans[i]
		n := minInt(s.n, to-off+1, max-taken)
		if n < s.n {
			p.split(off + n)
			s = p.spans[i]
		}
		if s.state == stateAvailable {
			if s.count >= lim.DeliveryLimit {
				p.spans[i].state = stateArchived
			} else {
				p.spans[i] = span{n: s.n, state: stateAcquired, count: s.count + 1, member: member, deadline: deadline}
				add(off, s.n, s.count+1)
				taken += s.n
			}
		}
		off += s.n
	}
	// Past the window: new records.
	if end := p.end(); to >= end && taken < max {
		n := minInt(to-end+1, max-taken, lim.MaxLocks-(end-p.start))
		if n > 0 {
			p.spans = append(p.spans, span{n: n, state: stateAcquired, count: 1, member: member, deadline: deadline})
			add(end, n, 1)
		}
	}
	p.normalize(nowMs, lim)
	return out
}

// Ack types of ShareFetch and ShareAcknowledge (Kafka's AcknowledgeType).
const (
	AckGap     int8 = 0
	AckAccept  int8 = 1
	AckRelease int8 = 2
	AckReject  int8 = 3
	AckRenew   int8 = 4 // KIP-1222, ShareAcknowledge / ShareFetch v2
)

// AckBatch is one acknowledgement batch: offsets [First, Last] with one
// type for all, or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []int8
}

// Errors of acknowledge, mapped to INVALID_REQUEST and
// INVALID_RECORD_STATE.
var (
	ErrBadAck      = errors.New("malformed acknowledgement batch")
	ErrRecordState = errors.New("record not acquired by this member")
)

// ValidateAcks checks a partition's batches in isolation: ordered,
// non-overlapping, and with a known type per offset (maxType: the highest
// type the request may carry). Errors: ErrBadAck.
func ValidateAcks(batches []AckBatch, maxType int8) error {
	prev := int64(-1)
	for _, b := range batches {
		switch {
		case b.First > b.Last || b.First < 0:
			return fmt.Errorf("%w: offsets %d-%d", ErrBadAck, b.First, b.Last)
		case b.First <= prev:
			return fmt.Errorf("%w: batches overlap or are out of order at %d", ErrBadAck, b.First)
		case len(b.Types) == 0:
			return fmt.Errorf("%w: no acknowledge type", ErrBadAck)
		case len(b.Types) > 1 && int64(len(b.Types)) != b.Last-b.First+1:
			return fmt.Errorf("%w: %d types for %d offsets", ErrBadAck, len(b.Types), b.Last-b.First+1)
		}
		for _, t := range b.Types {
			if t < 0 || t > maxType {
				return fmt.Errorf("%w: acknowledge type %d", ErrBadAck, t)
			}
		}
		prev = b.Last
	}
	return nil
}

// acknowledge applies batches of member. Every offset at or past the
// start must be acquired by member (locks expired count as released), or
// nothing changes and ErrRecordState is returned; offsets below the start
// are done already and ignored, as in Kafka. It reports whether any
// record became available again (waiting fetches may take it).
func (p *partState) acknowledge(member string, batches []AckBatch, nowMs int64, lim Limits) (released bool, err error) {
	p.normalize(nowMs, lim)
	end := p.end()
	for _, b := range batches {
		first := maxInt(b.First, p.start)
		if b.Last < first {
			continue
		}
		if b.Last >= end {
			return false, fmt.Errorf("%w: offset %d is past the acquired records (%d)", ErrRecordState, b.Last, end)
		}
		at := p.start
		for _, s := range p.spans {
			lo, hi := maxInt(at, first), minInt(at+s.n-1, b.Last)
			if lo <= hi && (s.state != stateAcquired || s.member != member) {
				return false, fmt.Errorf("%w: offset %d", ErrRecordState, lo)
			}
			at += s.n
		}
	}
	for _, b := range batches {
		for off := maxInt(b.First, p.start); off <= b.Last; {
			typ := b.Types[0]
			n := b.Last - off + 1
			if len(b.Types) > 1 {
				typ, n = b.Types[off-b.First], 1
			}
			i := p.split(off)
			if n < p.spans[i].n {
				p.split(off + n)
			}
			// The span at i now starts at off and holds at most n.
			s := p.spans[i]
			switch typ {
			case AckAccept:
				s = span{n: s.n, state: stateAcknowledged, count: s.count}
			case AckGap, AckReject:
				s = span{n: s.n, state: stateArchived, count: s.count}
			case AckRelease:
				s = release(s, lim.DeliveryLimit)
				released = released || s.state == stateAvailable
			case AckRenew:
				s.deadline = nowMs + lim.LockMs
			}
			p.spans[i] = s
			off += s.n
		}
	}
	p.normalize(nowMs, lim)
	return released, nil
}

// releaseMember releases every record member holds; it reports whether
// any became available.
func (p *partState) releaseMember(member string, nowMs int64, lim Limits) bool {
	released := false
	for i, s := range p.spans {
		if s.state == stateAcquired && s.member == member {
			p.spans[i] = release(s, lim.DeliveryLimit)
			released = released || p.spans[i].state == stateAvailable
		}
	}
	p.normalize(nowMs, lim)
	return released
}

func minInt(v int64, vs ...int64) int64 {
	for _, x := range vs {
		v = min(v, x)
	}
	return v
}

func maxInt(a, b int64) int64 { return max(a, b) }
