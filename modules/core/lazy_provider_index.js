'use strict';
// Preloaded into jsii's Node kernel (`node --require`, set by modules/core/jsii_node.py).
//
// @cdktf/provider-aws's lib/index.js is 2,135 lines of `exports.x = require("./x");`:
// loading the assembly compiles ~250 MB of JavaScript for every resource type
// (~4 s on these machines) although a synth uses a few dozen. This hook rewrites
// exactly those lines, as the file is compiled, into getters that require the
// submodule on first access -- the pattern aws-cdk-lib ships in its own index.
// The kernel finds a type by walking `closure[namespace][Type]`, so the getter
// runs when a resource of that namespace is first created.
//
// Nothing else changes: other files, other packages and any line of a different
// shape are compiled as they are. tests/test_main.py proves the synthesized
// output is byte-identical to a run without this hook.
const Module = require('module');
const fs = require('fs');
const path = require('path');

const PACKAGE = '@cdktf/provider-aws';
const EAGER_SUBMODULE = /^exports\.([A-Za-z_$][\w$]*) = require\("(\.\/[\w.-]+)"\);$/gm;

function isProviderIndex(filename) {
  if (path.basename(filename) !== 'index.js' || path.basename(path.dirname(filename)) !== 'lib') {
    return false;
  }
  try {
    const manifest = path.join(path.dirname(filename), '..', 'package.json');
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).name === PACKAGE;
  } catch {
    return false;
  }
}

// The getter replaces itself with the loaded submodule, so later lookups are
// plain property reads.
function lazySubmodules(content) {
  return content.replace(EAGER_SUBMODULE, (_line, name, relative) => {
    const key = JSON.stringify(name);
    return `Object.defineProperty(exports, ${key}, { enumerable: true, configurable: true, get() { ` +
      `const value = require(${JSON.stringify(relative)}); ` +
      `Object.defineProperty(exports, ${key}, { value, enumerable: true, configurable: true, writable: true }); ` +
      'return value; } });';
  });
}

const compile = Module.prototype._compile;
Module.prototype._compile = function compileWithLazyProviderIndex(content, filename) {
  if (isProviderIndex(filename)) {
    content = lazySubmodules(content);
  }
  return compile.call(this, content, filename);
};

module.exports = { lazySubmodules, isProviderIndex };

// The kernel's other hook: cdktf's token creation stacks, formatted only when read.
require('./lazy_creation_stacks.js');
