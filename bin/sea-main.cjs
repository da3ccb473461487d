'use strict'
// The main script of the standalone executable (scripts/package.ts). The bundle and its V8 code
// cache ride along as assets; compiling the bundle here with that cache is what bin/run.cjs does on
// the npm path. Node's own SEA code cache (`useCodeCache`) is made by compiling the main script
// without running it, so it holds only the eagerly compiled top level: every function that runs at
// start-up (oclif's module bodies, the help) was compiled lazily at each start. This cache is made
// after a `--help` run (scripts/code-cache.ts), so it holds them too. A platform packaged on another
// machine has no cache asset (a cache fits only the V8 that made it) and compiles as Node would.
//
// Node's docs ("Single executable applications"): the main script's require() loads built-in
// modules only, and __filename is the executable; the bundle gets an ordinary require, as before.
const {createRequire} = require('node:module')
const {getRawAsset} = require('node:sea')
const {constants, Script} = require('node:vm')

const BUNDLE = 'kubectl-encryption.cjs'

let cachedData
try {
  cachedData = new Uint8Array(getRawAsset(`${BUNDLE}.cache`))
} catch {
  cachedData = undefined // no cache asset: not built on this platform
}
// The same wrapper as bin/load-cjs.cjs: the cache was made for exactly this text.
const script = new Script(
  // Latin-1: the build writes the bundle in ASCII (scripts/bundle.ts), and a copy costs less than decoding UTF-8.
  `(function (exports, require, module, __filename, __dirname) {${Buffer.from(getRawAsset(BUNDLE)).toString('latin1')}\n})`,
  {filename: __filename, cachedData, importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER},
)
const bundle = {exports: {}, filename: __filename, loaded: false}
// The bundle starts the CLI itself when it runs inside the executable (scripts/bundle.ts).
script.runInThisContext()(bundle.exports, createRequire(__filename), bundle, __filename, __dirname)
