'use strict';

// The same tasks through the published @cumulus/cumulus-message-adapter-js (a fresh
// adapter per invocation) and through this client (one warm sidecar), against the bundle
// built from this checkout: the results, the errors and what the task sees must be equal.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');

const published = require('@cumulus/cumulus-message-adapter-js');
const ours = require('..');
const { execFileSync } = require('child_process');
const { bundleDir, lambdaContext, pathWithPython, repoPython } = require('./helpers');

const SCHEMAS = path.join(__dirname, 'fixtures', 'schemas');
const ENV_NAMES = ['EXECUTIONS', 'SENDER', 'TASKVERSION', 'STACKNAME', 'GRANULES', 'PARENTARN', 'ASYNCOPERATIONID'];

test('set up: the adapter directory both clients use', (t) => {
  const adapter = bundleDir();
  t.diagnostic(`CUMULUS_MESSAGE_ADAPTER_DIR=${adapter.dir} (${adapter.kind})`);
  process.env.PATH = pathWithPython();
  process.env.CUMULUS_MESSAGE_ADAPTER_DIR = adapter.dir;
  // CMA_TEST_USE_CMA_BINARY=true runs both clients on the bundle's cma_bin/cma instead
  // (with CMA_TEST_BUNDLE_DIR naming a bundle built with the executable).
  if (process.env.CMA_TEST_USE_CMA_BINARY === 'true') process.env.USE_CMA_BINARY = 'true';
  else delete process.env.USE_CMA_BINARY;
  // The published client returns messages over Step Functions' limit (2000 granules here);
  // this one refuses them unless told otherwise (run.test.js tests that difference).
  process.env.CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES = '0';
});

test.after(() => ours.close());

function granules(count) {
  return Array.from({ length: count }, (_, i) => ({
    granuleId: `MOD09GQ.A2017${String(1 + (i % 365)).padStart(3, '0')}.h${i % 36}v${i % 18}.006.${2017034065104 + i}`,
    dataType: 'MOD09GQ',
    files: [{ bucket: 'protected', key: `file-${i}.hdf`, size: 1000 + i }],
  }));
}

function message(extra = {}) {
  return {
    cumulus_meta: {
      execution_name: 'exec-42',
      state_machine: 'arn:aws:states:us-east-1:123:stateMachine:Ingest',
      parentExecutionArn: 'arn:aws:states:us-east-1:123:execution:Parent:1',
      asyncOperationId: 'async-7',
      system_bucket: 'sys-bucket',
    },
    meta: {
      stack: 'compat-stack',
      provider: { host: 'example.com', protocol: 's3' },
      collection: { name: 'MOD09GQ', version: '006' },
      workflow_tasks: {},
    },
    task_config: {
      provider: '{$.meta.provider}',
      collection: '{$.meta.collection.name}',
      path: 'data/{$.meta.collection.name}/{$.meta.collection.version}',
      granuleIds: '{[$.payload.granules[*].granuleId]}',
    },
    payload: { granules: granules(3) },
    exception: 'None',
    'unicode é ☃': 'ünïcödé \ud83d\ude00',
    big: 12345678901234567,
    ...extra,
  };
}

/** Run one task through a client, recording what the task saw. */
async function run(client, task, incoming, schemas = null) {
  const seen = [];
  const context = lambdaContext({ functionName: 'compat-task', functionVersion: '3' });
  const wrapped = async (event, ctx) => {
    seen.push({
      event: structuredClone(event),
      sameContext: ctx === context,
      env: Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]])),
    });
    return task(event, ctx);
  };
  for (const name of ENV_NAMES) delete process.env[name];
  const log = console.log;
  console.log = () => {}; // the published client logs every step to stdout
  try {
    const result = await client.runCumulusTask(wrapped, structuredClone(incoming), context, schemas);
    return { result, seen };
  } catch (error) {
    return { error, seen };
  } finally {
    console.log = log;
  }
}

async function both(task, incoming, schemas) {
  let theirs = await run(published, task, incoming, schemas);
  // The published client reads the adapter's stderr when stdout closes, which sometimes
  // comes first: it then throws with an empty message. Ask it again in that case.
  for (let attempt = 0; attempt < 5 && theirs.error && theirs.error.message === ''; attempt += 1) {
    theirs = await run(published, task, incoming, schemas);
  }
  const mine = await run(ours, task, incoming, schemas);
  assert.deepEqual(mine.seen, theirs.seen, 'the task saw different events, contexts or environments');
  return { theirs, mine };
}

function sameResult({ theirs, mine }) {
  assert.equal(theirs.error, undefined, `published client failed: ${theirs.error && theirs.error.stack}`);
  assert.equal(mine.error, undefined, `this client failed: ${mine.error && mine.error.stack}`);
  assert.deepEqual(mine.result, theirs.result);
  return mine.result;
}

const CASES = {
  'a task returning its input': [(event) => event.input, message()],
  'an async task using its config': [async (event) => ({ ...event.config, n: 1 }), message()],
  'a task returning nothing': [() => undefined, message()],
  'messageConfig outputs': [(event) => ({ pdr: { name: 'x.PDR' }, granules: event.input.granules }), message({
    task_config: {
      cumulus_message: {
        input: '{$.payload.granules}',
        outputs: [
          { source: '{$.pdr}', destination: '{$.meta.pdr}' },
          { source: '{$.granules}', destination: '{$.payload.granules}' },
        ],
      },
    },
  })],
  'a cma (Step Functions parameters) message': [(event) => event.config, {
    cma: { event: message({ task_config: undefined }), task_config: { stack: '{$.meta.stack}' } },
  }],
  'input_granules and a null payload': [(event) => event.input, message({
    payload: null, meta: { stack: 's', input_granules: granules(2) },
  })],
  '2000 granules': [(event) => event.input, message({ payload: { granules: granules(2000) } })],
};

for (const [name, [task, incoming]] of Object.entries(CASES)) {
  test(`success is identical: ${name}`, async () => {
    sameResult(await both(task, incoming));
  });
}

test('success with input and output schemas is identical', async () => {
  sameResult(await both(() => ({ granules: [] }), message(), {
    input: path.join(SCHEMAS, 'input.json'),
    output: path.join(SCHEMAS, 'output.json'),
  }));
});

test('a WorkflowError gives the same message', async () => {
  const task = () => {
    const error = new Error('no granules');
    error.name = 'NoGranulesWorkflowError';
    throw error;
  };
  const result = sameResult(await both(task, message()));
  assert.equal(result.payload, null);
  assert.equal(result.exception, 'NoGranulesWorkflowError');
});

function sameError({ theirs, mine }, check) {
  assert.ok(theirs.error, 'the published client did not fail');
  assert.ok(mine.error, 'this client did not fail');
  assert.equal(mine.error.name, theirs.error.name);
  check(theirs.error, mine.error);
}

test('a WorkflowError in a cma message is thrown by both', async () => {
  const error = new Error('stop');
  error.name = 'WorkflowError';
  sameError(await both(() => { throw error; }, { cma: { event: message() } }), (theirs, mine) => {
    assert.equal(theirs, error);
    assert.equal(mine, error);
  });
});

test('a task error is rethrown unchanged by both', async () => {
  const error = new RangeError('task failed');
  sameError(await both(() => { throw error; }, message()), (theirs, mine) => {
    assert.equal(theirs, error);
    assert.equal(mine, error);
  });
});

const ADAPTER_FAILURES = {
  'an output schema failure': [() => ({ nothing: 1 }), message(), { output: path.join(SCHEMAS, 'output.json') }],
  'an input schema failure': [(event) => event.input, message({ payload: { other: 1 } }), { input: path.join(SCHEMAS, 'input.json') }],
  'a malformed task_config': [(event) => event.input, message({ task_config: ['not', 'an', 'object'] })],
  'a template that is not a JSONPath': [(event) => event.input, message({ task_config: { bad: '{$.meta[}' } })],
};

for (const [name, [task, incoming, schemas]] of Object.entries(ADAPTER_FAILURES)) {
  test(`adapter errors are identical: ${name}`, async () => {
    sameError(await both(task, incoming, schemas), (theirs, mine) => {
      assert.equal(mine.name, 'CumulusMessageAdapterExecutionError');
      assert.equal(mine.message, theirs.message);
    });
  });
}

test('a message without a payload key is refused by both', async () => {
  const incoming = message();
  delete incoming.payload;
  sameError(await both((event) => event.input, incoming), (theirs, mine) => {
    assert.equal(mine.name, 'Error');
    assert.match(theirs.message, /loadAndUpdateRemoteEvent/);
    assert.match(mine.message, /loadAndUpdateRemoteEvent/);
  });
});


// ---- messages stored in S3 (run by tests/test_node_client.py against a moto server) ----

const BUCKET = process.env.CMA_TEST_S3_BUCKET;
const s3Skip = BUCKET ? false : 'set CMA_TEST_S3_BUCKET (a bucket at AWS_ENDPOINT_URL) to run';

/** Put or get a JSON object in the test bucket with boto3 (the adapter's own S3 client). */
function s3(operation, key, value) {
  const code = `
import json, sys, boto3
operation, bucket, key = sys.argv[1:4]
client = boto3.client("s3")
if operation == "put":
    client.put_object(Bucket=bucket, Key=key, Body=sys.stdin.read().encode())
else:
    print(client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
`;
  const out = execFileSync(repoPython(), ['-c', code, operation, BUCKET, key], {
    input: value === undefined ? '' : JSON.stringify(value), encoding: 'utf8', maxBuffer: 1 << 26,
  });
  return operation === 'get' ? JSON.parse(out) : undefined;
}

function remoteMessage(key, targetPath = '$') {
  return { cumulus_meta: { execution_name: 'remote-exec' }, replace: { Bucket: BUCKET, Key: key, TargetPath: targetPath } };
}

test('a message stored in S3 is loaded identically', { skip: s3Skip }, async () => {
  s3('put', 'compat/full.json', message({ payload: { granules: granules(50) } }));
  const result = sameResult(await both((event) => event.input, remoteMessage('compat/full.json')));
  assert.equal(result.payload.granules.length, 50);
  assert.equal(result.replace, undefined);
});

test('a payload stored in S3 is loaded identically', { skip: s3Skip }, async () => {
  s3('put', 'compat/payload.json', { granules: granules(5) });
  const incoming = { ...message(), payload: {}, replace: { Bucket: BUCKET, Key: 'compat/payload.json', TargetPath: '$.payload' } };
  const result = sameResult(await both((event) => event.input, incoming));
  assert.equal(result.payload.granules.length, 5);
});

test('a WorkflowError on a stored message returns the incoming pointer', { skip: s3Skip }, async () => {
  s3('put', 'compat/workflow.json', message());
  const task = () => {
    const error = new Error('skip');
    error.name = 'SkipWorkflowError';
    throw error;
  };
  const result = sameResult(await both(task, remoteMessage('compat/workflow.json')));
  assert.deepEqual(result.replace, remoteMessage('compat/workflow.json').replace);
  assert.equal(result.exception, 'SkipWorkflowError');
});

test('ReplaceConfig offloads the same message to S3', { skip: s3Skip }, async () => {
  const incoming = {
    cma: {
      event: message({ cumulus_meta: { ...message().cumulus_meta, system_bucket: BUCKET }, task_config: undefined }),
      task_config: { stack: '{$.meta.stack}' },
      ReplaceConfig: { FullMessage: true },
    },
  };
  const { theirs, mine } = await both((event) => ({ stack: event.config.stack, input: event.input }), incoming);
  assert.equal(theirs.error, undefined, theirs.error && theirs.error.stack);
  assert.equal(mine.error, undefined, mine.error && mine.error.stack);
  const stored = (result) => {
    assert.equal(result.replace.Bucket, BUCKET);
    assert.match(result.replace.Key, /^events\/[0-9a-f-]{36}$/);
    return s3('get', result.replace.Key);
  };
  assert.deepEqual(stored(mine.result), stored(theirs.result));
  const masked = (result) => ({ ...result, replace: { ...result.replace, Key: 'events/…' } });
  assert.deepEqual(masked(mine.result), masked(theirs.result));
  assert.deepEqual(stored(mine.result).payload.stack, 'compat-stack');
});

test('a missing stored message is the same adapter error', { skip: s3Skip }, async () => {
  sameError(await both((event) => event.input, remoteMessage('compat/does-not-exist.json')), (theirs, mine) => {
    assert.equal(mine.name, 'CumulusMessageAdapterExecutionError');
    assert.equal(mine.message, theirs.message);
    assert.match(mine.message, /RemoteStoreError/);
  });
});

test('this client used one sidecar for all of it', () => {
  assert.equal(ours.getAdapter().spawned, 1);
});
