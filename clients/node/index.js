'use strict';

// A drop-in replacement for @cumulus/cumulus-message-adapter-js that keeps one message
// adapter sidecar warm across invocations instead of starting one per invocation.

const { MessageAdapter, DEFAULT_DEADLINE_MARGIN_MS, STEP_FUNCTIONS_LIMIT } = require('./lib/adapter');
const { CumulusMessageAdapterExecutionError, MessageTooLargeError } = require('./lib/errors');
const { generateCMASpawnArguments } = require('./lib/command');
const message = require('./lib/message');

let sharedAdapter = null;

/** The adapter shared by runCumulusTask in this process. */
function getAdapter() {
  if (!sharedAdapter) sharedAdapter = new MessageAdapter();
  return sharedAdapter;
}

/**
 * Replace the shared adapter's options (for example an explicit `command`). The previous
 * sidecar, if any, exits once it has answered what it was sent.
 */
function configure(options = {}) {
  const previous = sharedAdapter;
  sharedAdapter = new MessageAdapter(options);
  if (previous) previous.close();
  return sharedAdapter;
}

/**
 * Start the shared sidecar now, for example at module load in a Lambda handler file, so the
 * first invocation does not wait for it to start.
 */
function prewarm() {
  return getAdapter().start();
}

/** Stop the shared sidecar (it would otherwise exit with this process). */
function close() {
  return sharedAdapter ? sharedAdapter.close() : Promise.resolve();
}

/**
 * Run a Cumulus task through the message adapter: loadAndUpdateRemoteEvent,
 * loadNestedEvent, `TaskFunction(nestedEvent, context)` (sync or async), createNextEvent.
 * Resolves with the next Cumulus message.
 */
function runCumulusTask(TaskFunction, cumulusMessage, context, schemas = null) {
  return getAdapter().runCumulusTask(TaskFunction, cumulusMessage, context, schemas);
}

module.exports = {
  CumulusMessageAdapterExecutionError,
  DEFAULT_DEADLINE_MARGIN_MS,
  MessageAdapter,
  MessageTooLargeError,
  STEP_FUNCTIONS_LIMIT,
  close,
  configure,
  generateCMASpawnArguments,
  getAdapter,
  getMessageGranules: message.getMessageGranules,
  prewarm,
  runCumulusTask,
};
