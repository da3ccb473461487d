import {readFileSync, statSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'
import {constants, runInThisContext, Script} from 'node:vm'

/**
 * Loads a library that the bundle keeps out of its main file (scripts/bundle.ts: every package our
 * code imports with `await import(...)`, such as @kubernetes/client-node and etcd3). Startup never
 * reads or compiles them; the first command that needs one pays for it once.
 *
 * Only called from inside the bundle, where `__dirname` is the bundle's directory (dist/). In the
 * npm install they are files in dist/vendor/; in the standalone executable they are assets of the
 * single executable application, compiled here as CommonJS modules. In the npm install, a library
 * with a code cache from the build (`<file>.cache`, scripts/code-cache.ts; client-node takes a third
 * of a second to compile without one) is compiled here with it, as bin/load-cjs.cjs does for the bundle.
 */
export function loadVendor(file: string): unknown {
  const cached = loaded.get(file)
  if (cached) return cached.exports
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sea = createRequire(__filename)('node:sea') as {isSea(): boolean; getAsset(key: string, encoding: string): string}
  const filename = join(__dirname, 'vendor', file)
  let wrapper: Wrapper
  if (sea.isSea()) {
    wrapper = runInThisContext(wrap(sea.getAsset(`vendor/${file}`, 'utf8')), {filename}) as Wrapper
  } else {
    const cachedData = codeCache(filename)
    if (!cachedData) return createRequire(__filename)(filename)
    const script = new Script(wrap(readFileSync(filename, 'utf8')), {filename, cachedData, importModuleDynamically: constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER})
    wrapper = script.runInThisContext() as Wrapper
  }
  const module = {exports: {} as unknown}
  loaded.set(file, module)
  wrapper(module.exports, createRequire(filename), module, filename, join(__dirname, 'vendor'))
  return module.exports
}

type Wrapper = (exports: unknown, require: NodeJS.Require, module: {exports: unknown}, filename: string, dirname: string) => void

/** The CommonJS wrapper, as bin/load-cjs.cjs writes it (the code cache is made for this text). */
function wrap(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`
}

/** `<filename>.cache` when it is at least as new as the file (V8 checks only the source length). */
function codeCache(filename: string): Buffer | undefined {
  try {
    const cache = `${filename}.cache`
    return statSync(cache).mtimeMs < statSync(filename).mtimeMs ? undefined : readFileSync(cache)
  } catch {
    return undefined
  }
}

const loaded = new Map<string, {exports: unknown}>()

/** What `await import(specifier)` gives, for a library loaded with loadVendor (as Node shapes it). */
export async function importVendor(file: string): Promise<Record<string, unknown>> {
  const exports = loadVendor(file) as Record<string, unknown>
  return 'default' in exports ? exports : {...exports, default: exports}
}
