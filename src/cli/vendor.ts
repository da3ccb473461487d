import {createRequire} from 'node:module'
import {join} from 'node:path'
import {runInThisContext} from 'node:vm'

/**
 * Loads a library that the bundle keeps out of its main file (scripts/bundle.ts: every package our
 * code imports with `await import(...)`, such as @kubernetes/client-node and etcd3). Startup never
 * reads or compiles them; the first command that needs one pays for it once.
 *
 * Only called from inside the bundle, where `__dirname` is the bundle's directory (dist/). In the
 * npm install they are files in dist/vendor/; in the standalone executable they are assets of the
 * single executable application, compiled here as CommonJS modules.
 */
export function loadVendor(file: string): unknown {
  const cached = loaded.get(file)
  if (cached) return cached.exports
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sea = createRequire(__filename)('node:sea') as {
    isSea(): boolean
    getAsset(key: string, encoding: string): string
  }
  if (!sea.isSea()) return createRequire(__filename)(join(__dirname, 'vendor', file))
  const filename = join(__dirname, 'vendor', file)
  const module = {exports: {} as unknown}
  loaded.set(file, module)
  const wrapper = runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${sea.getAsset(`vendor/${file}`, 'utf8')}\n})`,
    {filename},
  ) as (
    exports: unknown,
    require: NodeJS.Require,
    module: {exports: unknown},
    filename: string,
    dirname: string,
  ) => void
  wrapper(module.exports, createRequire(filename), module, filename, join(__dirname, 'vendor'))
  return module.exports
}

const loaded = new Map<string, {exports: unknown}>()

/** What `await import(specifier)` gives, for a library loaded with loadVendor (as Node shapes it). */
export async function importVendor(file: string): Promise<Record<string, unknown>> {
  const exports = loadVendor(file) as Record<string, unknown>
  return 'default' in exports ? exports : {...exports, default: exports}
}
