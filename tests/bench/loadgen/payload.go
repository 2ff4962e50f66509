package loadgen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
)

// Payload modes: how record values are filled after their 8-byte send
// timestamp.
const (
	// PayloadRandom (the default) makes every value incompressible and
	// distinct: a slice of a random pool much larger than a segment
	// (each producer walks it from a random offset), XORed with a random
	// word of its own. Nothing a compressor can find repeats between
	// records, so storage figures measure storage, not compression.
	PayloadRandom = "random"
	// PayloadJSON makes every value JSON-like events (newline-delimited:
	// ids, timestamps, enums, URLs, numbers, a few words of text) with the
	// compressibility of application events; the report prints the ratio
	// the agent's zstd achieved on them.
	PayloadJSON = "json"
)

// Payloads lists the payload modes, default first.
var Payloads = []string{PayloadRandom, PayloadJSON}

func validPayload(name string) error {
	for _, p := range Payloads {
		if name == p {
			return nil
		}
	}
	return fmt.Errorf("payload %q: not %s or %s", name, PayloadRandom, PayloadJSON)
}

// poolSize is the random pool PayloadRandom slices values from: 16 times
// the default segment size (8 MiB), so a segment's records come from
// all over it.
const poolSize = 128 << 20

// randomPool is generated once per process and shared, read-only, by
// every producer: 128 MiB per Produce call (the report calls it dozens
// of times) would cost more CPU than the records.
var randomPool = sync.OnceValue(func() []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	binary.LittleEndian.PutUint64(seed[8:], rand.Uint64())
	binary.LittleEndian.PutUint64(seed[16:], rand.Uint64())
	binary.LittleEndian.PutUint64(seed[24:], rand.Uint64())
	b := make([]byte, poolSize)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
})

// valueFiller fills record values of one payload mode. It is not safe
// for concurrent use: each sender goroutine has its own.
type valueFiller struct {
	payload string
	rng     *rand.Rand
	pool    []byte
	pos     int // next value's offset in pool
	json    jsonEvents
}

func newValueFiller(payload string) *valueFiller {
	f := &valueFiller{payload: payload, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	switch payload {
	case PayloadJSON:
		f.json.rng = f.rng
	default:
		f.pool = randomPool()
		f.pos = f.rng.IntN(len(f.pool))
	}
	return f
}

// fill writes v[8:] (the first 8 bytes are the caller's timestamp).
func (f *valueFiller) fill(v []byte) {
	body := v[min(8, len(v)):]
	if len(body) == 0 {
		return
	}
	if f.payload == PayloadJSON {
		f.json.fill(body)
		return
	}
	// Consecutive slices: reading the pool in order costs a third of
	// random offsets (cache misses), and a producer's values cover 128
	// MiB before any repeats.
	if f.pos+len(body) > len(f.pool) {
		f.pos = f.rng.IntN(len(f.pool) - len(body) + 1)
	}
	src := f.pool[f.pos : f.pos+len(body)]
	f.pos += len(body)
	// Values of two producers may come from overlapping stretches of the
	// pool, which a compressor would find; a per-value mask makes them
	// differ. Copy and mask in one pass.
	mask := f.rng.Uint64()
	i := 0
	for ; i+8 <= len(body); i += 8 {
		binary.LittleEndian.PutUint64(body[i:i+8], binary.LittleEndian.Uint64(src[i:i+8])^mask)
	}
	for ; i < len(body); i++ {
		body[i] = src[i] ^ byte(mask>>(8*(i%8)))
	}
}

// jsonEvents generates newline-delimited JSON events until a value is
// full; the last event is cut at the value's end, as a record holding a
// slice of a log stream would be.
type jsonEvents struct {
	rng *rand.Rand
	buf []byte
	seq uint64
}

var (
	jsonTypes     = []string{"page_view", "page_view", "page_view", "click", "click", "add_to_cart", "search", "login", "purchase", "logout"}
	jsonCountries = []string{"US", "DE", "FR", "GB", "IN", "BR", "JP", "NL", "ES", "CA", "PL", "SE"}
	jsonPlans     = []string{"free", "free", "free", "pro", "pro", "team", "enterprise"}
	jsonPaths     = []string{"/", "/products", "/products/", "/cart", "/checkout", "/search", "/account/settings", "/blog/", "/help/articles/", "/pricing"}
	jsonRefs      = []string{"https://www.google.com/", "https://duckduckgo.com/", "https://news.ycombinator.com/", "https://t.co/", "", "", ""}
	jsonAgents    = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"okhttp/4.12.0",
	}
	jsonWords = []string{"order", "shipped", "delayed", "customer", "asked", "about", "refund", "the", "a", "new", "item",
		"size", "color", "blue", "red", "large", "small", "coupon", "applied", "failed", "retry", "payment", "card",
		"declined", "address", "updated", "warehouse", "stock", "low", "review", "stars", "great", "quality", "late"}
)

func (j *jsonEvents) fill(v []byte) {
	n := 0
	for n < len(v) {
		j.buf = j.event(j.buf[:0])
		n += copy(v[n:], j.buf)
	}
}

func (j *jsonEvents) pick(list []string) string { return list[j.rng.IntN(len(list))] }

func (j *jsonEvents) hex(b []byte, digits int) []byte {
	const hexdigits = "0123456789abcdef"
	x := j.rng.Uint64()
	for i := range digits {
		if i == 16 {
			x = j.rng.Uint64()
		}
		b = append(b, hexdigits[x&15])
		x >>= 4
	}
	return b
}

// event appends one event line. Field names, enums and URL shapes repeat
// as they do in real event streams; ids, timestamps and numbers do not.
func (j *jsonEvents) event(b []byte) []byte {
	j.seq++
	r := j.rng
	b = append(b, `{"event_id":"`...)
	b = j.hex(b, 32)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, j.seq, 10)
	b = append(b, `,"ts":"2026-11-`...)
	b = strconv.AppendInt(b, 10+int64(r.IntN(20)), 10)
	b = append(b, 'T')
	b = appendPadded(b, r.IntN(24))
	b = append(b, ':')
	b = appendPadded(b, r.IntN(60))
	b = append(b, ':')
	b = appendPadded(b, r.IntN(60))
	b = append(b, '.')
	b = strconv.AppendInt(b, 100+int64(r.IntN(900)), 10)
	b = append(b, `Z","type":"`...)
	b = append(b, j.pick(jsonTypes)...)
	b = append(b, `","user":{"id":"u_`...)
	b = strconv.AppendInt(b, int64(r.IntN(5_000_000)), 10)
	b = append(b, `","country":"`...)
	b = append(b, j.pick(jsonCountries)...)
	b = append(b, `","plan":"`...)
	b = append(b, j.pick(jsonPlans)...)
	b = append(b, `"},"session":"`...)
	b = j.hex(b, 16)
	b = append(b, `","page":"`...)
	b = append(b, j.pick(jsonPaths)...)
	if r.IntN(2) == 0 {
		b = strconv.AppendInt(b, int64(r.IntN(100_000)), 10)
	}
	b = append(b, `","referrer":"`...)
	b = append(b, j.pick(jsonRefs)...)
	b = append(b, `","ua":"`...)
	b = append(b, j.pick(jsonAgents)...)
	b = append(b, `","latency_ms":`...)
	b = strconv.AppendInt(b, int64(r.IntN(2000)), 10)
	b = append(b, `,"price":`...)
	b = strconv.AppendInt(b, int64(r.IntN(50_000)), 10)
	b = append(b, '.')
	b = appendPadded(b, r.IntN(100))
	b = append(b, `,"note":"`...)
	for i := range 3 + r.IntN(6) {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, j.pick(jsonWords)...)
	}
	return append(b, "\"}\n"...)
}

func appendPadded(b []byte, v int) []byte {
	if v < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(v), 10)
}
