'use strict';

// Finding the adapter: the same file and arguments as the published client.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');

const ours = require('..');
const published = require('@cumulus/cumulus-message-adapter-js');
const { MessageAdapter } = require('..');
const { pythonShimDir, tempDir, withEnv } = require('./helpers');

const emptyDir = tempDir('cma-node-nopython-');

const CASES = {
  'python on PATH, directory set': { PATH: pythonShimDir(), CUMULUS_MESSAGE_ADAPTER_DIR: '/opt/cma' },
  'python on PATH, default directory': { PATH: pythonShimDir(), CUMULUS_MESSAGE_ADAPTER_DIR: undefined },
  'USE_CMA_BINARY=true': { PATH: pythonShimDir(), CUMULUS_MESSAGE_ADAPTER_DIR: '/opt/cma', USE_CMA_BINARY: 'true' },
  'USE_CMA_BINARY=false': { PATH: pythonShimDir(), CUMULUS_MESSAGE_ADAPTER_DIR: '/opt/cma', USE_CMA_BINARY: 'false' },
  'no python on PATH': { PATH: emptyDir, CUMULUS_MESSAGE_ADAPTER_DIR: '/opt/cma' },
  'no python, default directory': { PATH: emptyDir, CUMULUS_MESSAGE_ADAPTER_DIR: undefined },
  'python later on PATH': { PATH: `${emptyDir}${path.delimiter}${pythonShimDir()}`, CUMULUS_MESSAGE_ADAPTER_DIR: 'rel/dir' },
};

for (const [name, env] of Object.entries(CASES)) {
  test(`generateCMASpawnArguments matches the published client: ${name}`, () => withEnv(
    { USE_CMA_BINARY: undefined, ...env },
    async () => {
      const [file, args, options] = await ours.generateCMASpawnArguments('stream');
      const [theirFile, theirArgs, theirOptions] = await published.generateCMASpawnArguments('stream');
      assert.equal(file, theirFile);
      assert.deepEqual(args, theirArgs);
      assert.equal(String(options.env.PYTHONUTF8), String(theirOptions.env.PYTHONUTF8));
    },
  ));
}

test('an explicit command must be an argv array', () => {
  assert.throws(() => new MessageAdapter({ command: [] }), TypeError);
  assert.throws(() => new MessageAdapter({ command: ['python', 3] }), TypeError);
  assert.doesNotThrow(() => new MessageAdapter({ command: '/opt/cma/cma_bin/cma' }));
});
