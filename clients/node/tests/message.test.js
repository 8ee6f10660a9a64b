'use strict';

// The logging environment variables, derived as the published client derives them.

const test = require('node:test');
const assert = require('node:assert/strict');

const ours = require('../lib/message');
const published = require('@cumulus/cumulus-message-adapter-js/dist/message');
const { withEnv } = require('./helpers');

const granules = (count, prefix = 'g') => Array.from({ length: count }, (_, i) => ({ granuleId: `${prefix}${i}` }));

const MESSAGES = {
  empty: {},
  'null payload': { payload: null },
  'payload granules': { payload: { granules: granules(3) } },
  'input_granules fallback': { payload: {}, meta: { input_granules: granules(2, 'in') } },
  'payload wins over input_granules': {
    payload: { granules: granules(1, 'p') }, meta: { input_granules: granules(1, 'm') },
  },
  'empty payload granules is still chosen': { payload: { granules: [] }, meta: { input_granules: granules(1) } },
  'granules without ids': { payload: { granules: [{}, { granuleId: 'x' }] } },
  'more than 500 granules': { payload: { granules: granules(2000) } },
  'string payload': { payload: 'text', meta: { input_granules: granules(1, 's') } },
  'full meta': {
    cumulus_meta: { execution_name: 'exec-1', parentExecutionArn: 'arn:parent', asyncOperationId: 'op-9' },
    meta: { stack: 'my-stack' },
    payload: {},
  },
  'null fields': { cumulus_meta: { execution_name: null, parentExecutionArn: null }, meta: { stack: null }, payload: {} },
  'numbers': { cumulus_meta: { execution_name: 12, asyncOperationId: 0 }, payload: {} },
};

for (const [name, message] of Object.entries(MESSAGES)) {
  test(`helpers agree with the published client: ${name}`, () => {
    assert.deepEqual(ours.getMessageGranules(message), published.getMessageGranules(message));
    assert.equal(ours.getStackName(message), published.getStackName(message));
    assert.equal(ours.getParentArn(message), published.getParentArn(message));
    assert.equal(ours.getExecutions(message), published.getExecutions(message));
    assert.equal(ours.getAsyncOperationId(message), published.getAsyncOperationId(message));
  });
}

test('GRANULES holds the first 500 ids', () => {
  const ids = ours.getMessageGranules({ payload: { granules: granules(2000) } });
  assert.equal(ids.length, 500);
  assert.equal(ids[499], 'g499');
});

const NAMES = ['EXECUTIONS', 'SENDER', 'TASKVERSION', 'STACKNAME', 'GRANULES', 'PARENTARN', 'ASYNCOPERATIONID'];
const cleared = Object.fromEntries(NAMES.map((name) => [name, undefined]));

test('setCumulusEnvironment sets every variable from the message and context', () => withEnv(cleared, () => {
  ours.setCumulusEnvironment({
    cumulus_meta: { execution_name: 'exec-1', parentExecutionArn: 'arn:parent', asyncOperationId: 'op-9' },
    meta: { stack: 'stack-a' },
    payload: { granules: granules(2) },
  }, { functionName: 'fn', functionVersion: '7' });
  assert.deepEqual(NAMES.map((name) => process.env[name]), [
    'exec-1', 'fn', '7', 'stack-a', '["g0","g1"]', 'arn:parent', 'op-9',
  ]);
}));

test('unknown values leave variables as they were; null becomes "null"', () => withEnv(
  { ...cleared, STACKNAME: 'previous', SENDER: 'previous-sender' },
  () => {
    ours.setCumulusEnvironment({ cumulus_meta: { execution_name: null }, payload: null }, {});
    assert.equal(process.env.STACKNAME, 'previous');
    assert.equal(process.env.SENDER, 'previous-sender');
    assert.equal(process.env.EXECUTIONS, 'null');
    assert.equal(process.env.GRANULES, '[]');
    assert.equal(process.env.PARENTARN, undefined);
  },
));
