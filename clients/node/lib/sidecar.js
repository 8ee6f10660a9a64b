'use strict';

// One adapter process in stream mode with structured errors (see protocol.md): it reads
// `COMMAND\n<JSON>\n<EOC>\n` frames and answers each with `<JSON>\n<EOC>\n`, or with
// `<ERROR>\n<JSON>\n<EOC>\n` when the command failed. This module only moves frames; the
// queue, deadlines and respawning live in adapter.js.

const { spawn } = require('child_process');
const { adapterEnvironment } = require('./command');

const TERMINATOR = Buffer.from('\n<EOC>\n');
const KILL_GRACE_MS = 500;

/**
 * Splits the adapter's stdout into answers. An answer is one line of JSON (or `<ERROR>` and
 * one line of JSON) then a line `<EOC>`; a JSON line never holds a raw newline, so the first
 * "\n<EOC>\n" ends the frame. Chunks (Buffers, as the pipe gives them) may split anything,
 * the terminator and UTF-8 characters included. The bytes of a frame are joined once and
 * decoded once, when its terminator arrives: a 1.7 MB answer comes in 64 KiB chunks, and
 * decoding or concatenating text chunk by chunk would copy it several times over.
 */
class FrameReader {
  constructor() {
    this.parts = []; // Buffers of the frame being received
    this.size = 0; // their total length
  }

  /** Add a chunk; returns the frames it completes (their text, without `<EOC>`). */
  push(chunk) {
    let end = this._terminatorAcross(chunk);
    if (end === -1) {
      const inChunk = chunk.indexOf(TERMINATOR);
      if (inChunk === -1) {
        if (chunk.length) this.parts.push(chunk);
        this.size += chunk.length;
        return [];
      }
      end = this.size + inChunk;
    }
    const all = this.parts.length ? Buffer.concat([...this.parts, chunk]) : chunk;
    const frames = [];
    let start = 0;
    while (end !== -1) {
      frames.push(all.toString('utf8', start, end));
      start = end + TERMINATOR.length;
      end = all.indexOf(TERMINATOR, start);
    }
    this.parts = start < all.length ? [all.subarray(start)] : [];
    this.size = all.length - start;
    return frames;
  }

  /** Where (from the start of the parts) a terminator begins that began in the parts
   * already received and ends in `chunk`; -1 when there is none. */
  _terminatorAcross(chunk) {
    const keep = TERMINATOR.length - 1;
    if (!this.size || !chunk.length) return -1;
    const pieces = [chunk.subarray(0, keep)];
    let tailLength = 0;
    for (let i = this.parts.length - 1; i >= 0 && tailLength < keep; i -= 1) {
      const part = this.parts[i];
      const piece = part.subarray(Math.max(0, part.length - (keep - tailLength)));
      pieces.unshift(piece);
      tailLength += piece.length;
    }
    const at = Buffer.concat(pieces).indexOf(TERMINATOR);
    return at === -1 || at >= tailLength ? -1 : this.size - tailLength + at;
  }
}

// Every sidecar still running, so none outlives this process.
const running = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const sidecar of running) sidecar.kill();
  });
}

class Sidecar {
  /**
   * @param {{file: string, args: string[], key: string}} spec how to start the adapter
   * @param {{answer: Function, stderr: Function, gone: Function}} events callbacks:
   *   answer(sidecar, frameText), stderr(sidecar, text), gone(sidecar, {code, signal, error})
   */
  constructor(spec, events) {
    this.spec = spec;
    this.events = events;
    this.gone = false;
    this.frames = new FrameReader();
    this.argv = [spec.file, ...spec.args, 'stream', '--structured-errors'];
    installExitHook();
    const child = spawn(this.argv[0], this.argv.slice(1), {
      env: adapterEnvironment(),
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    running.add(this);
    child.on('error', (error) => {
      // Only a failed spawn leaves the child without a pid; a failed kill is not fatal.
      if (child.pid === undefined) this._gone({ error });
    });
    child.on('close', (code, signal) => this._gone({ code, signal }));
    child.stdin.on('error', () => {}); // EPIPE when the adapter died: reported by 'close'.
    child.stderr.setEncoding('utf8'); // stdout stays bytes: FrameReader decodes whole frames
    child.stdout.on('data', (chunk) => this._read(chunk));
    child.stderr.on('data', (text) => this.events.stderr(this, text));
    this.busy(false);
  }

  /** Keep the event loop alive only while a command waits for its answer. */
  busy(waiting) {
    if (this.gone) return;
    const method = waiting ? 'ref' : 'unref';
    this.child[method]();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      if (stream && typeof stream[method] === 'function') stream[method]();
    }
  }

  write(text) {
    if (!this.gone) this.child.stdin.write(text);
  }

  /** Write one request frame; `body` is JSON text or an array of its pieces (written as
   * they are, in one writev, so a large message is never copied into a joined string). */
  writeFrame(command, body) {
    if (this.gone) return;
    const { stdin } = this.child;
    stdin.cork();
    stdin.write(`${command}\n`);
    for (const piece of Array.isArray(body) ? body : [body]) stdin.write(piece);
    stdin.write('\n<EOC>\n');
    stdin.uncork();
  }

  _read(chunk) {
    for (const frame of this.frames.push(chunk)) this.events.answer(this, frame);
  }

  _gone(info) {
    if (this.gone) return;
    this.gone = true;
    running.delete(this);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.events.gone(this, info);
  }

  /** Ask the adapter to finish what it has been sent, then exit. */
  retire() {
    if (this.gone) return;
    try {
      this.child.stdin.end('<EXIT>\n');
    } catch (error) {
      this.kill();
    }
  }

  /** Stop the adapter now: SIGTERM, then SIGKILL if it is still there shortly after. */
  kill() {
    const { child } = this;
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      child.stdin.destroy();
      child.kill('SIGTERM');
    } catch (error) {
      // already gone
    }
    if (!this.killTimer) {
      this.killTimer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, KILL_GRACE_MS);
      this.killTimer.unref();
    }
  }
}

module.exports = { FrameReader, Sidecar, running };
