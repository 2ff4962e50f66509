package segment_test

import "github.com/siltdata/silt/segment"

// goldenV1Size and goldenV1Chunks describe testdata/v1.seg exactly. They
// were written down once when the file was created (from the log of
// `go test -run TestGoldenV1 -update -v`) and must never be edited: a
// reader change that breaks them breaks every object already stored.
const goldenV1Size = 4419

var goldenV1Chunks = []goldenChunk{
	{topicA, 0, 8, 372, segment.CodecZstd, 3783, 1700000000000, 1700000000029,
		[]segment.BatchInfo{{Pos: 0, Len: 1261}, {Pos: 1261, Len: 1261}, {Pos: 2522, Len: 1261}}, []int32{10, 10, 10},
		"f08a78ef44d1f0625d7867a3ce828ca394c78ade5096c969707c1cf15e98499a"},
	{topicA, 1, 380, 398, segment.CodecNone, 385, 1700000000050, 1700000000104,
		[]segment.BatchInfo{{Pos: 0, Len: 193}, {Pos: 193, Len: 192}}, []int32{5, 5},
		"67f045b26bbcc4f04a443dea0f79a869bdf4cb3ff92040e0c0be4ccdf253883f"},
	{topicB, 2, 778, 3134, segment.CodecNone, 3121, 1700000000200, 1700000000202,
		[]segment.BatchInfo{{Pos: 0, Len: 3121}}, []int32{3},
		"4db82af7ab8bedd36078959b5d0ba666f2cc436cb2b42624cb6b271c7e8dbd5e"},
	{topicB, 5, 3912, 235, segment.CodecZstd, 378, 1700000000300, 1700000000501,
		[]segment.BatchInfo{{Pos: 0, Len: 199}, {Pos: 199, Len: 179}}, []int32{2, 4},
		"d27d822c832ecb94e284b557cf16090b6c88757f1ac5dc4138defe1eddc8ac91"},
}
