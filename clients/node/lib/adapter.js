'use strict';

// A warm message adapter shared by every invocation in this process: commands go through
// one queue, one at a time, to one sidecar, which is started on first use, replaced when
// it dies or misses a deadline, and restarted when the environment that locates it changes.

const fs = require('fs');
const path = require('path');
const { CumulusMessageAdapterExecutionError, MessageTooLargeError } = require('./errors');
const {
  adapterFromCommand, adapterFromEnvironment, adapterProblem, bundlePython,
} = require('./command');
const { log } = require('./log');
const { setCumulusEnvironment } = require('./message');
const { isPlainJson } = require('./plain');
const { Sidecar } = require('./sidecar');

const ERROR_FRAME = '<ERROR>\n';
const STDERR_KEEP = 1 << 20; // characters of adapter stderr kept for error messages
const DEFAULT_DEADLINE_MARGIN_MS = 500;
const STEP_FUNCTIONS_LIMIT = 256 * 1024; // bytes of UTF-8 JSON in a state's output
const LIMIT_VARIABLE = 'CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES';
const PROTOCOL_VARIABLE = 'CUMULUS_MESSAGE_ADAPTER_PROTOCOL';
const V1_NAMES = { beginTask: 'loadAndUpdateRemoteEvent', completeTask: 'createNextEvent' };

/** The highest protocol version this process may use: 1 when the environment says so. */
function protocolCeiling(env = process.env) {
  const text = (env[PROTOCOL_VARIABLE] || '').trim();
  if (!text) return 2;
  if (text !== '1' && text !== '2') {
    throw new Error(`${PROTOCOL_VARIABLE}=${JSON.stringify(text)} is not 1 or 2; unset it to use `
      + 'the newest protocol the message adapter speaks');
  }
  return Number(text);
}

const hasAssignedPayload = (message) => message != null
  && message.payload !== undefined && message.input === undefined && message.config === undefined;

const isNestedEvent = (message) => message != null
  && message.input !== undefined && message.config !== undefined;

const isCmaMessage = (message) => message != null && message.cma !== undefined;

/** The largest next message allowed, in bytes (0: no check), from the environment. */
function outputLimit(env = process.env) {
  const text = env[LIMIT_VARIABLE];
  if (!text) return STEP_FUNCTIONS_LIMIT;
  const limit = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(limit)) {
    throw new Error(`${LIMIT_VARIABLE}=${JSON.stringify(text)} is not a number of bytes (0 for `
      + `no limit); unset it for Step Functions' limit (${STEP_FUNCTIONS_LIMIT})`);
  }
  return limit;
}

/**
 * Throw MessageTooLargeError when the next message's JSON text is over the limit. The
 * text is what the adapter answered, as compact as what Lambda will send; its UTF-8 size is
 * counted only when its length leaves the answer in doubt (at most 3 bytes a UTF-16 unit).
 */
function checkOutputSize(text) {
  const limit = outputLimit();
  if (!limit || text.length * 3 <= limit) return;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > limit) throw new MessageTooLargeError(size, limit, LIMIT_VARIABLE);
}

/** checkOutputSize for a next message the sidecar gave the size of (referToResponse). */
function checkOutputBytes(size) {
  const limit = outputLimit();
  if (limit && size > limit) throw new MessageTooLargeError(size, limit, LIMIT_VARIABLE);
}

/**
 * `{"key":json,...}` from [key, json text] pairs, as the pieces of text that make it up (a
 * pair whose json is undefined is left out). The pieces are written to the pipe one by one:
 * joining them would copy a large message into a new string first.
 */
function jsonObject(pairs) {
  const pieces = [];
  for (const [key, json] of pairs) {
    if (json === undefined) continue;
    pieces.push(`${pieces.length ? ',' : '{'}"${key}":`);
    if (Array.isArray(json)) pieces.push(...json);
    else pieces.push(json);
  }
  pieces.push(pieces.length ? '}' : '{}');
  return pieces;
}

/**
 * JSON.stringify(message) as pieces of text, its payload's text one of them (kept, so a
 * sidecar that answers inputIsPayload need not send it back: protocol.md, referToPayload).
 * payloadText is undefined when the message is not a plain object with a payload.
 */
function messagePieces(message) {
  const whole = () => ({ pieces: [JSON.stringify(message)], payloadText: undefined });
  if (message === null || typeof message !== 'object' || Array.isArray(message)
    || typeof message.toJSON === 'function' || !Object.prototype.hasOwnProperty.call(message, 'payload')) {
    return whole();
  }
  const before = [];
  const after = [];
  let payloadText;
  for (const key of Object.keys(message)) {
    const text = JSON.stringify(message[key]);
    if (key === 'payload') {
      if (text === undefined) return whole(); // a payload JSON leaves out
      payloadText = text;
    } else if (text !== undefined) {
      (payloadText === undefined ? before : after).push(`${JSON.stringify(key)}:${text}`);
    }
  }
  return {
    pieces: [
      before.length ? `{${before.join(',')},"payload":` : '{"payload":',
      payloadText,
      after.length ? `,${after.join(',')}}` : '}',
    ],
    payloadText,
  };
}

/** Whether an adapter directory is one of ours (`bundle` writes cma-bundle.json). */
function isOurBundle(adapterDir) {
  return fs.existsSync(path.join(adapterDir, 'cma-bundle.json'));
}

function describeCommand(spec) {
  return [spec.file, ...spec.args, 'stream', '--structured-errors'].join(' ');
}

/**
 * For an adapter started as `python DIR` that could not import its packages (a bundle made
 * before its __main__.py checked the Python version): what to set.
 */
function importHint(spec) {
  if (spec.key === 'explicit' || spec.args.length !== 1) return '';
  const built = bundlePython(spec.args[0]);
  if (!built) return '';
  return `(the bundle in ${spec.args[0]} was built for Python ${built}, per its cma-bundle.json; `
    + `if ${spec.file} is another version, put a python ${built} first on PATH, or set `
    + 'USE_CMA_BINARY=true to run its cma_bin/cma)\n';
}

class MessageAdapter {
  /**
   * @param {object} [options]
   * @param {string[]|string} [options.command] start the adapter with this argv (the client
   *   appends `stream --structured-errors`) instead of finding it through
   *   CUMULUS_MESSAGE_ADAPTER_DIR / USE_CMA_BINARY / PATH.
   * @param {number} [options.deadlineMarginMs=500] how long before the invocation's deadline
   *   an unanswered command is given up (never more than half of the time remaining).
   */
  constructor(options = {}) {
    this.explicit = options.command === undefined || options.command === null
      ? null
      : { ...adapterFromCommand(options.command), key: 'explicit' };
    this.deadlineMarginMs = options.deadlineMarginMs ?? DEFAULT_DEADLINE_MARGIN_MS;
    this.queue = [];
    this.current = null;
    this.sidecar = null;
    this.specCache = { key: null, spec: null };
    this.stderrText = '';
    this.stderrBase = 0;
    this.spawned = 0;
    this.v1Only = new Set(); // adapter command lines that ended their process on `hello`
    this.sessionOpen = false;
    this.events = {
      answer: (sidecar, text) => this._answer(sidecar, text),
      stderr: (sidecar, text) => this._stderr(text),
      gone: (sidecar, info) => this._gone(sidecar, info),
    };
  }

  /** Process id of the running sidecar, if any (for tests and diagnostics). */
  get pid() {
    return this.sidecar && !this.sidecar.gone ? this.sidecar.child.pid : undefined;
  }

  // ---- stderr bookkeeping: error messages carry what the adapter wrote since a mark ----

  stderrMark() {
    return this.stderrBase + this.stderrText.length;
  }

  stderrSince(mark) {
    return this.stderrText.slice(Math.max(0, mark - this.stderrBase));
  }

  _stderr(text) {
    this.stderrText += text;
    if (this.stderrText.length > STDERR_KEEP) {
      const drop = this.stderrText.length - STDERR_KEEP / 2;
      this.stderrText = this.stderrText.slice(drop);
      this.stderrBase += drop;
    }
  }

  // ---- the queue ----

  /**
   * Send one command (`body` is the request's JSON text, or an array of the pieces that make
   * it up) and resolve with the parsed answer
   * (with `raw`, `{value, text}`: the answer and its JSON text).
   * @param {{deadlineAt?: number, stderrMark?: number, raw?: boolean}} [options]
   */
  request(command, body, options = {}) {
    return new Promise((resolve, reject) => {
      const item = {
        command,
        body,
        resolve,
        reject,
        mark: options.stderrMark ?? this.stderrMark(),
        raw: Boolean(options.raw),
        state: 'queued',
        sidecar: null,
        timer: null,
      };
      if (options.deadlineAt !== undefined) {
        item.timer = setTimeout(() => this._expire(item), Math.max(0, options.deadlineAt - Date.now()));
        item.timer.unref();
      }
      this.queue.push(item);
      this._pump();
    });
  }

  _spec() {
    if (this.explicit) return this.explicit;
    const { env } = process;
    const key = `${env.PATH}\0${env.CUMULUS_MESSAGE_ADAPTER_DIR}\0${env.USE_CMA_BINARY}`;
    if (this.specCache.key !== key) {
      const problem = adapterProblem(env);
      if (problem) throw Object.assign(new Error(problem), { adapterNotFound: true });
      const found = adapterFromEnvironment(env);
      this.specCache = { key, spec: { ...found, key: JSON.stringify([found.file, ...found.args]) } };
    }
    return this.specCache.spec;
  }

  _sidecarFor() {
    const spec = this._spec();
    const { sidecar } = this;
    if (sidecar && !sidecar.gone && sidecar.spec.key === spec.key) return sidecar;
    if (sidecar) sidecar.retire();
    this.sidecar = new Sidecar(spec, this.events);
    this.spawned += 1;
    return this.sidecar;
  }

  _pump() {
    while (!this.current && this.queue.length) {
      const item = this.queue.shift();
      let sidecar;
      try {
        sidecar = this._sidecarFor();
      } catch (error) {
        const spec = this.explicit || this.specCache.spec;
        const what = error.adapterNotFound || !spec ? '' : ` (${describeCommand(spec)})`;
        this._settle(item, new CumulusMessageAdapterExecutionError(
          `could not start the message adapter${what}: ${error.message}`,
          { command: item.command, cause: error },
        ));
        continue;
      }
      item.state = 'sent';
      item.sidecar = sidecar;
      this.current = item;
      sidecar.busy(true);
      sidecar.writeFrame(item.command, item.body);
      item.body = null;
    }
  }

  _settle(item, error, value) {
    if (item.state === 'done') return;
    item.state = 'done';
    if (item.timer) clearTimeout(item.timer);
    if (error) item.reject(error);
    else item.resolve(value);
  }

  _answer(sidecar, text) {
    const item = this.current;
    if (!item || item.sidecar !== sidecar) return; // a late answer from a replaced sidecar
    this.current = null;
    sidecar.busy(false);
    if (text.startsWith(ERROR_FRAME)) {
      let frame;
      try {
        frame = JSON.parse(text.slice(ERROR_FRAME.length));
      } catch (error) {
        frame = { name: 'Error', message: text.slice(ERROR_FRAME.length) };
      }
      // Let stderr written before the error frame arrive before quoting it.
      setImmediate(() => {
        const stderr = `${this.stderrSince(item.mark)}stream: ${frame.name}: ${frame.message}\n`;
        this._settle(item, new CumulusMessageAdapterExecutionError(stderr, {
          command: typeof frame.step === 'string' ? frame.step : (V1_NAMES[item.command] || item.command),
          adapterError: frame,
        }));
      });
    } else {
      let value;
      try {
        value = JSON.parse(text);
      } catch (error) {
        this._settle(item, new CumulusMessageAdapterExecutionError(
          `the message adapter's answer to ${item.command} is not JSON (${error.message}): `
          + `${text.slice(0, 200)}`,
          { command: item.command },
        ));
        this._pump();
        return;
      }
      this._settle(item, null, item.raw ? { value, text } : value);
    }
    this._pump();
  }

  _gone(sidecar, info) {
    if (this.sidecar === sidecar) this.sidecar = null;
    const item = this.current;
    if (item && item.sidecar === sidecar) {
      this.current = null;
      let message = this.stderrSince(item.mark);
      if (info.error) {
        message = `could not start the message adapter (${describeCommand(sidecar.spec)}): `
          + `${info.error.message}${message ? `\n${message}` : ''}`;
      } else if (!message) {
        message = `the message adapter (${describeCommand(sidecar.spec)}) exited `
          + `(${info.signal ? `signal ${info.signal}` : `code ${info.code}`}) `
          + `without answering ${item.command}, and wrote nothing on stderr`;
      } else if (/ModuleNotFoundError|ImportError/.test(message)) {
        message += importHint(sidecar.spec);
      }
      log('error', `message adapter: ${message.trim().split('\n').pop()}`, {
        event: 'adapter_exited', command: item.command,
      });
      this._settle(item, new CumulusMessageAdapterExecutionError(message, {
        command: item.command,
        exitCode: info.code ?? undefined,
        signal: info.signal ?? undefined,
        cause: info.error,
      }));
    }
    this._pump();
  }

  _expire(item) {
    if (item.state === 'queued') {
      const index = this.queue.indexOf(item);
      if (index !== -1) this.queue.splice(index, 1);
      this._settle(item, new CumulusMessageAdapterExecutionError(
        `the message adapter was still busy with earlier commands when ${item.command} `
        + 'reached the invocation\'s deadline',
        { command: item.command, timedOut: true },
      ));
      return;
    }
    if (item.state !== 'sent' || this.current !== item) return;
    const { sidecar } = item;
    this.current = null;
    if (this.sidecar === sidecar) this.sidecar = null;
    sidecar.kill();
    log('error', `message adapter: no answer to ${item.command} before the invocation's deadline; `
      + 'it was stopped and is restarted for the next command', {
      event: 'adapter_timed_out', command: item.command,
    });
    const stderr = this.stderrSince(item.mark);
    this._settle(item, new CumulusMessageAdapterExecutionError(
      `the message adapter did not answer ${item.command} before the invocation's deadline; `
      + `it was stopped and will be restarted for the next command${stderr ? `\n${stderr}` : ''}`,
      { command: item.command, timedOut: true },
    ));
    this._pump();
  }

  // ---- running a task ----

  _deadline(context) {
    const remainingTime = context && context.getRemainingTimeInMillis;
    if (typeof remainingTime !== 'function') return undefined;
    const remaining = Number(remainingTime.call(context));
    if (!Number.isFinite(remaining) || remaining <= 0) return undefined;
    return Date.now() + Math.max(remaining - this.deadlineMarginMs, remaining / 2);
  }

  _call(command, body, context, mark, raw = false) {
    return this.request(command, body, {
      deadlineAt: this._deadline(context),
      stderrMark: mark,
      raw,
    });
  }

  /**
   * The protocol version of the sidecar the next command goes to: asked once per sidecar
   * with `hello`. An adapter that does not know the command speaks v1: ours answers with
   * an error frame; the historic one ends its process, so its command line is remembered
   * and never asked again (and a bundle without cma-bundle.json is not asked at all).
   */
  async _protocol(context, mark) {
    if (protocolCeiling() < 2) return 1;
    let sidecar;
    let spec;
    try {
      spec = this._spec();
      if (this.v1Only.has(spec.key)) return 1;
      if (spec.key !== 'explicit' && spec.args.length === 1 && !isOurBundle(spec.args[0])) return 1;
      sidecar = this._sidecarFor();
    } catch (error) {
      return 1; // the next command reports it
    }
    if (sidecar.protocol === undefined) {
      sidecar.protocol = this._call('hello', '{}', context, mark).then(
        (answer) => {
          if (answer && Array.isArray(answer.features)) sidecar.features = answer.features;
          return answer && Number.isInteger(answer.protocol) ? answer.protocol : 1;
        },
        (error) => {
          if (error && error.timedOut) throw error;
          if (!error || !error.adapterError) this.v1Only.add(spec.key);
          return 1;
        },
      );
    }
    return sidecar.protocol;
  }

  /**
   * loadAndUpdateRemoteEvent → loadNestedEvent → TaskFunction(nestedEvent, context) →
   * createNextEvent, with the published client's results and errors. Over protocol v2
   * (beginTask, completeTask) when the sidecar speaks it and no other invocation of this
   * adapter holds its one session; the answers are the same bytes either way.
   */
  async runCumulusTask(TaskFunction, cumulusMessage, context, schemas = null) {
    const mark = this.stderrMark();
    try {
      // The loggers' environment comes from the full message; over v2 the client only has
      // the message it was given, which is the same unless S3 (replace) or a cma wrapper
      // makes loadAndUpdateRemoteEvent rebuild it: those go over v1.
      const sessionFits = hasAssignedPayload(cumulusMessage) && cumulusMessage.replace === undefined
        && !isCmaMessage(cumulusMessage);
      if (sessionFits && !this.sessionOpen && (await this._protocol(context, mark)) >= 2
        && !this.sessionOpen) {
        this.sessionOpen = true;
        try {
          return await this._runSession(TaskFunction, cumulusMessage, context, schemas, mark);
        } finally {
          this.sessionOpen = false;
        }
      }
      return await this._runV1(TaskFunction, cumulusMessage, context, schemas, mark);
    } catch (error) {
      const name = error == null ? undefined : error.name;
      if (typeof name === 'string' && name.includes('WorkflowError') && !isCmaMessage(cumulusMessage)) {
        return { ...cumulusMessage, payload: null, exception: name };
      }
      throw error;
    }
  }

  async _runV1(TaskFunction, cumulusMessage, context, schemas, mark) {
    // The requests hold what the published client sends, keys in its order. The full
    // message goes back to the adapter as the JSON text it came in, not re-serialized.
    const contextJson = JSON.stringify(context);
    const schemasJson = JSON.stringify(schemas);
    const loaded = await this._call('loadAndUpdateRemoteEvent', jsonObject([
      ['event', JSON.stringify(cumulusMessage)], ['context', contextJson], ['schemas', schemasJson],
    ]), context, mark, true);
    const fullMessage = loaded.value;
    if (!hasAssignedPayload(fullMessage)) {
      throw new Error('loadAndUpdateRemoteEvent did not return a Cumulus message with a '
        + `payload key (add "payload": null to the message): ${loaded.text}`);
    }
    setCumulusEnvironment(fullMessage, context);
    const nestedEvent = await this._call('loadNestedEvent', jsonObject([
      ['event', loaded.text], ['schemas', schemasJson], ['context', contextJson],
    ]), context, mark);
    if (!isNestedEvent(nestedEvent)) {
      throw new Error('loadNestedEvent did not return {input, config}: '
        + `${JSON.stringify(nestedEvent)}`);
    }
    const taskOutput = await TaskFunction(nestedEvent, context);
    const next = await this._call('createNextEvent', jsonObject([
      ['event', loaded.text],
      ['handler_response', JSON.stringify(taskOutput)],
      ['message_config', JSON.stringify(nestedEvent.messageConfig)],
      ['schemas', schemasJson],
    ]), context, mark, true);
    return this._nextMessage(next);
  }

  async _runSession(TaskFunction, cumulusMessage, context, schemas, mark) {
    const { sidecar } = this; // the one that answered hello
    const features = (sidecar && sidecar.features) || [];
    const contextJson = JSON.stringify(context);
    const schemasJson = JSON.stringify(schemas);
    const { pieces, payloadText } = messagePieces(cumulusMessage);
    const referPayload = payloadText !== undefined && features.includes('referToPayload');
    const begun = await this._call('beginTask', jsonObject([
      ['event', pieces], ['context', contextJson], ['schemas', schemasJson],
      ['referToPayload', referPayload ? 'true' : undefined],
    ]), context, mark);
    const nestedEvent = begun && begun.nestedEvent;
    if (!isNestedEvent(nestedEvent) || typeof begun.handle !== 'string') {
      throw new Error(`beginTask did not return {handle, nestedEvent: {input, config}}: ${JSON.stringify(begun)}`);
    }
    // The task gets its own copy, decoded from the text sent, as the sidecar would send it.
    if (referPayload && begun.inputIsPayload === true) nestedEvent.input = JSON.parse(payloadText);
    setCumulusEnvironment(cumulusMessage, context); // the full message's fields, unchanged
    const handleJson = JSON.stringify(begun.handle);
    let taskOutput;
    try {
      taskOutput = await TaskFunction(nestedEvent, context);
    } catch (error) {
      this._call('cancelTask', `{"handle":${handleJson}}`, context, mark).catch(() => {});
      throw error;
    }
    const responseJson = JSON.stringify(taskOutput);
    // A plain output need not come back: the next message refers to it (protocol.md).
    const refer = features.includes('referToResponse') && isPlainJson(taskOutput);
    const next = await this._call('completeTask', jsonObject([
      ['handle', handleJson],
      ['handler_response', responseJson],
      ['message_config', JSON.stringify(nestedEvent.messageConfig)],
      ['schemas', schemasJson],
      ['referToResponse', refer ? 'true' : undefined],
    ]), context, mark, !refer);
    if (!refer) return this._nextMessage(next);
    const { nextEvent, payloadIsResponse, size } = next || {};
    if (!nextEvent || typeof nextEvent !== 'object' || typeof size !== 'number') {
      throw new Error(`completeTask did not return {nextEvent, payloadIsResponse, size}: ${JSON.stringify(next)}`);
    }
    if (payloadIsResponse === true) nextEvent.payload = taskOutput;
    if (isNestedEvent(nextEvent)) {
      throw new Error('createNextEvent returned {input, config} instead of a Cumulus message: '
        + `${JSON.stringify(nextEvent)}`);
    }
    checkOutputBytes(size);
    return nextEvent;
  }

  _nextMessage(next) {
    const nextMessage = next.value;
    if (isNestedEvent(nextMessage)) {
      throw new Error('createNextEvent returned {input, config} instead of a Cumulus message: '
        + `${JSON.stringify(nextMessage)}`);
    }
    checkOutputSize(next.text);
    return nextMessage;
  }

  /**
   * Start the sidecar now if none is running (e.g. during a Lambda's init phase, so the first
   * invocation does not wait for it). A failure to start shows at the next command.
   */
  start() {
    if (!this.current && !this.queue.length) {
      try {
        this._sidecarFor();
      } catch (error) {
        // reported by the next command, which tries again
      }
    }
    return this;
  }

  /**
   * Let the sidecar finish what it was sent, then exit. Resolves when it has exited. A later
   * command starts a new one.
   */
  close() {
    const { sidecar } = this;
    this.sidecar = null;
    if (!sidecar || sidecar.gone) return Promise.resolve();
    return new Promise((resolve) => {
      sidecar.child.once('close', () => resolve());
      sidecar.busy(true); // keep this process up until the adapter has gone
      sidecar.retire();
    });
  }

  /** Stop the sidecar at once; commands in flight fail. */
  kill() {
    const { sidecar } = this;
    this.sidecar = null;
    if (sidecar) sidecar.kill();
  }
}

module.exports = {
  MessageAdapter, DEFAULT_DEADLINE_MARGIN_MS, STEP_FUNCTIONS_LIMIT, messagePieces, outputLimit,
  protocolCeiling,
};
