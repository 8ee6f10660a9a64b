'use strict';

// Whether a task's output is plain JSON: what JSON.parse would give back for its
// JSON.stringify. Only such an output may be handed back inside the next message as the
// task returned it (protocol v2's referToResponse): the message then holds the same
// values as the one the adapter would have written out.

const MAX_DEPTH = 1000;

/**
 * True for null, booleans, strings, finite numbers other than -0, arrays without holes
 * and objects whose prototype is Object.prototype or null (without toJSON), all the way
 * down; false for anything a JSON round trip would change or drop (undefined, functions,
 * Dates, Maps, class instances, NaN, sparse arrays...) and beyond MAX_DEPTH levels. Only
 * own enumerable string keys count, as for JSON.stringify.
 */
function isPlainJson(value, depth = 0) {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let index = 0; index < value.length; index += 1) {
      if (!(index in value) || !isPlainJson(value[index], depth + 1)) return false;
    }
    return true;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  if (typeof value.toJSON === 'function') return false;
  const keys = Object.keys(value);
  for (let index = 0; index < keys.length; index += 1) {
    if (!isPlainJson(value[keys[index]], depth + 1)) return false;
  }
  return true;
}

module.exports = { isPlainJson, MAX_DEPTH };
