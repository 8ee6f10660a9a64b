'use strict';

// runCumulusTask through this checkout's adapter, found as the published client finds it.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');

const cma = require('..');
const {
  devAdapterDir, lambdaContext, pathWithPython, withEnv,
} = require('./helpers');

const SCHEMAS = path.join(__dirname, 'fixtures', 'schemas');

process.env.PATH = pathWithPython();
process.env.CUMULUS_MESSAGE_ADAPTER_DIR = devAdapterDir();
delete process.env.USE_CMA_BINARY;

function message(extra = {}) {
  return {
    cumulus_meta: { execution_name: 'exec-1', state_machine: 'arn:sm', parentExecutionArn: 'arn:parent' },
    meta: { stack: 'test-stack', collection: { name: 'MOD09GQ' } },
    task_config: { collection: '{$.meta.collection.name}' },
    payload: { granules: [{ granuleId: 'g-1' }] },
    exception: 'None',
    ...extra,
  };
}

test('a sync task gets the nested event and the context; its result becomes the payload', async () => {
  const context = lambdaContext();
  let seen;
  const next = await cma.runCumulusTask((event, ctx) => {
    seen = { event, ctx };
    return { done: event.config.collection };
  }, message(), context);
  assert.equal(seen.ctx, context);
  assert.deepEqual(seen.event.input, { granules: [{ granuleId: 'g-1' }] });
  assert.deepEqual(seen.event.config, { collection: 'MOD09GQ' });
  assert.deepEqual(seen.event.cumulus_config, { state_machine: 'arn:sm', execution_name: 'exec-1' });
  assert.deepEqual(next.payload, { done: 'MOD09GQ' });
  assert.deepEqual(next.meta.workflow_tasks, {
    0: { name: 'test-function', version: '$LATEST', arn: context.invokedFunctionArn },
  });
});

test('an async task is awaited; undefined output gives a null payload', async () => {
  const next = await cma.runCumulusTask(async () => {
    await new Promise((resolve) => setImmediate(resolve));
  }, message(), lambdaContext());
  assert.equal(next.payload, null);
});

test('messageConfig outputs place the result', async () => {
  const next = await cma.runCumulusTask(() => ({ pdr: { name: 'a.PDR' }, count: 3 }), message({
    task_config: {
      cumulus_message: {
        outputs: [
          { source: '{$.pdr}', destination: '{$.meta.pdr}' },
          { source: '{$.count}', destination: '{$.payload}' },
        ],
      },
    },
  }), lambdaContext());
  assert.deepEqual(next.meta.pdr, { name: 'a.PDR' });
  assert.equal(next.payload, 3);
});

test('the logging environment variables are set before the task runs', async () => {
  let seen;
  await cma.runCumulusTask(() => {
    seen = {
      EXECUTIONS: process.env.EXECUTIONS,
      SENDER: process.env.SENDER,
      TASKVERSION: process.env.TASKVERSION,
      STACKNAME: process.env.STACKNAME,
      GRANULES: process.env.GRANULES,
      PARENTARN: process.env.PARENTARN,
    };
  }, message(), lambdaContext({ functionName: 'sender-fn', functionVersion: '12' }));
  assert.deepEqual(seen, {
    EXECUTIONS: 'exec-1',
    SENDER: 'sender-fn',
    TASKVERSION: '12',
    STACKNAME: 'test-stack',
    GRANULES: '["g-1"]',
    PARENTARN: 'arn:parent',
  });
});

test('a WorkflowError returns the incoming message with a null payload', async () => {
  const incoming = message();
  const copy = structuredClone(incoming);
  const next = await cma.runCumulusTask(() => {
    const error = new Error('nothing to do');
    error.name = 'SomeWorkflowError';
    throw error;
  }, incoming, lambdaContext());
  assert.deepEqual(next, { ...copy, payload: null, exception: 'SomeWorkflowError' });
  assert.deepEqual(incoming, copy);
});

test('a WorkflowError on a cma message is thrown', async () => {
  const error = new Error('nope');
  error.name = 'WorkflowError';
  await assert.rejects(
    cma.runCumulusTask(() => { throw error; }, { cma: { event: message() } }, lambdaContext()),
    (thrown) => thrown === error,
  );
});

test('other task errors are rethrown unchanged, sync or async', async () => {
  const error = new TypeError('bad input');
  await assert.rejects(
    cma.runCumulusTask(() => { throw error; }, message(), lambdaContext()),
    (thrown) => thrown === error,
  );
  await assert.rejects(
    cma.runCumulusTask(async () => { throw error; }, message(), lambdaContext()),
    (thrown) => thrown === error,
  );
});

test('a cma message is unwrapped', async () => {
  const next = await cma.runCumulusTask(
    (event) => event.config,
    { cma: { event: message({ task_config: undefined }), task_config: { a: '{$.meta.stack}' } } },
    lambdaContext(),
  );
  assert.deepEqual(next.payload, { a: 'test-stack' });
});

test('a schema failure throws CumulusMessageAdapterExecutionError and keeps the sidecar', async () => {
  const adapter = cma.getAdapter();
  await cma.runCumulusTask(() => ({ granules: [] }), message(), lambdaContext());
  const pid = adapter.pid;
  await assert.rejects(
    cma.runCumulusTask(() => ({ nothing: true }), message(), lambdaContext(), {
      output: path.join(SCHEMAS, 'output.json'),
    }),
    (error) => {
      assert.ok(error instanceof cma.CumulusMessageAdapterExecutionError);
      assert.equal(error.name, 'CumulusMessageAdapterExecutionError');
      assert.match(error.message, /^stream: ValidationError: output schema: 'granules' is a required property/);
      assert.ok(error.message.endsWith('\n'));
      assert.equal(error.adapterError.name, 'ValidationError');
      assert.equal(error.command, 'createNextEvent');
      return true;
    },
  );
  const next = await cma.runCumulusTask(() => ({ granules: [] }), message(), lambdaContext(), {
    output: path.join(SCHEMAS, 'output.json'),
  });
  assert.deepEqual(next.payload, { granules: [] });
  assert.equal(adapter.pid, pid);
  assert.equal(adapter.spawned, 1);
});

test('an input schema failure happens before the task runs', async () => {
  let ran = false;
  await assert.rejects(
    cma.runCumulusTask(() => { ran = true; }, message({ payload: {} }), lambdaContext(), {
      input: path.join(SCHEMAS, 'input.json'),
    }),
    /input schema: 'granules' is a required property/,
  );
  assert.equal(ran, false);
});

test('a malformed message fails in the adapter with its explanation', async () => {
  await assert.rejects(
    cma.runCumulusTask(() => {}, message({ task_config: [1, 2] }), lambdaContext()),
    (error) => error instanceof cma.CumulusMessageAdapterExecutionError
      && error.message === 'stream: MessageError: task_config must be a JSON object, got list\n',
  );
});

test('a message without a payload key is refused, as by the published client', async () => {
  const incoming = message();
  delete incoming.payload;
  let ran = false;
  await assert.rejects(
    cma.runCumulusTask(() => { ran = true; }, incoming, lambdaContext()),
    (error) => error.name === 'Error' && /payload/.test(error.message),
  );
  assert.equal(ran, false);
});

test('a context without getRemainingTimeInMillis works (no deadline)', async () => {
  const next = await cma.runCumulusTask((event) => event.input, message(), { functionName: 'local' });
  assert.deepEqual(next.payload, { granules: [{ granuleId: 'g-1' }] });
});

test('multi-byte text split over many pipe chunks and lone surrogates survive the round trip', async () => {
  const text = '\u00e9\u2603\ud83d\ude00'.repeat(60000); // ~540 KB of 2-, 3- and 4-byte UTF-8
  const odd = 'lone \ud800 and \udfff surrogates';
  const next = await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: '0' }, () => cma.runCumulusTask(
    (event) => ({ text: event.input.text, odd: event.input.odd, copy: `${event.input.odd}!` }),
    message({ payload: { text, odd } }),
    lambdaContext(),
  ));
  assert.equal(next.payload.text, text);
  assert.equal(next.payload.odd, odd);
  assert.equal(next.payload.copy, `${odd}!`);
});

test('concurrent invocations through the shared adapter keep their own results', async () => {
  const runs = Array.from({ length: 10 }, (_, i) => cma.runCumulusTask(
    async (event) => {
      // Later invocations finish first: each yields to the event loop 10 - i times.
      for (let turn = 0; turn < 10 - i; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      return { i: event.input.i, collection: event.config.collection };
    },
    message({ payload: { i } }),
    lambdaContext(),
  ));
  (await Promise.all(runs)).forEach((next, i) => assert.deepEqual(next.payload, { i, collection: 'MOD09GQ' }));
});

// ---- Step Functions' limit on the next message ----

const LIMIT = 262144;
const returning = (value) => () => value;

/** Bytes of UTF-8 JSON of the next message when the task returns `value`, with no limit. */
async function nextMessageSize(value) {
  const next = await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: '0' }, () => cma.runCumulusTask(returning(value), message(), lambdaContext()));
  return Buffer.byteLength(JSON.stringify(next));
}

test('a next message over Step Functions\' limit fails the invocation with its size and the fix', async () => {
  const text = 'x'.repeat(300000);
  const size = await nextMessageSize(text);
  await assert.rejects(cma.runCumulusTask(returning(text), message(), lambdaContext()), (error) => {
    assert.ok(error instanceof cma.MessageTooLargeError);
    assert.equal(error.name, 'MessageTooLargeError');
    assert.equal(error.command, 'createNextEvent');
    assert.deepEqual([error.size, error.limit], [size, LIMIT]);
    assert.match(error.message, new RegExp(`the next message is ${size} bytes of JSON, over Step Functions' limit of ${LIMIT} bytes`));
    assert.match(error.message, /set ReplaceConfig/);
    return true;
  });
});

test('a next message of exactly the limit is returned; one byte more is not', async () => {
  const pad = LIMIT - (await nextMessageSize(''));
  const next = await cma.runCumulusTask(returning('x'.repeat(pad)), message(), lambdaContext());
  assert.equal(Buffer.byteLength(JSON.stringify(next)), LIMIT);
  await assert.rejects(
    cma.runCumulusTask(returning('x'.repeat(pad + 1)), message(), lambdaContext()),
    (error) => error instanceof cma.MessageTooLargeError && error.size === LIMIT + 1,
  );
});

test('multi-byte characters count as their UTF-8 bytes', async () => {
  // 100 000 characters: under the limit in UTF-16 units, 300 000 bytes in UTF-8.
  await assert.rejects(
    cma.runCumulusTask(returning('\u20ac'.repeat(100000)), message(), lambdaContext()),
    (error) => error instanceof cma.MessageTooLargeError && error.size > 300000,
  );
});

test('CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES changes the limit; 0 turns the check off', async () => {
  await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: '1000' }, () => assert.rejects(
    cma.runCumulusTask(returning('x'.repeat(1000)), message(), lambdaContext()),
    (error) => error instanceof cma.MessageTooLargeError && error.limit === 1000,
  ));
  const next = await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: '0' }, () => cma.runCumulusTask(returning('x'.repeat(300000)), message(), lambdaContext()));
  assert.equal(next.payload.length, 300000);
});

test('an invalid CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES is named', async () => {
  await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: '256k' }, () => assert.rejects(
    cma.runCumulusTask(returning(1), message(), lambdaContext()),
    /CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES="256k" is not a number of bytes/,
  ));
});

test('a WorkflowError message is not checked against the limit', async () => {
  const big = message({ payload: { text: 'x'.repeat(300000) } });
  const fail = () => { const error = new Error('nothing found'); error.name = 'NoGranulesWorkflowError'; throw error; };
  const next = await cma.runCumulusTask(fail, big, lambdaContext());
  assert.equal(next.exception, 'NoGranulesWorkflowError');
});

test('protocol v2 is used when the adapter speaks it, with the same next message as v1', async () => {
  const task = (event) => ({ got: event.input, config: event.config });
  const v2 = new cma.MessageAdapter();
  try {
    const viaV2 = await v2.runCumulusTask(task, message(), lambdaContext());
    assert.equal(await v2.sidecar.protocol, 2);
    const viaV1 = await withEnv({ CUMULUS_MESSAGE_ADAPTER_PROTOCOL: '1' }, () => {
      const v1 = new cma.MessageAdapter();
      return v1.runCumulusTask(task, message(), lambdaContext()).finally(() => v1.close());
    });
    assert.deepEqual(viaV2, viaV1);
  } finally {
    await v2.close();
  }
});

test('over v2 the task gets its own copy of the payload, decoded from the text sent', async () => {
  const incoming = message();
  const adapter = new cma.MessageAdapter();
  try {
    let seen;
    await adapter.runCumulusTask((event) => {
      seen = event.input;
      event.input.granules.push('changed by the task');
    }, incoming, lambdaContext());
    assert.ok(adapter.sidecar.features.includes('referToPayload'));
    assert.notEqual(seen, incoming.payload);
    assert.deepEqual(incoming, message());
  } finally {
    await adapter.close();
  }
});

test('over v2 the input is v1\'s whether or not the payload is referred to', async () => {
  for (const taskConfig of [{ cumulus_message: { input: '{$.payload.granules}' } }, {}]) {
    const incoming = message({ task_config: taskConfig, payload: { granules: [{ n: 1.5 }], big: 1e21 } });
    const inputs = [];
    const task = (event) => { inputs.push(event.input); };
    const adapter = new cma.MessageAdapter();
    try {
      await adapter.runCumulusTask(task, incoming, lambdaContext());
    } finally {
      await adapter.close();
    }
    await withEnv({ CUMULUS_MESSAGE_ADAPTER_PROTOCOL: '1' }, () => {
      const v1 = new cma.MessageAdapter();
      return v1.runCumulusTask(task, incoming, lambdaContext()).finally(() => v1.close());
    });
    assert.deepEqual(inputs[0], inputs[1]);
  }
});

test('over v2 a plain task output is the next payload as the task returned it', async () => {
  const output = { granules: [{ granuleId: 'g-1', size: 1.5 }] };
  const adapter = new cma.MessageAdapter();
  try {
    const next = await adapter.runCumulusTask(() => output, message(), lambdaContext());
    assert.ok(adapter.sidecar.features.includes('referToResponse'));
    assert.equal(next.payload, output);
    assert.deepEqual(Object.keys(next), ['cumulus_meta', 'meta', 'task_config', 'payload', 'exception']);
  } finally {
    await adapter.close();
  }
});

test('over v2 an output JSON would change comes back as JSON gives it, as over v1', async () => {
  const output = () => ({ when: new Date(0), gone: undefined, n: NaN, holes: [1, , 3] }); // eslint-disable-line no-sparse-arrays
  const adapter = new cma.MessageAdapter();
  try {
    const viaV2 = await adapter.runCumulusTask(output, message(), lambdaContext());
    const viaV1 = await withEnv({ CUMULUS_MESSAGE_ADAPTER_PROTOCOL: '1' }, () => {
      const v1 = new cma.MessageAdapter();
      return v1.runCumulusTask(output, message(), lambdaContext()).finally(() => v1.close());
    });
    assert.deepEqual(viaV2.payload, { when: '1970-01-01T00:00:00.000Z', n: null, holes: [1, null, 3] });
    assert.deepEqual(viaV2, viaV1);
  } finally {
    await adapter.close();
  }
});

test('over v2 the next message size limit holds when the payload is referred to', async () => {
  const adapter = new cma.MessageAdapter();
  try {
    const next = await adapter.runCumulusTask(() => 'x'.repeat(1000), message(), lambdaContext());
    const size = Buffer.byteLength(JSON.stringify(next));
    await withEnv({ CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES: String(size) }, async () => {
      await adapter.runCumulusTask(() => 'x'.repeat(1000), message(), lambdaContext());
      await assert.rejects(
        adapter.runCumulusTask(() => 'x'.repeat(1001), message(), lambdaContext()),
        { name: 'MessageTooLargeError', message: new RegExp(`is ${size + 1} bytes`) },
      );
    });
  } finally {
    await adapter.close();
  }
});

test('a task error over v2 frees the session and the next invocation works', async () => {
  const adapter = new cma.MessageAdapter();
  try {
    await assert.rejects(adapter.runCumulusTask(() => { throw new Error('boom'); }, message(), lambdaContext()), /boom/);
    const next = await adapter.runCumulusTask(() => 7, message(), lambdaContext());
    assert.equal(next.payload, 7);
    assert.equal(adapter.spawned, 1);
  } finally {
    await adapter.close();
  }
});
