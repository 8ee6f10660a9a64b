#!/usr/bin/env node
'use strict';

/*
 * Per-invocation overhead of the Node client (clients/node) beside the published
 * @cumulus/cumulus-message-adapter-js, both driving the adapter bundle built from this
 * checkout. The task returns its input, so the time of runCumulusTask is the adapter's
 * overhead: three commands, their JSON both ways, and (cold, or the published client at
 * every invocation) starting the adapter.
 *
 *   cd clients/node && npm ci && cd ../..        # once: the published client for comparison
 *   node bench/node_client.js [--quick] [--adapter-dir DIR] [--python PY] [--output FILE]
 *                             [--sizes 1,2000,20000] [--protocols 1,2] [--no-exe]
 *
 * Each launch is measured over protocol v1 (CUMULUS_MESSAGE_ADAPTER_PROTOCOL=1) and v2
 * (--protocols 1 for v1 only, e.g. with the historic adapter as --adapter-dir, which
 * speaks nothing else). --no-exe skips the cma_bin/cma rows of a bundle that has one.
 *
 * Without --adapter-dir a bundle is built with `.venv/bin/cumulus-message-adapter bundle
 * --no-exe` into a temporary directory (add --with-exe for cma_bin/cma and the
 * USE_CMA_BINARY rows). `python` on PATH is a wrapper that runs --python (default: the
 * checkout's .venv interpreter), for both clients. Every figure is a median.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const REPO = path.resolve(__dirname, '..');
const CLIENT_DIR = path.join(REPO, 'clients', 'node');
let SIZES = [1, 2000];
const WARM_TARGET_MS = 3; // issue 3: warm overhead at 1 granule

function parseArgs(argv) {
  const options = { quick: false, withExe: false, noExe: false, protocols: ['1', '2'] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      i += 1;
      if (i >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[i];
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--with-exe') options.withExe = true;
    else if (arg === '--no-exe') options.noExe = true;
    else if (arg === '--protocols') options.protocols = value().split(',').filter(Boolean);
    else if (arg === '--adapter-dir') options.adapterDir = path.resolve(value());
    else if (arg === '--python') options.python = value();
    else if (arg === '--output') options.output = path.resolve(value());
    else if (arg === '--json') options.json = path.resolve(value());
    else if (arg === '--sizes') SIZES = value().split(',').filter(Boolean).map(Number);
    else if (arg === '-h' || arg === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  return options;
}

const temporary = [];
process.on('exit', () => temporary.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

function log(text) {
  process.stderr.write(`${text}\n`);
}

function prepareAdapter(options, python) {
  if (options.adapterDir) return options.adapterDir;
  const cli = path.join(REPO, '.venv', 'bin', 'cumulus-message-adapter');
  const out = path.join(tempDir('cma-bench-node-'), 'cumulus-message-adapter');
  let help = '';
  try {
    help = execFileSync(cli, ['--help'], { encoding: 'utf8' });
  } catch (error) {
    // no installed CLI: fall through to the checkout adapter
  }
  if (help.includes('bundle')) {
    log(`building the bundle in ${out}${options.withExe ? ' (with cma_bin/cma: about a minute)' : ''}`);
    execFileSync(cli, ['bundle', out, ...(options.withExe ? [] : ['--no-exe'])], { stdio: ['ignore', 'ignore', 'inherit'] });
    return out;
  }
  log('no `bundle` command in this checkout: using a directory that runs message_adapter from it');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, '__main__.py'),
    `import sys\nsys.path.insert(0, ${JSON.stringify(REPO)})\nfrom message_adapter.cli import main\nmain()\n`);
  return out;
}

function pythonShim(python) {
  const dir = tempDir('cma-bench-python-');
  fs.writeFileSync(path.join(dir, 'python'), `#!/bin/sh\nexec '${python}' "$@"\n`);
  fs.chmodSync(path.join(dir, 'python'), 0o755);
  return dir;
}

function makeMessage(python, granules) {
  const code = 'import json, sys; sys.path.insert(0, sys.argv[1]); '
    + 'from messages import make_message; print(json.dumps(make_message(int(sys.argv[2]))))';
  return JSON.parse(execFileSync(python, ['-c', code, path.join(REPO, 'bench'), String(granules)], {
    encoding: 'utf8', maxBuffer: 1 << 28,
  }));
}

function lambdaContext() {
  return {
    functionName: 'bench-SyncGranule',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:bench-SyncGranule',
    memoryLimitInMB: '1024',
    awsRequestId: '6f3b1d2e-8c1f-4d0a-9a57-2b6f0f1e9c11',
    getRemainingTimeInMillis: () => 900000,
  };
}

const returnInput = (event) => event.input;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function timed(fn) {
  const started = process.hrtime.bigint();
  const result = await fn();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, result };
}

/** Call `once` until the budget is spent (within min/max samples); the timings in ms. */
async function sample(once, { budgetMs, min, max }) {
  const times = [];
  const until = Date.now() + budgetMs;
  while (times.length < max && (times.length < min || Date.now() < until)) {
    times.push((await timed(once)).ms);
  }
  return times;
}

async function quietly(fn) {
  const original = console.log;
  console.log = () => {}; // the published client logs every step
  try {
    return await fn();
  } finally {
    console.log = original;
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const python = options.python
    || (fs.existsSync(path.join(REPO, '.venv', 'bin', 'python')) ? path.join(REPO, '.venv', 'bin', 'python') : 'python3');
  const adapterDir = prepareAdapter(options, python);
  process.env.PATH = `${pythonShim(python)}${path.delimiter}${process.env.PATH}`;
  process.env.CUMULUS_MESSAGE_ADAPTER_DIR = adapterDir;
  // 2000 granules (1.7 MB) are over Step Functions' 256 KiB limit, which the client
  // enforces; a limit this high keeps the size check, and its cost, in every call.
  process.env.CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES = String(2 ** 40);

  const ours = require(CLIENT_DIR);
  let published;
  try {
    published = require(path.join(CLIENT_DIR, 'node_modules', '@cumulus', 'cumulus-message-adapter-js'));
  } catch (error) {
    log('the published client is not installed (cd clients/node && npm ci): its rows are skipped');
  }

  const mode = options.quick
    ? { warm: { budgetMs: 300, min: 5, max: 200 }, cold: { budgetMs: 0, min: 2, max: 2 }, published: { budgetMs: 0, min: 2, max: 2 } }
    : { warm: { budgetMs: 3000, min: 30, max: 2000 }, cold: { budgetMs: 4000, min: 9, max: 25 }, published: { budgetMs: 6000, min: 9, max: 25 } };

  const launches = options.protocols.map((protocol) => ({ name: `python DIR stream, protocol v${protocol}`, env: undefined, protocol }));
  if (!options.noExe && fs.existsSync(path.join(adapterDir, 'cma_bin', 'cma'))) {
    options.protocols.forEach((protocol) => launches.push({ name: `DIR/cma_bin/cma stream, protocol v${protocol}`, env: 'true', protocol }));
  }

  const rows = [];
  for (const launch of launches) {
    if (launch.env) process.env.USE_CMA_BINARY = launch.env;
    else delete process.env.USE_CMA_BINARY;
    process.env.CUMULUS_MESSAGE_ADAPTER_PROTOCOL = launch.protocol;
    for (const granules of SIZES) {
      const message = makeMessage(python, granules);
      const bytes = Buffer.byteLength(JSON.stringify(message));
      log(`${launch.name}, ${granules} granule(s) (${(bytes / 1024).toFixed(0)} KiB)`);

      // Cold: a new adapter each time, so the first invocation starts the sidecar.
      const cold = [];
      const coldUntil = Date.now() + mode.cold.budgetMs;
      while (cold.length < mode.cold.max && (cold.length < mode.cold.min || Date.now() < coldUntil)) {
        const adapter = new ours.MessageAdapter();
        cold.push((await timed(() => adapter.runCumulusTask(returnInput, message, lambdaContext()))).ms);
        await adapter.close(); // not timed: the sidecar would live on in a real process
      }

      // Warm: one adapter, many invocations.
      const warmAdapter = new ours.MessageAdapter();
      const first = await warmAdapter.runCumulusTask(returnInput, message, lambdaContext());
      for (let i = 0; i < 5; i += 1) await warmAdapter.runCumulusTask(returnInput, message, lambdaContext());
      const warm = await sample(() => warmAdapter.runCumulusTask(returnInput, message, lambdaContext()), mode.warm);
      if (warmAdapter.spawned !== 1) throw new Error(`the warm adapter was started ${warmAdapter.spawned} times`);
      await warmAdapter.close();

      let theirs = null;
      if (published && launch.protocol === '1') {
        const check = await quietly(() => published.runCumulusTask(returnInput, message, lambdaContext()));
        if (JSON.stringify(check) !== JSON.stringify(first)) throw new Error('the two clients disagree on the next message');
        theirs = await quietly(() => sample(
          () => published.runCumulusTask(returnInput, message, lambdaContext()), mode.published,
        ));
      }
      rows.push({
        launch: launch.name,
        granules,
        bytes,
        coldMs: median(cold),
        warmMs: median(warm),
        publishedMs: theirs ? median(theirs) : null,
        samples: { cold: cold.length, warm: warm.length, published: theirs ? theirs.length : 0 },
      });
    }
  }

  const fmt = (ms) => (ms === null ? '—' : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`);
  const lines = [
    `Node client overhead per invocation (task returns its input; medians). Node ${process.version}, `
      + `${os.cpus().length} CPU(s) ${os.cpus()[0] ? os.cpus()[0].model.trim() : ''}; adapter ${adapterDir}.`,
    '',
    '| adapter launch | granules | message | clients/node cold (first invocation, spawn included) | clients/node warm | published client (spawns every invocation) | published / warm | warm target |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    const target = row.granules === 1 ? `≤ ${WARM_TARGET_MS} ms: ${row.warmMs <= WARM_TARGET_MS ? 'met' : '**NOT MET**'}` : '—';
    const ratio = row.publishedMs === null ? '—' : `${(row.publishedMs / row.warmMs).toFixed(0)}×`;
    lines.push(`| \`${row.launch}\` | ${row.granules} | ${(row.bytes / 1024).toFixed(0)} KiB | ${fmt(row.coldMs)} | ${fmt(row.warmMs)} | ${fmt(row.publishedMs)} | ${ratio} | ${target} |`);
  }
  lines.push('', `Samples per row (cold / warm / published): ${rows.map((r) => `${r.samples.cold}/${r.samples.warm}/${r.samples.published}`).join(', ')}.`);
  const table = `${lines.join('\n')}\n`;
  process.stdout.write(table);
  if (options.output) {
    fs.mkdirSync(path.dirname(options.output), { recursive: true });
    fs.writeFileSync(options.output, table);
  }
  if (options.json) {
    fs.mkdirSync(path.dirname(options.json), { recursive: true });
    fs.writeFileSync(options.json, `${JSON.stringify({ node: process.version, adapterDir, rows }, null, 2)}\n`);
  }
  const missed = rows.filter((row) => row.granules === 1 && row.warmMs > WARM_TARGET_MS);
  return missed.length ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (error) => {
  log(error.stack || String(error));
  process.exitCode = 2;
});
