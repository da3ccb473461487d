'use strict'
// Loads a CommonJS file the way require() would, but compiled with the V8 code cache that the build
// saved next to it (`<file>.cache`, scripts/code-cache.ts), when there is one: compiling the
// bundle is the largest single cost of starting the CLI, and a cache V8 accepts skips it (and the
// lazy compilation of every function the cached run had compiled). V8 rejects a cache made by
// another Node/V8 version or with other flags; V8 itself checks only the source's length, so a
// cache older than its file (rebuilt without the cache step) is not used.
const {readFileSync, statSync} = require('node:fs')
const {createRequire} = require('node:module')
const {dirname} = require('node:path')
const {constants, Script} = require('node:vm')

/** The CommonJS wrapper; the cache is made for exactly this text around the file. */
function wrapCommonJs(source) {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`
}

/** The cache for `filename` when it is at least as new as the file, else undefined. */
function cacheFor(filename) {
  try {
    const cache = `${filename}.cache`
    if (statSync(cache).mtimeMs < statSync(filename).mtimeMs) return undefined
    return readFileSync(cache)
  } catch {
    return undefined
  }
}

/** Compiles and runs `filename` as a CommonJS module; returns its exports and the compiled script. */
function loadCommonJs(filename, {useCache = true} = {}) {
  // Latin-1: the build writes the bundle in ASCII (scripts/bundle.ts), and a copy costs less than decoding UTF-8.
  const script = new Script(wrapCommonJs(readFileSync(filename, 'latin1')), {
    filename,
    cachedData: useCache ? cacheFor(filename) : undefined,
    // import() inside the file resolves as it would in a file that require() loaded
    importModuleDynamically: constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  const module = {exports: {}, filename, loaded: false}
  script.runInThisContext()(module.exports, createRequire(filename), module, filename, dirname(filename))
  module.loaded = true
  return {exports: module.exports, script}
}

exports.wrapCommonJs = wrapCommonJs
exports.loadCommonJs = loadCommonJs
