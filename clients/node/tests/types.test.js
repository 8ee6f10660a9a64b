'use strict';

// index.d.ts type-checks, and accepts (and refuses) what it should, under strict TypeScript.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { execFileSync } = require('child_process');

const { CLIENT_DIR } = require('./helpers');

test('the TypeScript declarations compile a typical handler under --strict', () => {
  const tsc = path.join(CLIENT_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8' });
  } catch (error) {
    assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
  }
});

test('the declarations name every export of index.js', () => {
  const fs = require('fs');
  const declarations = fs.readFileSync(path.join(CLIENT_DIR, 'index.d.ts'), 'utf8');
  for (const name of Object.keys(require('..'))) {
    assert.match(declarations, new RegExp(`export (declare )?(function|class|const) ${name}\\b`), name);
  }
});

test('the declarations export every type the published client exports', () => {
  const fs = require('fs');
  const published = path.join(CLIENT_DIR, 'node_modules', '@cumulus', 'cumulus-message-adapter-js', 'dist', 'types.d.ts');
  const ours = fs.readFileSync(path.join(CLIENT_DIR, 'index.d.ts'), 'utf8');
  const names = [...fs.readFileSync(published, 'utf8').matchAll(/export (?:declare )?(?:interface|type|class) (\w+)/g)].map((m) => m[1]);
  assert.ok(names.includes('CumulusMessageWithAssignedPayload'), names.join(', '));
  for (const name of names) {
    assert.match(ours, new RegExp(`export (declare )?(interface|type|class) ${name}\\b`), name);
  }
});
