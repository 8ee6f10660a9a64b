'use strict';

// A stand-in adapter that speaks the stream protocol with trivial message rules and can
// misbehave on demand. It speaks protocol v1 only: other commands get a ProtocolError frame. Options come before the `stream --structured-errors` the client adds:
//   hang-on=CMD             never answer CMD
//   hang-once=CMD:FILE      never answer CMD if FILE does not exist yet (and create it)
//   hang-on-flag=CMD        never answer CMD when the event's payload has `hang: true`
//   die-on=CMD              write a line on stderr and exit 3 when CMD arrives
//   warn-then-fail=CMD      write a warning on stderr, then answer CMD with an error frame
//   hold-until=FILE         answer no command (hello aside) until FILE exists
//   ignore-term             ignore SIGTERM
//   pid-file=FILE           append this process id to FILE

const fs = require('fs');
const readline = require('readline');

const options = {};
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf('=');
  if (at > 0) options[arg.slice(0, at)] = arg.slice(at + 1);
  else options[arg] = true;
}
if (options['ignore-term']) process.on('SIGTERM', () => {});
if (options['pid-file']) fs.appendFileSync(options['pid-file'], `${process.pid}\n`);

function answer(command, request) {
  const { event } = request;
  if (command === 'loadAndUpdateRemoteEvent') return event;
  if (command === 'loadNestedEvent') return { input: event.payload ?? null, config: {} };
  if (command === 'createNextEvent') return { ...event, payload: request.handler_response ?? null };
  throw new Error(`unknown command ${command}`);
}

function shouldHang(command, request) {
  if (options['hang-on'] === command) return true;
  if (options['hang-on-flag'] === command) {
    const payload = request.event && request.event.payload;
    if (payload && payload.hang === true) return true;
  }
  if (typeof options['hang-once'] === 'string') {
    const [target, file] = options['hang-once'].split(':');
    if (target === command && !fs.existsSync(file)) {
      fs.writeFileSync(file, 'hung');
      return true;
    }
  }
  return false;
}

let command = null;
let body = [];
let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const text = line.trim();
  if (command === null) {
    if (!text) return;
    if (text === '<EXIT>') process.exit(0);
    command = text;
    return;
  }
  if (text !== '<EOC>') {
    body.push(line);
    return;
  }
  const current = command;
  const request = JSON.parse(body.join('\n'));
  command = null;
  body = [];
  queue = queue.then(async () => {
    if (options['hold-until'] && current !== 'hello') {
      while (!fs.existsSync(options['hold-until'])) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    if (shouldHang(current, request)) {
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    }
    if (options['die-on'] === current) {
      process.stderr.write(`fake adapter: dying on ${current}\n`, () => process.exit(3));
      await new Promise(() => {});
    }
    if (options['warn-then-fail'] === current) {
      process.stderr.write('fake adapter: a warning\n');
      const frame = { name: 'MessageError', message: `${current} failed`, command: current };
      process.stdout.write(`<ERROR>\n${JSON.stringify(frame)}\n<EOC>\n`);
      return;
    }
    if (!['loadAndUpdateRemoteEvent', 'loadNestedEvent', 'createNextEvent'].includes(current)) {
      // as a v1 sidecar with structured errors answers `hello` and other v2 commands
      const frame = { name: 'ProtocolError', message: `unknown command '${current}'`, command: current };
      process.stdout.write(`<ERROR>\n${JSON.stringify(frame)}\n<EOC>\n`);
      return;
    }
    process.stdout.write(`${JSON.stringify(answer(current, request))}\n<EOC>\n`);
  });
});
lines.on('close', () => queue.then(() => process.exit(0)));
