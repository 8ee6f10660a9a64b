#!/usr/bin/env node
// Example Node task under the --exec task protocol (no client library):
// the nested event arrives as JSON on stdin; the result is printed as JSON on stdout.
//   cumulus-message-adapter run --exec "node examples/tasks/hello.js" examples/tasks/message.json
let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  const { input, config } = JSON.parse(text);
  const granules = (input && input.granules) || [];
  if (granules.length === 0) {
    // A last stderr line {"name", "message"} names the error; exit non-zero.
    console.error(JSON.stringify({ name: 'NothingToDoWorkflowError', message: 'no granules' }));
    process.exit(1);
  }
  console.error(`greeting ${config.name}`); // other stderr lines are logs
  console.log(JSON.stringify({ greeting: `hello ${config.name}`, granule_count: granules.length }));
});
