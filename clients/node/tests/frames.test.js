'use strict';

// Splitting the adapter's stdout into answers, however the pipe chunks it.

const test = require('node:test');
const assert = require('node:assert/strict');

const { FrameReader } = require('../lib/sidecar');

const FRAMES = [
  '{"a":1}',
  '<ERROR>\n{"name":"MessageError","message":"bad <EOC> inside","command":"loadNestedEvent"}',
  '{"text":"x<EOC>y","emoji":"\u2603\ud83d\ude00"}',
  '{}',
  `{"big":"${'z'.repeat(70000)}"}`,
];
// As the pipe gives it: bytes, cut anywhere (inside a UTF-8 character too).
const STREAM = Buffer.from(FRAMES.map((frame) => `${frame}\n<EOC>\n`).join(''));

function readAll(chunks) {
  const reader = new FrameReader();
  const out = [];
  for (const chunk of chunks) out.push(...reader.push(chunk));
  return { out, reader };
}

test('one chunk with every frame', () => {
  assert.deepEqual(readAll([STREAM]).out, FRAMES);
});

test('one byte at a time', () => {
  const bytes = [];
  for (let at = 0; at < 2000; at += 1) bytes.push(STREAM.subarray(at, at + 1));
  assert.deepEqual(readAll(bytes).out, FRAMES.slice(0, 4));
});

test('split at every position around each terminator', () => {
  let at = 0;
  for (const frame of FRAMES) {
    at += Buffer.byteLength(frame);
    for (let cut = at - 3; cut <= at + 8; cut += 1) {
      assert.deepEqual(readAll([STREAM.slice(0, cut), STREAM.slice(cut)]).out, FRAMES, `cut at ${cut}`);
    }
    at += '\n<EOC>\n'.length;
  }
});

test('random chunking', () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let round = 0; round < 200; round += 1) {
    const chunks = [];
    for (let at = 0; at < STREAM.length;) {
      const size = 1 + Math.floor(random() * (random() < 0.5 ? 10 : 30000));
      chunks.push(STREAM.slice(at, at + size));
      at += size;
    }
    assert.deepEqual(readAll(chunks).out, FRAMES);
  }
});

test('a partial frame waits for the rest', () => {
  const { out, reader } = readAll([Buffer.from('{"a":1}\n<EOC>\n{"b":'), Buffer.from('2}\n<EO')]);
  assert.deepEqual(out, ['{"a":1}']);
  assert.deepEqual(reader.push(Buffer.from('C>\n')), ['{"b":2}']);
  assert.deepEqual(reader.push(Buffer.alloc(0)), []);
});
