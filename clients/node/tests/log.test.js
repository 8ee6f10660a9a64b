'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { logLine, threshold } = require('../lib/log');

const env = {
  EXECUTIONS: 'ex-1', GRANULES: '["g1"]', STACKNAME: 'prod', SENDER: 'Sync', TASKVERSION: '2',
  PARENTARN: 'arn:parent', ASYNCOPERATIONID: 'op-1',
};

test('a line has @cumulus/logger keys, in its order, from the variables the client sets', () => {
  const line = JSON.parse(logLine('error', 'boom', { event: 'x' }, env, new Date(0)));
  assert.deepStrictEqual(Object.keys(line), [
    'event', 'asyncOperationId', 'executions', 'granules', 'level', 'message', 'parentArn',
    'sender', 'stackName', 'timestamp', 'version',
  ]);
  assert.strictEqual(line.executions, 'ex-1');
  assert.strictEqual(line.timestamp, '1970-01-01T00:00:00.000Z');
});

test('missing variables are left out and sender defaults to unknown', () => {
  assert.deepStrictEqual(JSON.parse(logLine('warn', 'w', {}, {}, new Date(0))), {
    level: 'warn', message: 'w', sender: 'unknown', timestamp: '1970-01-01T00:00:00.000Z',
  });
});

test('LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, sets the least level written', () => {
  assert.strictEqual(threshold({}), 'info');
  assert.strictEqual(threshold({ AWS_LAMBDA_LOG_LEVEL: 'DEBUG' }), 'debug');
  assert.strictEqual(threshold({ LOG_LEVEL: 'error', AWS_LAMBDA_LOG_LEVEL: 'DEBUG' }), 'error');
  assert.strictEqual(logLine('info', 'quiet', {}, { LOG_LEVEL: 'warn' }), undefined);
});
