'use strict';

// Shared set-up for the tests: the repository's Python, a `python` on PATH that runs it,
// an adapter directory usable as CUMULUS_MESSAGE_ADAPTER_DIR, and a fake adapter.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const CLIENT_DIR = path.resolve(__dirname, '..');
const REPO = path.resolve(CLIENT_DIR, '../..');
const FAKE_ADAPTER = path.join(__dirname, 'fake-adapter.js');

const temporary = [];
process.on('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** The interpreter that has the adapter's dependencies (the repository's virtualenv). */
function repoPython() {
  if (process.env.CMA_TEST_PYTHON) return process.env.CMA_TEST_PYTHON;
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/**
 * A directory holding an executable `python` that runs `repoPython()`, to put first on
 * PATH so the clients' `python DIR stream` uses it. (A wrapper script rather than a
 * symlink: a symlinked virtualenv interpreter does not find the virtualenv's packages.)
 */
let shimDir;
function pythonShimDir() {
  if (!shimDir) {
    shimDir = tempDir('cma-node-python-');
    const shim = path.join(shimDir, 'python');
    fs.writeFileSync(shim, `#!/bin/sh\nexec '${repoPython()}' "$@"\n`);
    fs.chmodSync(shim, 0o755);
  }
  return shimDir;
}

/** PATH with the python shim first. */
function pathWithPython() {
  return `${pythonShimDir()}${path.delimiter}${process.env.PATH}`;
}

/**
 * An adapter directory that runs this checkout's message_adapter, for tests that do not
 * need the real bundle: `python DIR stream` with DIR/__main__.py.
 */
let devDir;
function devAdapterDir() {
  if (!devDir) {
    devDir = tempDir('cma-node-adapter-');
    fs.writeFileSync(path.join(devDir, '__main__.py'), [
      'import sys',
      `sys.path.insert(0, ${JSON.stringify(REPO)})`,
      'from message_adapter.cli import main',
      'main()',
      '',
    ].join('\n'));
    fs.writeFileSync(path.join(devDir, 'cma-bundle.json'), '{}\n'); // ours: asked for protocol v2
  }
  return devDir;
}

/** argv that starts this checkout's adapter directly (for MessageAdapter({command})). */
function devAdapterCommand() {
  return [repoPython(), devAdapterDir()];
}

/** argv of the fake adapter in one of its modes (see fake-adapter.js). */
function fakeAdapterCommand(...modes) {
  return [process.execPath, FAKE_ADAPTER, ...modes];
}

/**
 * The adapter directory for the compatibility tests: CMA_TEST_BUNDLE_DIR when set (an
 * existing `cumulus-message-adapter bundle` output, e.g. one with cma_bin/cma), else a bundle
 * of this checkout built here once, without the slow PyInstaller executable.
 */
function bundleDir() {
  if (process.env.CMA_TEST_BUNDLE_DIR) {
    return { dir: process.env.CMA_TEST_BUNDLE_DIR, kind: 'given bundle' };
  }
  const out = path.join(tempDir('cma-node-bundle-'), 'cumulus-message-adapter');
  const env = { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
  try {
    execFileSync(repoPython(), ['-m', 'message_adapter', 'bundle', out, '--no-exe'], {
      cwd: REPO, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    throw new Error(`building the bundle failed: ${error.message}\n${error.stdout}\n${error.stderr}`);
  }
  return { dir: out, kind: 'bundle of this checkout, built without cma_bin' };
}

/** A Lambda-like context. */
function lambdaContext(overrides = {}) {
  return {
    functionName: 'test-function',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:test-function',
    awsRequestId: 'request-1',
    getRemainingTimeInMillis: () => 60000,
    ...overrides,
  };
}

/** Run `fn` with some process.env keys set (undefined deletes), restoring them after. */
async function withEnv(values, fn) {
  const saved = {};
  for (const [key, value] of Object.entries(values)) {
    saved[key] = process.env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    return await fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** Whether a process id is alive (a zombie, exited but not yet reaped, is not). */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch (error) {
    return error.code !== 'ENOENT';
  }
}

async function waitFor(predicate, timeoutMs = 5000, stepMs = 20) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return predicate();
}

module.exports = {
  CLIENT_DIR,
  FAKE_ADAPTER,
  REPO,
  bundleDir,
  devAdapterCommand,
  devAdapterDir,
  fakeAdapterCommand,
  isAlive,
  lambdaContext,
  pathWithPython,
  pythonShimDir,
  repoPython,
  tempDir,
  waitFor,
  withEnv,
};
