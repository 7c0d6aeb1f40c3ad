'use strict';
// Preloaded into jsii's Node kernel with lazy_provider_index.js (which requires this file).
//
// cdktf records where every token was made (`creationStack` of Intrinsic, Lazy, Reference,
// ...) by capturing a full stack trace and formatting it into lines at once: ~0.35 s of a
// synth here, for text that only an error message reads. This hook replaces cdktf's
// `captureStackTrace` (lib/tokens/private/stack-trace.js) with one that captures the same
// frames at the same moment and formats them when the array is first read: same lines,
// same error messages, no formatting on the way to a successful synth.
const Module = require('module');
const fs = require('fs');
const path = require('path');

const PACKAGE = 'cdktf';
const FILE = path.join('lib', 'tokens', 'private', 'stack-trace.js');

function isCdktfStackTrace(filename) {
  if (!filename.endsWith(path.sep + FILE)) {
    return false;
  }
  try {
    const root = filename.slice(0, -FILE.length);
    return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name === PACKAGE;
  } catch {
    return false;
  }
}

// An array whose contents `materialize()` computes on first use.
function lazyArray(materialize) {
  let lines;
  const real = () => (lines === undefined ? (lines = materialize()) : lines);
  return new Proxy([], {
    get(_target, key) {
      const array = real();
      const value = Reflect.get(array, key, array);
      return typeof value === 'function' ? value.bind(array) : value;
    },
    set: (_target, key, value) => Reflect.set(real(), key, value),
    has: (_target, key) => Reflect.has(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_target, key) => Reflect.getOwnPropertyDescriptor(real(), key),
    defineProperty: (_target, key, descriptor) => Reflect.defineProperty(real(), key, descriptor),
    deleteProperty: (_target, key) => Reflect.deleteProperty(real(), key),
  });
}

// cdktf's function, with the formatting moved into lazyArray.
function captureStackTrace(below) {
  below = below || captureStackTrace;
  const holder = { stack: '' };
  const previousLimit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = Number.MAX_SAFE_INTEGER;
    Error.captureStackTrace(holder, below);
  } finally {
    Error.stackTraceLimit = previousLimit;
  }
  return lazyArray(() => (holder.stack
    ? holder.stack.split('\n').slice(1).map((s) => s.replace(/^\s*at\s+/, ''))
    : []));
}

const compile = Module.prototype._compile;
Module.prototype._compile = function compileWithLazyCreationStacks(content, filename) {
  const result = compile.call(this, content, filename);
  if (isCdktfStackTrace(filename) && typeof this.exports.captureStackTrace === 'function') {
    // Callers read it as `(0, stack_trace_1.captureStackTrace)()` each time: replacing the export suffices.
    this.exports.captureStackTrace = captureStackTrace;
  }
  return result;
};

module.exports = { captureStackTrace, isCdktfStackTrace, lazyArray };
