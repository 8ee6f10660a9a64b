'use strict';

// Where the adapter is and how to start it, decided as the published client decides it:
// CUMULUS_MESSAGE_ADAPTER_DIR (default ./cumulus-message-adapter) run as `python DIR stream`
// when an executable `python` is on PATH and USE_CMA_BINARY is not "true", otherwise the
// bundled executable `DIR/cma_bin/cma stream`. (A bundle's __main__.py runs its cma_bin/cma
// itself when that `python` is not the version it was built for.)

const fs = require('fs');
const path = require('path');

const DEFAULT_ADAPTER_DIR = './cumulus-message-adapter';

function isExecutableFile(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return !fs.statSync(file).isDirectory();
  } catch (error) {
    return false;
  }
}

/** The first executable `name` in the directories of PATH (as written there), or undefined. */
function findOnPath(name, searchPath = process.env.PATH) {
  const extensions = process.platform === 'win32'
    ? ['', ...(process.env.PATHEXT || '.EXE').split(';').filter(Boolean)]
    : [''];
  for (const dir of (searchPath || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const extension of extensions) {
      const candidate = path.join(dir, name + extension);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/**
 * `{file, args}` that start the adapter found through the environment, without the
 * command (`stream`, ...) that follows them.
 */
function adapterFromEnvironment(env = process.env) {
  const adapterDir = env.CUMULUS_MESSAGE_ADAPTER_DIR ?? DEFAULT_ADAPTER_DIR;
  const python = findOnPath('python', env.PATH);
  if (python && env.USE_CMA_BINARY !== 'true') {
    return { file: python, args: [adapterDir] };
  }
  return { file: `${adapterDir}/cma_bin/cma`, args: [] };
}

/** The Python version a bundle directory was built for (its cma-bundle.json), if known. */
function bundlePython(adapterDir) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(adapterDir, 'cma-bundle.json'), 'utf8'));
    return typeof manifest.python === 'string' ? manifest.python : undefined;
  } catch (error) {
    return undefined;
  }
}

/**
 * Why the adapter that the environment points at cannot be started, or undefined when it
 * can: checked before spawning, so the error names the variable to set rather than being
 * Python's "can't open file".
 */
function adapterProblem(env = process.env) {
  const given = env.CUMULUS_MESSAGE_ADAPTER_DIR;
  const adapterDir = given ?? DEFAULT_ADAPTER_DIR;
  const where = given === undefined
    ? `CUMULUS_MESSAGE_ADAPTER_DIR is not set, and the default ${DEFAULT_ADAPTER_DIR} `
      + `(in ${process.cwd()})`
    : `CUMULUS_MESSAGE_ADAPTER_DIR=${given}`;
  let isDir = false;
  try {
    isDir = fs.statSync(adapterDir).isDirectory();
  } catch (error) {
    // reported below
  }
  if (!isDir) {
    return `${where} is not a directory: set CUMULUS_MESSAGE_ADAPTER_DIR to the message `
      + 'adapter\'s directory (/opt/ for the Lambda layer; `cumulus-message-adapter bundle` writes one)';
  }
  const { file, args } = adapterFromEnvironment(env);
  const built = bundlePython(adapterDir);
  const aPython = built ? `a python ${built} (the bundle's, per cma-bundle.json)` : 'a python';
  if (args.length === 0 && !isExecutableFile(file)) {
    const why = env.USE_CMA_BINARY === 'true'
      ? 'USE_CMA_BINARY=true asks for it'
      : 'no `python` is on PATH';
    return `${where} holds no executable cma_bin/cma, and ${why}: build the bundle with its `
      + `executable (\`cumulus-message-adapter bundle\` without --no-exe), or put ${aPython} on `
      + `PATH${env.USE_CMA_BINARY === 'true' ? ' and unset USE_CMA_BINARY' : ''}`;
  }
  if (args.length > 0 && !fs.existsSync(path.join(adapterDir, '__main__.py'))) {
    return `${where} holds no __main__.py, so \`python ${adapterDir}\` cannot run it: point `
      + 'CUMULUS_MESSAGE_ADAPTER_DIR at a message adapter bundle'
      + (isExecutableFile(path.join(adapterDir, 'cma_bin', 'cma'))
        ? ', or set USE_CMA_BINARY=true to run its cma_bin/cma' : '');
  }
  return undefined;
}

/** `{file, args}` from an explicit command: an argv array or a single executable path. */
function adapterFromCommand(command) {
  const argv = typeof command === 'string' ? [command] : command;
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((part) => typeof part !== 'string')) {
    throw new TypeError(
      'command must be a non-empty array of strings, the adapter executable and its '
      + 'leading arguments (e.g. ["python3", "/opt/cumulus-message-adapter"]); '
      + '"stream" is appended by the client',
    );
  }
  return { file: argv[0], args: argv.slice(1) };
}

/** The environment the adapter runs with (the published client sets PYTHONUTF8=1 too). */
function adapterEnvironment() {
  return { ...process.env, PYTHONUTF8: '1' };
}

/**
 * The same answer as the published client's generateCMASpawnArguments:
 * `[file, [...args, command], {env}]` for `child_process.spawn`.
 */
async function generateCMASpawnArguments(command) {
  const { file, args } = adapterFromEnvironment();
  return [file, [...args, command], { env: adapterEnvironment() }];
}

module.exports = {
  DEFAULT_ADAPTER_DIR,
  adapterEnvironment,
  adapterFromCommand,
  adapterFromEnvironment,
  adapterProblem,
  bundlePython,
  findOnPath,
  generateCMASpawnArguments,
};
