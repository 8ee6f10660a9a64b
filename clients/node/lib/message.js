'use strict';

// How the published client derives its logging environment variables from the message
// that loadAndUpdateRemoteEvent returns (and from the Lambda context).

const GRANULE_LOG_LIMIT = 500;

/** Ids of the first `limit` granules of `payload.granules`, else of `meta.input_granules`. */
function getMessageGranules(message, limit = GRANULE_LOG_LIMIT) {
  const granules = (message && message.payload && message.payload.granules)
    || (message && message.meta && message.meta.input_granules);
  if (!granules) return [];
  return granules.slice(0, limit).map((granule) => granule.granuleId);
}

const field = (object, key) => (object == null ? undefined : object[key]);

const getStackName = (message) => field(field(message, 'meta'), 'stack');
const getParentArn = (message) => field(field(message, 'cumulus_meta'), 'parentExecutionArn');
const getExecutions = (message) => field(field(message, 'cumulus_meta'), 'execution_name');
const getAsyncOperationId = (message) => field(field(message, 'cumulus_meta'), 'asyncOperationId');

/** Assign `process.env[name]` unless the value is undefined (null becomes "null"). */
function setIfDefined(name, value) {
  if (value !== undefined) process.env[name] = value;
}

/**
 * Set EXECUTIONS, SENDER, TASKVERSION, STACKNAME, GRANULES, PARENTARN and ASYNCOPERATIONID
 * for the task's loggers. Variables whose value is unknown keep what they had.
 */
function setCumulusEnvironment(message, context) {
  setIfDefined('EXECUTIONS', getExecutions(message));
  setIfDefined('SENDER', field(context, 'functionName'));
  setIfDefined('TASKVERSION', field(context, 'functionVersion'));
  setIfDefined('STACKNAME', getStackName(message));
  setIfDefined('GRANULES', JSON.stringify(getMessageGranules(message)));
  setIfDefined('PARENTARN', getParentArn(message));
  setIfDefined('ASYNCOPERATIONID', getAsyncOperationId(message));
}

module.exports = {
  GRANULE_LOG_LIMIT,
  getAsyncOperationId,
  getExecutions,
  getMessageGranules,
  getParentArn,
  getStackName,
  setCumulusEnvironment,
};
