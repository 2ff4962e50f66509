package ingest

import "time"

// Source is one producer connection as the early cut sees it (see
// Config.EarlyCut): how many of its appends wait for their commit, how
// many of those are in the open segment, and when it last appended. A
// connection takes one from NewSource, passes it to every AppendFrom whose
// answer it will wait for, and closes it when the connection ends. A
// Source is not safe for use by more than one connection; its fields are
// guarded by its Pipeline's mu.
type Source struct {
	p *Pipeline

	waiting int          // appends not yet committed or failed
	seg     *openSegment // the segment inOpen counts for
	inOpen  int          // appends in seg
	last    time.Time    // the latest append
	kind    sourceKind   // as counted in p.sources
	closed  bool
}

// sourceKind is what a Source means for the early cut.
type sourceKind int

const (
	// sourceOff: closed, never appended, or idle for longer than
	// FlushInterval (dormant): not counted.
	sourceOff sourceKind = iota
	// sourceIdle: nothing waiting, appended within FlushInterval:
	// answered, and probably about to send again.
	sourceIdle
	// sourceSending: something waiting, but more may reach the open
	// segment before it commits: the connection may send more requests,
	// or some of its requests wait in segments already cut, whose
	// commits will let it send more.
	sourceSending
	// sourceStalled: StalledRequests or more waiting, all of them in the
	// open segment: it sends nothing more until the open segment commits.
	sourceStalled
)

// NewSource returns a Source for one producer connection. It costs
// nothing until its first append.
func (p *Pipeline) NewSource() *Source { return &Source{p: p} }

// Close stops counting the connection: its appends still complete, but a
// closed connection no longer holds back early cuts.
func (s *Source) Close() {
	if s == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.leaveLocked(s)
	s.closed = true
}

// sourceState counts sources by kind. All fields are guarded by
// Pipeline.mu.
type sourceState struct {
	// sending counts sourceSending sources: no early cut while any
	// exists.
	sending int
	// idle holds sourceIdle sources. The early cut drops those idle for
	// longer than FlushInterval (they become sourceOff until their next
	// append), so it looks at each idle source at most once per idle
	// period.
	idle map[*Source]struct{}
}

// kindLocked is s's kind from its fields.
func (p *Pipeline) kindLocked(s *Source) sourceKind {
	switch {
	case s.closed:
		return sourceOff
	case s.waiting == 0:
		return sourceIdle
	case s.waiting >= StalledRequests && s.seg == p.open && s.inOpen == s.waiting:
		return sourceStalled
	}
	return sourceSending
}

// leaveLocked takes s out of the counts of the kind it was counted as.
func (p *Pipeline) leaveLocked(s *Source) {
	switch s.kind {
	case sourceIdle:
		delete(p.sources.idle, s)
	case sourceSending:
		p.sources.sending--
	}
	s.kind = sourceOff
}

// enterLocked counts s as its current kind.
func (p *Pipeline) enterLocked(s *Source) {
	s.kind = p.kindLocked(s)
	switch s.kind {
	case sourceIdle:
		if p.sources.idle == nil {
			p.sources.idle = make(map[*Source]struct{})
		}
		p.sources.idle[s] = struct{}{}
	case sourceSending:
		p.sources.sending++
	}
}

// appendedLocked counts one append of s to the open segment, made at now.
func (p *Pipeline) appendedLocked(s *Source, now time.Time) {
	p.leaveLocked(s)
	if s.seg != p.open {
		s.seg, s.inOpen = p.open, 0
		p.open.sources = append(p.open.sources, s)
	}
	s.waiting++
	s.inOpen++
	s.last = now
	p.enterLocked(s)
}

// doneLocked counts one of s's appends as committed or failed.
func (p *Pipeline) doneLocked(s *Source) {
	p.leaveLocked(s)
	s.waiting--
	p.enterLocked(s)
}

// recountLocked recounts the sources that appended to a segment just cut:
// their appends there no longer count as in the open segment.
func (p *Pipeline) recountLocked(cut *openSegment) {
	for _, s := range cut.sources {
		p.leaveLocked(s)
		p.enterLocked(s)
	}
}

// stalledLocked reports whether every producer connection that counts is
// stalled on the open segment, s (which just appended to it) among them:
// then nothing more will reach the open segment until it commits, and
// waiting for the flush interval gathers no more data.
func (p *Pipeline) stalledLocked(s *Source, now time.Time) bool {
	if s == nil || s.kind != sourceStalled || p.sources.sending > 0 {
		return false
	}
	for i := range p.sources.idle {
		if now.Sub(i.last) < p.cfg.FlushInterval {
			return false
		}
		delete(p.sources.idle, i)
		i.kind = sourceOff
	}
	return true
}

// earlyCutLocked cuts the open segment, or schedules its cut at the
// earliest time EarlyCutMinInterval allows, when every producer is
// stalled on it. It returns whether it cut.
func (p *Pipeline) earlyCutLocked(s *Source, now time.Time) bool {
	if !p.cfg.EarlyCut || p.open.bytes == 0 || !p.stalledLocked(s, now) {
		return false
	}
	at := p.lastCut.Add(p.cfg.EarlyCutMinInterval)
	if !now.Before(at) {
		p.cutLocked("early")
		return true
	}
	if at.Before(p.open.deadline) {
		p.open.deadline, p.open.early = at, true
		select {
		case p.arm <- struct{}{}:
		default:
		}
	}
	return false
}
