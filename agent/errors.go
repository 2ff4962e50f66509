package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltdata/silt/agent/ingest"
	"github.com/siltdata/silt/agent/txn"
	"github.com/siltdata/silt/metastore"
)

// errorCode maps an internal error to the Kafka error code answered on the
// data and admin paths (produce, fetch, list offsets, topics). It is the one
// place where that mapping lives; group paths use groupErrorCode.
//
// Retriability decides what a client does next, so each case says why:
// codes clients treat as retriable make them back off and try again, which
// is right exactly when the condition can clear by itself.
func errorCode(err error) int16 {
	return mapError(err, kerr.KafkaStorageError.Code)
}

// groupErrorCode is errorCode for the group coordinator's paths: an
// unavailable metastore answers COORDINATOR_NOT_AVAILABLE, which makes
// clients look the coordinator up again and retry (KAFKA_STORAGE_ERROR is
// not something group clients expect).
func groupErrorCode(err error) int16 {
	return mapError(err, kerr.CoordinatorNotAvailable.Code)
}

func mapError(err error, unavailable int16) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		// Already a Kafka error chosen by the caller.
		return ke.Code
	case errors.Is(err, metastore.ErrUnknownTopic), errors.Is(err, metastore.ErrUnknownTopicOrPartition):
		// Retriable in Kafka: metadata may lag a just-created topic.
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metastore.ErrTopicExists):
		// Not retriable: the topic will keep existing.
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metastore.ErrInvalidTopic):
		// Not retriable: the name breaks Kafka's naming rules.
		return kerr.InvalidTopicException.Code
	case errors.Is(err, metastore.ErrInvalidPartitions):
		// Not retriable: the requested count is wrong.
		return kerr.InvalidPartitions.Code
	case errors.Is(err, metastore.ErrDuplicateSequence):
		// A duplicate is answered as success with the offset the batch
		// got the first time (Kafka keeps the last 5 batches per
		// producer); the caller answers BatchResult.BaseOffset.
		return 0
	case errors.Is(err, metastore.ErrOutOfOrderSequence):
		// Not retriable as is: the idempotent producer resets its
		// sequence or bumps its epoch, as with Kafka.
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, metastore.ErrInvalidProducerEpoch):
		// Fenced by a newer epoch of the same producer id.
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrProducerFenced):
		// A write of a producer whose transactional id a newer
		// instance (or the coordinator's timeout abort) fenced: the
		// partition-level code Kafka answers for it.
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrPartitionNotInTxn), errors.Is(err, metastore.ErrInvalidTxnState):
		// Not retriable: the producer aborts its transaction (Produce
		// v11+ answers TRANSACTION_ABORTABLE for a partition not in the
		// transaction instead; see handleProduce).
		return kerr.InvalidTxnState.Code
	case errors.Is(err, metastore.ErrInvalidProducerIDMapping):
		// Not retriable: no transactional id holds the producer id.
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, metastore.ErrTxnTooLarge):
		// Not retriable: Kafka's answer when a transaction's metadata
		// outgrows its log's message size.
		return kerr.UnknownServerError.Code
	case errors.Is(err, metastore.ErrUnknownProducerID):
		// Clients reset the producer (new id) and retry.
		return kerr.UnknownProducerID.Code
	case errors.Is(err, metastore.ErrOffsetOutOfRange):
		// Not retriable as is: the offset lies beyond the high
		// watermark (DeleteRecords).
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, ingest.ErrTooLarge):
		// Not retriable: the request is larger than one segment chunk
		// can hold, Kafka's "larger than the log segment".
		return kerr.RecordListTooLarge.Code
	case errors.Is(err, ingest.ErrClosed):
		// Retriable: the agent is shutting down. Like a Kafka broker in
		// controlled shutdown, send the client elsewhere; it refreshes
		// metadata (which no longer names this agent) and retries there.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Retriable: the request ran out of time (or the agent is
		// shutting down); nothing was acknowledged.
		return kerr.RequestTimedOut.Code
	default:
		// The metastore or the object store failed or is unreachable.
		// Retriable, so clients keep going once it is back; nothing
		// unacknowledged was written.
		return unavailable
	}
}

// txnErrorCode maps an error of the transaction coordinator's paths
// (InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn). fencedCode is PRODUCER_FENCED for versions
// that know it (KIP-588), INVALID_PRODUCER_EPOCH before, as Kafka answers
// older clients.
func txnErrorCode(err error, fencedCode int16) int16 {
	switch {
	case errors.Is(err, txn.ErrNotCoordinator), errors.Is(err, txn.ErrClosed):
		// Retriable: the client looks the coordinator up again (another
		// agent coordinates the id now, or this one is stopping).
		return kerr.NotCoordinator.Code
	case errors.Is(err, txn.ErrInvalidTimeout):
		// Not retriable: the producer's transaction.timeout.ms.
		return kerr.InvalidTransactionTimeout.Code
	case errors.Is(err, metastore.ErrProducerFenced):
		// Fatal for the producer: a newer instance has the id.
		return fencedCode
	}
	// The metastore's and the rest as on the data path; an unavailable
	// metastore is retriable, as Kafka's coordinator answers a failed
	// log append.
	return mapError(err, kerr.CoordinatorNotAvailable.Code)
}

// fencedCode is the code of a fenced producer for a request of version v
// of an API that learned PRODUCER_FENCED at version since.
func fencedCode(v, since int16) int16 {
	if v < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return kerr.ProducerFenced.Code
}

// codeName is a Kafka error code's name, for logs and metric labels.
func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.TypedErrorForCode(code).Message
}

// kafkaError is a Kafka error code with a message for this occurrence:
// the message is answered in responses' error_message fields and logged;
// errorCode finds the code through Unwrap.
type kafkaError struct {
	code *kerr.Error
	msg  string
}

func (e *kafkaError) Error() string { return e.msg }
func (e *kafkaError) Unwrap() error { return e.code }

// kafkaErr returns a Kafka error with a formatted message.
func kafkaErr(code *kerr.Error, format string, args ...any) error {
	return &kafkaError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errMessage is the text answered in a response's error_message: the
// message of a kafkaErr, or the error's text.
func errMessage(err error) string {
	return err.Error()
}
