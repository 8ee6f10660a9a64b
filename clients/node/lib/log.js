'use strict';

// The client's own log lines, in @cumulus/logger's format (one JSON object per line) and
// with the fields it takes from the variables this client sets (EXECUTIONS, GRANULES, ...).
// LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, sets the least level written (default info).

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const ALIASES = { warning: 'warn', critical: 'fatal' };

function levelName(text) {
  if (!text) return undefined;
  const name = String(text).trim().toLowerCase();
  const canonical = ALIASES[name] || name;
  return LEVELS[canonical] ? canonical : undefined;
}

function threshold(env = process.env) {
  return levelName(env.LOG_LEVEL) || levelName(env.AWS_LAMBDA_LOG_LEVEL) || 'info';
}

/** The line for `message` at `level`, or undefined when the level is below the threshold. */
function logLine(level, message, additionalKeys = {}, env = process.env, now = new Date()) {
  if (LEVELS[level] < LEVELS[threshold(env)]) return undefined;
  return JSON.stringify({
    ...additionalKeys,
    asyncOperationId: env.ASYNCOPERATIONID,
    executions: env.EXECUTIONS,
    granules: env.GRANULES,
    level,
    message,
    parentArn: env.PARENTARN,
    sender: env.SENDER || 'unknown',
    stackName: env.STACKNAME,
    timestamp: now.toISOString(),
    version: env.TASKVERSION,
  });
}

function log(level, message, additionalKeys) {
  const line = logLine(level, message, additionalKeys);
  if (line !== undefined) process.stderr.write(`${line}\n`);
}

module.exports = { LEVELS, log, logLine, threshold };
