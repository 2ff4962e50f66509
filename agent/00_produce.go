package agent

// Produce: v3-v13.
//
// Behaviour:
//   - Each partition's records are validated as Kafka's broker does (see
//     ingest.Validate): magic 2 only (older magic INVALID_RECORD, unknown
//     magic, bad length, CRC or records CORRUPT_MESSAGE; records holding
//     no whole batch INVALID_RECORD, as Kafka's "exactly one record
//     batch" check answers them), a batch larger
//     than the topic's max.message.bytes MESSAGE_TOO_LARGE, base offset,
//     record count and offset delta consistency INVALID_RECORD, keyless
//     records on compacted topics INVALID_RECORD, zstd before v7
//     UNSUPPORTED_COMPRESSION_TYPE. Errors are per partition: the other
//     partitions of the request are still written.
//   - Every valid batch of the request goes into one segment (one
//     ingest.Append); then the next request of the connection may start
//     (so pipelined requests keep their order), and this one waits for the
//     segment's commit, bounded by timeout_ms (REQUEST_TIMED_OUT). acks=0
//     appends and answers nothing; acks=1 and acks=-1 both wait for the
//     durable write (there are no replicas). A connection's requests that
//     wait count for the early cut (ingest.Config.EarlyCut): when every
//     producer connection has 5 waiting, the segment is cut at once.
//   - A duplicate idempotent batch is answered as success with the offset
//     it got the first time; sequence and epoch errors as Kafka.
//   - LogAppendTime topics: batches are stamped with the broker time (first
//     and max timestamp, CRC recomputed), which is answered.
//   - v13 names topics by id; an unknown id answers UNKNOWN_TOPIC_ID.
//   - Transactional batches (agent/txn) are committed only while their
//     producer's transaction is ongoing at their epoch and holds the
//     partition, checked in the segment's metastore commit: a partition
//     not added answers INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v11),
//     a stale epoch INVALID_PRODUCER_EPOCH, a producer id no transactional
//     id holds INVALID_PRODUCER_ID_MAPPING. v12+ (KIP-890) adds the
//     partitions to the transaction first, implicitly (one metastore
//     transaction per request that brings a partition new to its
//     transaction). A non-transactional batch of a producer whose
//     transaction is open on the partition answers INVALID_TXN_STATE.
//     Transactional batches in a request without a transactional id
//     answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, as
//     Kafka does.
//   - Authorization (when on), as Kafka: a request with transactional
//     batches needs WRITE on its transactional id (else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition); each
//     topic needs WRITE, else TOPIC_AUTHORIZATION_FAILED for its
//     partitions (checked before the topic's existence, so an
//     unauthorized client learns nothing).
//   - Internal topics (__consumer_offsets) answer INVALID_TOPIC_EXCEPTION,
//     as Kafka answers clients other than its own admin.
//
// Differences from Kafka: a partition whose records are null answers
// INVALID_RECORD and the request's other partitions are written; Kafka
// 4.4 leaves such a request unanswered until the client times out.
// Kafka rejects v3+ requests that carry
// more than one batch for a partition; silt accepts and writes them in
// order. Produce never auto-creates topics (Kafka only creates them on
// Metadata too). A failed upload or commit answers the retriable
// KAFKA_STORAGE_ERROR; a request arriving during shutdown
// NOT_LEADER_OR_FOLLOWER. A compressed batch whose records decompress to
// more than socket.request.max.bytes answers MESSAGE_TOO_LARGE (Kafka's
// broker validates them streaming and accepts them; silt holds them in
// memory to validate them, and a crafted batch of zeros cost ~3000 times
// its size).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleProduce(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	// slot is one answered partition and its batches in items.
	type slot struct {
		p             *kmsg.ProduceResponseTopicPartition
		first, n      int
		logAppendTime bool
		topic         string // for the per-topic metrics
	}
	var (
		slots []slot
		items []ingest.Item
		now   = time.Now().UnixMilli()
	)
	fail := func(p *kmsg.ProduceResponseTopicPartition, err error, topic string) {
		p.ErrorCode = errorCode(err)
		if req.Version >= 11 && errors.Is(err, metastore.ErrPartitionNotInTxn) {
			// KIP-890: clients that know it abort and go on.
			p.ErrorCode = kerr.TransactionAbortable.Code
		}
		if req.Version >= 8 {
			var ve *ingest.ValidationError
			if errors.As(err, &ve) {
				p.ErrorMessage = kmsg.StringPtr(ve.Message)
			}
		}
		switch p.ErrorCode {
		case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code,
			kerr.TopicAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code: // logged once by the check
		default:
			r.logError(p.ErrorCode, err, "topic", topic, "partition", p.Partition)
		}
	}

	// Transactional batches need a transactional id the producer may
	// WRITE (checked before the topics, as Kafka does).
	transactional := hasTransactionalRecords(req)
	txnDenied := transactional && (req.TransactionID == nil ||
		!r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *req.TransactionID))
	if transactional && req.TransactionID == nil {
		r.logError(kerr.TransactionalIDAuthorizationFailed.Code, errNoTransactionalID)
	}

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rt.Partitions[j].Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
		}

		if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
			for j := range st.Partitions {
				st.Partitions[j].ErrorCode = kerr.InvalidRequiredAcks.Code
			}
			continue
		}

		var (
			t   metastore.Topic
			err error
		)
		switch {
		case txnDenied:
			err = kerr.TransactionalIDAuthorizationFailed
		case req.Version >= 13:
			t, err = a.topicByID(ctx, metastore.TopicID(rt.TopicID))
			if errors.Is(err, metastore.ErrUnknownTopic) {
				err = kerr.UnknownTopicID
			} else if err == nil && !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, t.Name) {
				err = kerr.TopicAuthorizationFailed
			}
		case !r.authorized(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, rt.Topic):
			err = kerr.TopicAuthorizationFailed
		default:
			t, err = a.topicByName(ctx, rt.Topic)
		}
		if err == nil && metastore.IsInternalTopic(t.Name) {
			err = kerr.InvalidTopicException
		}
		if err != nil {
			for j := range st.Partitions {
				fail(&st.Partitions[j], err, rt.Topic)
			}
			continue
		}
		cfg := a.topicConfig(t.Configs)
		opts := ingest.ValidateOptions{
			MaxMessageBytes: cfg.MaxMessageBytes,
			LogAppendTime:   cfg.LogAppendTime,
			Now:             now,
			KeysRequired:    cfg.Compact,
			AllowZstd:       req.Version >= 7,
			// A batch decompresses to at most what a request may carry.
			MaxDecompressedBytes: a.cfg.MaxRequestBytes,
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			if rp.Partition < 0 || rp.Partition >= t.Partitions {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			batches, err := ingest.Validate(rp.Records, opts)
			if err != nil {
				fail(sp, err, t.Name)
				continue
			}
			tp := metastore.TopicPartition{Topic: t.ID, Partition: rp.Partition}
			for k := range batches {
				batches[k].TopicPartition = tp
			}
			slots = append(slots, slot{p: sp, first: len(items), n: len(batches), logAppendTime: cfg.LogAppendTime, topic: t.Name})
			items = append(items, batches...)
		}
	}

	// acks=0 has no answer to carry an error, so Kafka closes the
	// connection when a partition failed; the valid ones are still written.
	noAck := func() (kmsg.Response, error) {
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce failed for %s[%d]: %s", st.Topic, sp.Partition, codeName(sp.ErrorCode))
				}
			}
		}
		return nil, nil
	}

	if transactional && req.Version >= 12 && len(items) > 0 {
		// KIP-890: the partitions join their transactions first; a
		// partition that cannot is answered and not appended.
		failed := a.implicitAdd(ctx, *req.TransactionID, items)
		if len(failed) > 0 {
			keptSlots, keptItems := slots[:0:0], items[:0:0]
			for _, s := range slots {
				if err := failed[items[s.first].TopicPartition]; err != nil {
					fail(s.p, err, s.topic)
					continue
				}
				first := len(keptItems)
				keptItems = append(keptItems, items[s.first:s.first+s.n]...)
				s.first = first
				keptSlots = append(keptSlots, s)
			}
			slots, items = keptSlots, keptItems
		}
	}

	if len(items) == 0 {
		r.release()
		if req.Acks == 0 {
			return noAck()
		}
		return resp, nil
	}

	waitCtx := ctx
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	// A connection waiting for its answers counts for the early cut;
	// acks=0 requests are not waited for.
	var src *ingest.Source
	if req.Acks != 0 && r.conn != nil {
		src = r.conn.producerSource()
	}
	pend, err := a.ingest.AppendFrom(waitCtx, src, items)
	// Append copied the batches: drop every reference into the request
	// frame so its memory goes (and its share of the queued request
	// bytes with r.release) while the produce waits for the commit.
	sizes := make([]int, len(items))
	for k := range items {
		sizes[k] = len(items[k].Batch)
		items[k].Batch = nil
	}
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			req.Topics[i].Partitions[j].Records = nil
		}
	}
	r.release()
	if err != nil {
		for _, s := range slots {
			fail(s.p, err, "")
		}
	}
	if req.Acks == 0 {
		if err == nil {
			// Nothing waits for the commit: count what was accepted.
			for _, s := range slots {
				bytes, records := itemBytes(items[s.first:s.first+s.n], sizes[s.first:s.first+s.n])
				a.metrics.topics.produced(s.topic, bytes, records)
			}
		}
		return noAck()
	}
	if err != nil {
		return resp, nil
	}
	results, err := pend.Wait(waitCtx)
	if err != nil {
		for _, s := range slots {
			fail(s.p, err, "")
		}
		return resp, nil
	}
	for _, s := range slots {
		var perr error
		for _, res := range results[s.first : s.first+s.n] {
			if res.Err != nil && !errors.Is(res.Err, metastore.ErrDuplicateSequence) {
				perr = res.Err
				break
			}
		}
		if perr != nil {
			if errors.Is(perr, metastore.ErrPartitionNotInTxn) {
				// The implicit add the cache remembered is gone (the
				// transaction ended meanwhile): ask again next time.
				it := items[s.first]
				a.txnAdded.forget(it.ProducerID, it.ProducerEpoch)
			}
			fail(s.p, perr, "")
			continue
		}
		var (
			bytes   int
			records int64
		)
		for k, res := range results[s.first : s.first+s.n] {
			if res.Err == nil { // a duplicate was counted when first written
				bytes += sizes[s.first+k]
				records += int64(items[s.first+k].Records)
			}
		}
		a.metrics.topics.produced(s.topic, bytes, records)
		first := results[s.first]
		s.p.BaseOffset = first.BaseOffset
		s.p.LogStartOffset = first.LogStartOffset
		if s.logAppendTime {
			s.p.LogAppendTime = now
		}
	}
	return resp, nil
}

// itemBytes returns the batch bytes (sizes, same index) and record count
// of items.
func itemBytes(items []ingest.Item, sizes []int) (bytes int, records int64) {
	for k, it := range items {
		bytes += sizes[k]
		records += int64(it.Records)
	}
	return bytes, records
}
