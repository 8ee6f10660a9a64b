'use strict';

// The Node host of `cumulus-message-adapter ecs-task`: loads a Lambda function's handler
// once, then calls it for every request it reads, as a warm Lambda container would.
// Requests and answers are JSON lines on two pipes (CMA_HOST_REQUEST_FD, CMA_HOST_ANSWER_FD),
// so the handler's own stdout, stderr and stdin stay its own.

const fs = require('fs');
const net = require('net');
const path = require('path');
const readline = require('readline');
const { pathToFileURL } = require('url');

const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
const handlerName = process.env._HANDLER || '';
const answers = new net.Socket({ fd: Number(process.env.CMA_HOST_ANSWER_FD), readable: false, writable: true });

function send(value) {
  answers.write(`${JSON.stringify(value)}\n`);
}

function describeError(error) {
  if (error instanceof Error || (error && typeof error === 'object' && 'message' in error)) {
    const stack = typeof error.stack === 'string' ? error.stack.split('\n') : undefined;
    return { name: String(error.name || 'Error'), message: String(error.message ?? ''), stack };
  }
  return { name: 'Error', message: typeof error === 'string' ? error : JSON.stringify(error) ?? String(error) };
}

function namedError(name, message, cause) {
  const error = new Error(message);
  error.name = name;
  if (cause && cause.stack) error.stack = `${name}: ${message}\n${cause.stack}`;
  return error;
}

async function loadHandler() {
  const dot = handlerName.lastIndexOf('.');
  if (dot <= 0 || dot === handlerName.length - 1) {
    throw namedError('Runtime.MalformedHandlerName',
      `handler "${handlerName}" is not FILE.FUNCTION (for example index.handler)`);
  }
  const modulePath = path.resolve(taskRoot, handlerName.slice(0, dot));
  const functionName = handlerName.slice(dot + 1);
  let loaded;
  try {
    const esm = ['.mjs'].find((ext) => fs.existsSync(modulePath + ext));
    if (esm) {
      loaded = await import(pathToFileURL(modulePath + esm).href);
    } else {
      try {
        loaded = require(modulePath);
      } catch (error) {
        if (error && error.code === 'ERR_REQUIRE_ESM') loaded = await import(pathToFileURL(require.resolve(modulePath)).href);
        else throw error;
      }
    }
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(modulePath)) {
      throw namedError('Runtime.ImportModuleError',
        `cannot find module ${handlerName.slice(0, dot)} in ${taskRoot} (handler ${handlerName})`, error);
    }
    throw namedError('Runtime.ImportModuleError',
      `loading ${handlerName.slice(0, dot)} failed: ${error && error.name}: ${error && error.message}`, error);
  }
  let handler = loaded && loaded[functionName];
  if (handler === undefined && loaded && loaded.default) handler = loaded.default[functionName];
  if (typeof handler !== 'function') {
    throw namedError('Runtime.HandlerNotFound',
      `${handlerName.slice(0, dot)} has no function ${functionName} (handler ${handlerName})`);
  }
  return handler;
}

function makeContext(fields) {
  const deadline = fields.deadlineMs;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fields.functionName,
    functionVersion: fields.functionVersion,
    invokedFunctionArn: fields.invokedFunctionArn,
    memoryLimitInMB: fields.memoryLimitInMB,
    awsRequestId: fields.awsRequestId,
    logGroupName: fields.logGroupName,
    logStreamName: fields.logStreamName,
    activityArn: fields.activityArn,
    via: 'ECS',
  };
  Object.defineProperty(context, 'getRemainingTimeInMillis', {
    value: () => (deadline ? Math.max(0, deadline - Date.now()) : 0),
    enumerable: false,
  });
  return context;
}

function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== undefined && error !== null) reject(error);
      else resolve(result);
    };
    for (const [name, fn] of [['done', done], ['succeed', (r) => done(null, r)], ['fail', (e) => done(e ?? new Error('failed'))]]) {
      Object.defineProperty(context, name, { value: fn, enumerable: false });
    }
    let returned;
    try {
      returned = handler(event, context, done);
    } catch (error) {
      done(error);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => done(null, result), (error) => done(error ?? new Error('rejected')));
    } else if (handler.length < 3) {
      done(null, returned);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (error) {
    send({ ready: false, error: describeError(error) });
    answers.end(() => process.exit(3));
    return;
  }
  send({ ready: true, pid: process.pid });
  const requests = new net.Socket({ fd: Number(process.env.CMA_HOST_REQUEST_FD), readable: true, writable: false });
  requests.on('end', () => answers.end(() => process.exit(0)));
  const lines = readline.createInterface({ input: requests, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    const request = JSON.parse(line);
    for (const [name, value] of Object.entries(request.env || {})) process.env[name] = value;
    invoke(handler, request.event, makeContext(request.context || {})).then(
      (result) => send({ id: request.id, ok: true, result: result === undefined ? null : result }),
      (error) => send({ id: request.id, ok: false, error: describeError(error) }),
    ).catch((error) => send({ id: request.id, ok: false, error: describeError(error) }));
  });
}

main();
