'use strict';

// The warm sidecar: reuse, structured errors, death, deadlines, concurrency, cleanup.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');

const { MessageAdapter, CumulusMessageAdapterExecutionError } = require('..');
const {
  CLIENT_DIR, devAdapterCommand, devAdapterDir, fakeAdapterCommand, isAlive, lambdaContext,
  pathWithPython, tempDir, waitFor, withEnv,
} = require('./helpers');

const message = (payload = { n: 1 }) => ({ cumulus_meta: {}, meta: {}, payload });
const identity = (event) => event.input;

test('one sidecar serves every invocation', async () => {
  const adapter = new MessageAdapter({ command: devAdapterCommand() });
  try {
    const pids = new Set();
    for (let i = 0; i < 5; i += 1) {
      const next = await adapter.runCumulusTask(identity, message({ i }), lambdaContext());
      assert.deepEqual(next.payload, { i });
      pids.add(adapter.pid);
    }
    assert.equal(pids.size, 1);
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});

test('start() spawns the sidecar ahead of the first invocation, which then reuses it', async () => {
  const adapter = new MessageAdapter({ command: devAdapterCommand() }).start();
  try {
    const { pid } = adapter;
    assert.ok(pid);
    adapter.start();
    await adapter.runCumulusTask(identity, message(), lambdaContext());
    assert.equal(adapter.pid, pid);
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});

test('concurrent invocations are serialized on one sidecar and each gets its own answer', async () => {
  const adapter = new MessageAdapter({ command: devAdapterCommand() });
  try {
    const runs = Array.from({ length: 25 }, (_, i) => adapter.runCumulusTask(async (event) => {
      for (let turn = 0; turn < (i * 7) % 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      return { doubled: event.input.i * 2 };
    }, message({ i }), lambdaContext()));
    const results = await Promise.all(runs);
    results.forEach((next, i) => assert.deepEqual(next.payload, { doubled: i * 2 }));
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});

test('an error frame does not cost the warm process; stderr before it is in the message', async () => {
  const adapter = new MessageAdapter({ command: fakeAdapterCommand('warn-then-fail=loadNestedEvent') });
  try {
    await adapter.runCumulusTask(identity, message(), lambdaContext()).then(
      () => assert.fail('should fail'),
      (error) => {
        assert.ok(error instanceof CumulusMessageAdapterExecutionError);
        assert.equal(error.message, 'fake adapter: a warning\nstream: MessageError: loadNestedEvent failed\n');
        assert.deepEqual(error.adapterError, {
          name: 'MessageError', message: 'loadNestedEvent failed', command: 'loadNestedEvent',
        });
      },
    );
    const pid = adapter.pid;
    await assert.rejects(adapter.runCumulusTask(identity, message(), lambdaContext()),
      { message: 'fake adapter: a warning\nstream: MessageError: loadNestedEvent failed\n' });
    assert.equal(adapter.pid, pid);
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});

test('a sidecar that dies fails the command with its stderr and is replaced', async () => {
  const adapter = new MessageAdapter({ command: fakeAdapterCommand('die-on=createNextEvent') });
  try {
    await assert.rejects(adapter.runCumulusTask(identity, message(), lambdaContext()), (error) => {
      assert.ok(error instanceof CumulusMessageAdapterExecutionError);
      assert.equal(error.message, 'fake adapter: dying on createNextEvent\n');
      assert.equal(error.exitCode, 3);
      return true;
    });
    await assert.rejects(adapter.runCumulusTask(identity, message(), lambdaContext()),
      { message: 'fake adapter: dying on createNextEvent\n' });
    assert.equal(adapter.spawned, 2);
  } finally {
    adapter.kill();
  }
});

test('a sidecar killed between invocations is respawned', async () => {
  const adapter = new MessageAdapter({ command: devAdapterCommand() });
  try {
    await adapter.runCumulusTask(identity, message(), lambdaContext());
    const first = adapter.pid;
    process.kill(first, 'SIGKILL');
    await waitFor(() => adapter.pid === undefined);
    const next = await adapter.runCumulusTask(identity, message({ again: true }), lambdaContext());
    assert.deepEqual(next.payload, { again: true });
    assert.notEqual(adapter.pid, first);
    assert.equal(adapter.spawned, 2);
  } finally {
    await adapter.close();
  }
});

test('a sidecar that misses the deadline is killed and replaced', async () => {
  const adapter = new MessageAdapter({
    command: fakeAdapterCommand('hang-on-flag=loadNestedEvent'),
    deadlineMarginMs: 100,
  });
  try {
    await adapter.runCumulusTask(identity, message(), lambdaContext()); // warm
    const hungPid = adapter.pid;
    const started = Date.now();
    await assert.rejects(adapter.runCumulusTask(identity, message({ hang: true }), lambdaContext({
      getRemainingTimeInMillis: () => 600 - (Date.now() - started),
    })), (error) => {
      assert.ok(error instanceof CumulusMessageAdapterExecutionError);
      assert.equal(error.timedOut, true);
      assert.equal(error.command, 'loadNestedEvent');
      assert.match(error.message, /did not answer loadNestedEvent before the invocation's deadline/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 400 && elapsed < 3000, `gave up after ${elapsed} ms`);
    assert.ok(await waitFor(() => !isAlive(hungPid)), 'the hung sidecar was not stopped');
    const next = await adapter.runCumulusTask(identity, message({ ok: 1 }), lambdaContext());
    assert.deepEqual(next.payload, { ok: 1 });
    assert.notEqual(adapter.pid, hungPid);
    assert.equal(adapter.spawned, 2);
  } finally {
    await adapter.close();
  }
});

test('a sidecar that ignores SIGTERM after a missed deadline is killed anyway', async () => {
  const adapter = new MessageAdapter({
    command: fakeAdapterCommand('hang-on-flag=createNextEvent', 'ignore-term'),
    deadlineMarginMs: 0,
  });
  await adapter.runCumulusTask(identity, message(), lambdaContext()); // warm
  const { pid } = adapter;
  await assert.rejects(adapter.runCumulusTask(identity, message({ hang: true }), lambdaContext({
    getRemainingTimeInMillis: () => 300,
  })), { timedOut: true, command: 'createNextEvent' });
  assert.ok(await waitFor(() => !isAlive(pid), 3000), 'the sidecar survived SIGKILL');
});

test('a command queued behind a busy sidecar fails at its own deadline', async () => {
  const release = path.join(tempDir('cma-node-hold-'), 'release');
  const adapter = new MessageAdapter({ command: fakeAdapterCommand(`hold-until=${release}`) });
  try {
    const slow = adapter.runCumulusTask(identity, message({ slow: true }), lambdaContext());
    const hurried = adapter.runCumulusTask(identity, message(), lambdaContext({
      getRemainingTimeInMillis: () => 100,
    }));
    await assert.rejects(hurried, { timedOut: true, command: 'loadAndUpdateRemoteEvent' });
    fs.writeFileSync(release, '');
    assert.deepEqual((await slow).payload, { slow: true });
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});

test('an adapter that cannot be started throws CumulusMessageAdapterExecutionError', async () => {
  const missing = path.join(tempDir('cma-node-missing-'), 'nothing-here');
  const adapter = new MessageAdapter({ command: [missing] });
  await assert.rejects(adapter.runCumulusTask(identity, message(), lambdaContext()), (error) => {
    assert.ok(error instanceof CumulusMessageAdapterExecutionError);
    assert.match(error.message, /could not start the message adapter .*nothing-here.*ENOENT/);
    return true;
  });
});

test('changing CUMULUS_MESSAGE_ADAPTER_DIR starts a sidecar from the new directory', async () => {
  const other = tempDir('cma-node-other-');
  fs.copyFileSync(path.join(devAdapterDir(), '__main__.py'), path.join(other, '__main__.py'));
  const adapter = new MessageAdapter();
  try {
    await withEnv({ PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: devAdapterDir(), USE_CMA_BINARY: undefined }, async () => {
      await adapter.runCumulusTask(identity, message(), lambdaContext());
      await adapter.runCumulusTask(identity, message(), lambdaContext());
    });
    const first = adapter.pid;
    assert.equal(adapter.spawned, 1);
    await withEnv({ PATH: pathWithPython(), CUMULUS_MESSAGE_ADAPTER_DIR: other, USE_CMA_BINARY: undefined }, async () => {
      await adapter.runCumulusTask(identity, message(), lambdaContext());
    });
    assert.equal(adapter.spawned, 2);
    assert.notEqual(adapter.pid, first);
    assert.ok(await waitFor(() => !isAlive(first)), 'the previous sidecar did not exit');
  } finally {
    await adapter.close();
  }
});

function runScript(source, env = {}) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], {
      cwd: CLIENT_DIR,
      env: { ...process.env, ...env },
      timeout: 20000,
    }, (error, stdout, stderr) => (error ? reject(Object.assign(error, { stderr })) : resolve(stdout)));
  });
}

test('a script using the client exits by itself and leaves no sidecar behind', async () => {
  const pidFile = path.join(tempDir('cma-node-pids-'), 'pids');
  const out = await runScript(`
    const { runCumulusTask, configure } = require('.');
    configure({ command: ${JSON.stringify(fakeAdapterCommand(`pid-file=${pidFile}`))} });
    runCumulusTask((e) => e.input, { payload: 7 }, {}).then((next) => console.log(next.payload));
  `);
  assert.equal(out.trim(), '7');
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  assert.ok(await waitFor(() => !isAlive(pid)), 'the sidecar outlived the script');
});

test('process.exit() with a busy sidecar does not leave it running', async () => {
  const dir = tempDir('cma-node-pids-');
  const pidFile = path.join(dir, 'pids');
  const hung = path.join(dir, 'hung');
  await runScript(`
    const fs = require('fs');
    const { runCumulusTask, configure } = require('.');
    configure({ command: ${JSON.stringify(fakeAdapterCommand(`pid-file=${pidFile}`, `hang-once=createNextEvent:${hung}`))} });
    // createNextEvent never gets an answer: exit once the sidecar holds it.
    setInterval(() => { if (fs.existsSync(${JSON.stringify(hung)})) process.exit(0); }, 5);
    runCumulusTask((e) => e.input, { payload: 7 }, {});
  `);
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  assert.ok(await waitFor(() => !isAlive(pid)), 'the sidecar outlived the script');
});

test('an adapter that exits on hello (the historic one) is used over v1 from then on', async () => {
  const adapter = new MessageAdapter({ command: fakeAdapterCommand('die-on=hello') });
  try {
    const first = await adapter.runCumulusTask(identity, message(), lambdaContext());
    const second = await adapter.runCumulusTask(identity, message(), lambdaContext());
    assert.deepEqual(first, second);
    assert.equal(adapter.spawned, 2); // one to learn it speaks v1, then one for good
  } finally {
    await adapter.close();
  }
});
