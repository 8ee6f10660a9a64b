#!/usr/bin/env node
'use strict';

/*
 * The JSON work a warm clients/node invocation cannot avoid over protocol v2 with
 * referToPayload and referToResponse, timed in this process with no sidecar and no pipe: the floor under
 * `node bench/node_client.js`'s v2 row. Per invocation the client must
 *
 *   - write the message for beginTask: JSON.stringify, then UTF-8 into a kept buffer;
 *   - decode the task's input: JSON.parse of the payload text it sent (the task needs
 *     objects of its own; the answer refers to that text: referToPayload);
 *   - check the task's output is plain JSON (isPlainJson), so the next message may refer
 *     to it instead of carrying it back;
 *   - write the output for completeTask: JSON.stringify, then UTF-8 into a kept buffer.
 *
 * The task returns its input, as in the other client benchmarks. Every figure is a
 * median in milliseconds over --rounds rounds (default 60), garbage collection included
 * as it falls.
 *
 *   node bench/node_floor.js [--granules 2000] [--rounds 60] [--python .venv/bin/python]
 */

const path = require('path');
const { execFileSync } = require('child_process');
const { messagePieces } = require('../clients/node/lib/adapter');
const { isPlainJson } = require('../clients/node/lib/plain');

const REPO = path.resolve(__dirname, '..');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}

function makeMessage(python, granules) {
  const code = 'import json, sys; sys.path.insert(0, sys.argv[1]); '
    + 'from messages import make_message; print(json.dumps(make_message(int(sys.argv[2]))))';
  return execFileSync(python, ['-c', code, path.join(REPO, 'bench'), String(granules)], {
    encoding: 'utf8', maxBuffer: 1 << 28,
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function main() {
  const granules = Number(option('--granules', '2000'));
  const rounds = Number(option('--rounds', '60'));
  const python = option('--python', path.join(REPO, '.venv', 'bin', 'python'));
  const messageText = makeMessage(python, granules);
  const parts = {
    'encode the message (JSON.stringify)': [],
    'the message to UTF-8 (into a kept buffer)': [],
    'decode the payload sent, for the task (JSON.parse)': [],
    'check the output is plain JSON': [],
    'encode the output (JSON.stringify)': [],
    'the output to UTF-8 (into a kept buffer)': [],
  };
  const names = Object.keys(parts);
  const kept = Buffer.allocUnsafeSlow(4 * messageText.length);
  const toUtf8 = (text) => kept.write(text, 0, 'utf8');
  let sink = 0;
  const time = (name, fn) => {
    const started = process.hrtime.bigint();
    const result = fn();
    parts[name].push(Number(process.hrtime.bigint() - started) / 1e6);
    return result;
  };
  for (let round = 0; round < rounds + 5; round += 1) {
    const message = JSON.parse(messageText); // what the Lambda runtime hands the handler
    const { pieces, payloadText } = time(names[0], () => messagePieces(message));
    sink += time(names[1], () => pieces.reduce((sum, piece) => sum + toUtf8(piece), 0));
    const output = time(names[2], () => JSON.parse(payloadText));
    sink += time(names[3], () => isPlainJson(output)) ? 1 : 0;
    const outputText = time(names[4], () => JSON.stringify(output));
    sink += time(names[5], () => toUtf8(outputText));
    if (round < 5) names.forEach((name) => parts[name].pop()); // warm-up rounds
  }
  let total = 0;
  process.stdout.write(`${granules} granules (${(messageText.length / 1e6).toFixed(1)} MB), `
    + `Node ${process.version}, ${rounds} rounds (checksum ${sink % 7})\n\n`
    + '| part | median ms |\n| --- | ---: |\n');
  for (const name of names) {
    const value = median(parts[name]);
    total += value;
    process.stdout.write(`| ${name} | ${value.toFixed(2)} |\n`);
  }
  process.stdout.write(`| **floor: the sum** | **${total.toFixed(2)}** |\n`);
}

main();
