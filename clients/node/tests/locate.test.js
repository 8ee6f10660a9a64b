'use strict';

// Finding the adapter through the environment: a missing directory, a bundle without what
// the environment asks for, and a `python` on PATH that is not the bundle's version.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const { MessageAdapter, CumulusMessageAdapterExecutionError } = require('..');
const {
  REPO, devAdapterDir, lambdaContext, pathWithPython, repoPython, tempDir, withEnv,
} = require('./helpers');

const message = (payload = { n: 1 }) => ({ cumulus_meta: {}, meta: {}, payload });
const identity = (event) => event.input;

/** The bundle's __main__.py for a bundle built with Python `version`. */
function bundleMain(version) {
  return execFileSync(repoPython(), [
    '-c', `import sys; from message_adapter.bundle import main_py; sys.stdout.write(main_py(${JSON.stringify(version)}))`,
  ], { cwd: REPO, env: { ...process.env, PYTHONPATH: REPO }, encoding: 'utf8' });
}

/**
 * A bundle directory built for Python `version` (not this one): its __main__.py, its
 * cma-bundle.json and, with `executable`, a cma_bin/cma that records its use in `used` and
 * runs this checkout's adapter.
 */
function bundleFor(version, { executable }) {
  const dir = tempDir('cma-node-bundle-');
  fs.writeFileSync(path.join(dir, '__main__.py'), bundleMain(version));
  fs.writeFileSync(path.join(dir, 'cma-bundle.json'), JSON.stringify({ python: version }));
  const used = path.join(dir, 'cma-bin-used');
  if (executable) {
    fs.mkdirSync(path.join(dir, 'cma_bin'));
    const cma = path.join(dir, 'cma_bin', 'cma');
    fs.writeFileSync(cma, `#!/bin/sh\necho "$@" >> '${used}'\nexec '${repoPython()}' '${devAdapterDir()}' "$@"\n`);
    fs.chmodSync(cma, 0o755);
  }
  return { dir, used };
}

async function rejection(env) {
  const adapter = new MessageAdapter();
  try {
    return await withEnv(env, () => adapter.runCumulusTask(identity, message(), lambdaContext()).then(
      () => assert.fail('the invocation succeeded'),
      (error) => error,
    ));
  } finally {
    await adapter.close();
  }
}

test('a missing adapter directory is named with the variable to set', async () => {
  const missing = path.join(tempDir('cma-node-missing-'), 'nothing-here');
  const error = await rejection({
    PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: missing, USE_CMA_BINARY: undefined,
  });
  assert.ok(error instanceof CumulusMessageAdapterExecutionError);
  assert.equal(error.command, 'loadAndUpdateRemoteEvent');
  assert.match(error.message, new RegExp(`CUMULUS_MESSAGE_ADAPTER_DIR=${missing} is not a directory: set CUMULUS_MESSAGE_ADAPTER_DIR`));
  assert.doesNotMatch(error.message, /can't open file/);
});

test('without CUMULUS_MESSAGE_ADAPTER_DIR the error names it and the default it tried', async () => {
  const error = await rejection({
    PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: undefined, USE_CMA_BINARY: undefined,
  });
  assert.match(error.message, /CUMULUS_MESSAGE_ADAPTER_DIR is not set, and the default \.\/cumulus-message-adapter .* is not a directory/);
});

test('USE_CMA_BINARY with a bundle built without cma_bin says what to change', async () => {
  const { dir } = bundleFor('3.99', { executable: false });
  const error = await rejection({
    PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: dir, USE_CMA_BINARY: 'true',
  });
  assert.match(error.message, /holds no executable cma_bin\/cma, and USE_CMA_BINARY=true asks for it/);
  assert.match(error.message, /without --no-exe\), or put a python 3\.99 \(the bundle's, per cma-bundle\.json\) on PATH and unset USE_CMA_BINARY/);
});

test('a python on PATH that is not the bundle\'s version runs the bundle\'s cma_bin/cma', async () => {
  const { dir, used } = bundleFor('3.99', { executable: true });
  const adapter = new MessageAdapter();
  try {
    const next = await withEnv(
      { PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: dir, USE_CMA_BINARY: undefined },
      () => adapter.runCumulusTask(identity, message({ n: 7 }), lambdaContext()),
    );
    assert.deepEqual(next.payload, { n: 7 });
    assert.equal(fs.readFileSync(used, 'utf8'), 'stream --structured-errors\n'); // one sidecar
  } finally {
    await adapter.close();
  }
});

test('a python on PATH that is not the bundle\'s version, and no cma_bin, says what to do', async () => {
  const { dir } = bundleFor('3.99', { executable: false });
  const error = await rejection({
    PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: dir, USE_CMA_BINARY: undefined,
  });
  assert.ok(error instanceof CumulusMessageAdapterExecutionError);
  assert.match(error.message, /was built for Python 3\.99, but .* is Python 3\.\d+/);
  assert.match(error.message, /Run it with a Python 3\.99 .*without --no-exe/);
  assert.doesNotMatch(error.message, /msgspec/);
});

test('an older bundle that cannot import its packages gets a hint naming USE_CMA_BINARY', async () => {
  const dir = tempDir('cma-node-old-bundle-');
  fs.writeFileSync(path.join(dir, '__main__.py'), 'import msgspec._core_not_here\n');
  fs.writeFileSync(path.join(dir, 'cma-bundle.json'), JSON.stringify({ python: '3.99' }));
  const error = await rejection({
    PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: dir, USE_CMA_BINARY: undefined,
  });
  assert.match(error.message, /ModuleNotFoundError/);
  assert.match(error.message, /built for Python 3\.99, per its cma-bundle\.json; if .* is another version, put a python 3\.99 first on PATH, or set USE_CMA_BINARY=true/);
});
