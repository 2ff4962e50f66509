// Registers kafkajs compression codecs for Snappy, LZ4 and ZSTD, which
// kafkajs leaves to add-on packages. All three are pure JavaScript or
// WebAssembly, so `npm install` needs no native toolchain:
//   Snappy: kafkajs-snappy (snappyjs);
//   LZ4:    lz4js, LZ4 frame format (what Kafka's lz4 codec uses);
//   ZSTD:   @bokuweb/zstd-wasm.
'use strict';
const { CompressionTypes, CompressionCodecs } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const lz4 = require('lz4js');
const zstd = require('@bokuweb/zstd-wasm');

async function register() {
  await zstd.init();
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder) => Buffer.from(lz4.compress(encoder.buffer)),
    decompress: async (buffer) => Buffer.from(lz4.decompress(buffer)),
  });
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: async (encoder) => Buffer.from(zstd.compress(encoder.buffer, 3)),
    decompress: async (buffer) => Buffer.from(zstd.decompress(buffer)),
  });
}

module.exports = { register };
