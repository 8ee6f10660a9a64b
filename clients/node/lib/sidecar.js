'use strict';

// One adapter process in stream mode with structured errors (see protocol.md): it reads
// `COMMAND\n<JSON>\n<EOC>\n` frames and answers each with `<JSON>\n<EOC>\n`, or with
// `<ERROR>\n<JSON>\n<EOC>\n` when the command failed. This module only moves frames; the
// queue, deadlines and respawning live in adapter.js.

const { spawn } = require('child_process');
const { adapterEnvironment } = require('./command');

const TERMINATOR = Buffer.from('\n<EOC>\n');
const KILL_GRACE_MS = 500;

const KEPT_BUFFER_BYTES = 32 * 1024 * 1024; // largest buffer kept from frame to frame
const FIRST_BUFFER_BYTES = 64 * 1024;
const LARGE_PIECE = 64 * 1024; // characters: a request with one is written from a kept buffer

/** `buffer` when it holds `needed` bytes, else a larger one holding its first `used`. */
function withRoom(buffer, used, needed) {
  if (buffer.length >= needed) return buffer;
  const grown = Buffer.allocUnsafeSlow(Math.max(needed, 2 * buffer.length));
  buffer.copy(grown, 0, 0, used);
  return grown;
}

/**
 * Splits the adapter's stdout into answers. An answer is one line of JSON (or `<ERROR>` and
 * one line of JSON) then a line `<EOC>`; a JSON line never holds a raw newline, so the first
 * "\n<EOC>\n" ends the frame. Chunks (Buffers, as the pipe gives them) may split anything,
 * the terminator and UTF-8 characters included. They are copied into one buffer kept from
 * frame to frame, and a frame's bytes are decoded once, when its terminator arrives: a
 * 1.7 MB answer comes in 64 KiB chunks, and a buffer made afresh for each answer costs a
 * page fault every 4 KiB.
 */
class FrameReader {
  constructor() {
    this.buffer = Buffer.allocUnsafeSlow(FIRST_BUFFER_BYTES);
    this.size = 0; // bytes of the frames being received, from the buffer's start
  }

  /** Add a chunk; returns the frames it completes (their text, without `<EOC>`). */
  push(chunk) {
    const searchFrom = Math.max(0, this.size - (TERMINATOR.length - 1));
    this.buffer = withRoom(this.buffer, this.size, this.size + chunk.length);
    chunk.copy(this.buffer, this.size);
    this.size += chunk.length;
    const received = this.buffer.subarray(0, this.size); // not the stale bytes beyond
    let end = received.indexOf(TERMINATOR, searchFrom);
    if (end === -1) return [];
    const frames = [];
    let start = 0;
    while (end !== -1) {
      frames.push(received.toString('utf8', start, end));
      start = end + TERMINATOR.length;
      end = received.indexOf(TERMINATOR, start);
    }
    const left = this.size - start;
    if (left === 0 && this.buffer.length > KEPT_BUFFER_BYTES) {
      this.buffer = Buffer.allocUnsafeSlow(FIRST_BUFFER_BYTES); // after a rare giant
    } else if (left) {
      this.buffer.copy(this.buffer, 0, start, this.size);
    }
    this.size = left;
    return frames;
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

  /** Write one request frame; `body` is JSON text or an array of its pieces (never
   * joined into one string, so a large message is not copied an extra time). A request
   * with a large piece is written as UTF-8 into a buffer kept for the next one: the
   * adapter answers only once it has read the whole request, so by the next request the
   * pipe is done with it. */
  writeFrame(command, body) {
    if (this.gone) return;
    const pieces = [`${command}\n`, ...(Array.isArray(body) ? body : [body]), '\n<EOC>\n'];
    const { stdin } = this.child;
    if (!pieces.some((piece) => piece.length >= LARGE_PIECE)) {
      stdin.cork();
      for (const piece of pieces) stdin.write(piece);
      stdin.uncork();
      return;
    }
    let buffer = this.requestBuffer || Buffer.allocUnsafeSlow(FIRST_BUFFER_BYTES);
    let used = 0;
    for (const piece of pieces) {
      for (;;) {
        // Buffer#write writes whole characters while they fit: it wrote all of `piece` when
        // even 3 bytes a UTF-16 unit fitted, or when there is room left for one more.
        const room = buffer.length - used;
        const written = buffer.write(piece, used, 'utf8');
        if (piece.length * 3 <= room || room - written >= 4) {
          used += written;
          break;
        }
        buffer = withRoom(buffer, used, used + piece.length * 3); // measuring it costs more
      }
    }
    stdin.write(buffer.subarray(0, used));
    if (buffer.length > KEPT_BUFFER_BYTES) buffer = null; // let a rare giant go
    this.requestBuffer = buffer;
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
