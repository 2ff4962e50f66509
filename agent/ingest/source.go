package ingest

import "time"

// Source is one producer connection as the early cut sees it (see
// Config.EarlyCut): how many of its appends wait for their commit, and
// when it last appended. A connection takes one from NewSource, passes
// it to every AppendFrom whose answer it will wait for, and closes it
// when the connection ends. A Source is not safe for use by more than one
// connection; its fields are guarded by its Pipeline's mu.
type Source struct {
	p *Pipeline

	waiting int       // appends not yet committed or failed
	last    time.Time // the latest append
	idle    bool      // in p.idle: waiting is 0 and last is recent
	closed  bool
}

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
	if s.closed {
		return
	}
	s.p.leaveLocked(s)
	s.closed = true
}

// sourceState counts sources by what they mean for the early cut. All
// fields are guarded by Pipeline.mu.
type sourceState struct {
	// sending counts open sources with some but fewer than
	// StalledRequests appends waiting: they can send more, so no early
	// cut while any exists.
	sending int
	// idle holds open sources with nothing waiting that appended within
	// FlushInterval: answered, and probably about to send again. A source
	// idle for longer is dropped from it (dormant) and comes back with
	// its next append, so the early cut looks at each idle source at
	// most once per idle period.
	idle map[*Source]struct{}
}

// leaveLocked takes s out of the counts of its current waiting level.
func (p *Pipeline) leaveLocked(s *Source) {
	if s.closed {
		return
	}
	switch {
	case s.waiting == 0:
		if s.idle {
			delete(p.sources.idle, s)
			s.idle = false
		}
	case s.waiting < StalledRequests:
		p.sources.sending--
	}
}

// enterLocked puts s into the counts of its current waiting level.
func (p *Pipeline) enterLocked(s *Source) {
	if s.closed {
		return
	}
	switch {
	case s.waiting == 0:
		if p.sources.idle == nil {
			p.sources.idle = make(map[*Source]struct{})
		}
		p.sources.idle[s] = struct{}{}
		s.idle = true
	case s.waiting < StalledRequests:
		p.sources.sending++
	}
}

// appendedLocked counts one append of s, made at now.
func (p *Pipeline) appendedLocked(s *Source, now time.Time) {
	p.leaveLocked(s)
	s.waiting++
	s.last = now
	p.enterLocked(s)
}

// doneLocked counts one of s's appends as committed or failed.
func (p *Pipeline) doneLocked(s *Source) {
	p.leaveLocked(s)
	s.waiting--
	p.enterLocked(s)
}

// stalledLocked reports whether every producer connection that counts is
// stalled, s (which just appended to the open segment) among them: then
// nothing more will reach the open segment until a commit answers one of
// them, and waiting for the flush interval gathers no more data.
func (p *Pipeline) stalledLocked(s *Source, now time.Time) bool {
	if s == nil || s.closed || s.waiting < StalledRequests || p.sources.sending > 0 {
		return false
	}
	for i := range p.sources.idle {
		if now.Sub(i.last) < p.cfg.FlushInterval {
			return false
		}
		delete(p.sources.idle, i)
		i.idle = false
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
