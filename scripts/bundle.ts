// Bundles the CLI into one CommonJS file, dist/kubectl-encryption.cjs, used by bin/run.js (the npm
// install path) and embedded in the standalone executable (scripts/package.ts).
//
// Runs after `tsc` and scripts/manifest.js in `npm run build`. Commands are not registered by hand:
// the command index is made here from oclif.manifest.json, which oclif made by scanning
// dist/commands, so a new file in src/commands is in the bundle on the next build.
//
// One file instead of hundreds: node resolves and reads each module file at startup, which is
// most of a CLI's start time. Command modules and heavy libraries stay lazy inside the bundle:
// esbuild turns `await import(...)` into a function that evaluates the module on first call.
import {build, type BuildOptions, type Plugin as EsbuildPlugin} from 'esbuild'
import {readFileSync, writeFileSync} from 'node:fs'
import {createRequire, isBuiltin} from 'node:module'
import {dirname, join, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

export const BUNDLE = 'dist/kubectl-encryption.cjs'
export const VENDOR_DIR = 'dist/vendor'

const root = fileURLToPath(new URL('..', import.meta.url))

interface ManifestCommand {
  id: string
  relativePath?: string[]
}

function entrySource(): string {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {oclif: {helpClass?: string}}
  const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, ManifestCommand>
  }
  const commands = Object.values(manifest.commands).map((command) => {
    if (!command.relativePath) throw new Error(`oclif.manifest.json: command ${command.id} has no relativePath`)
    const path = './' + command.relativePath.join('/')
    return `  ${JSON.stringify(command.id)}: () => import(${JSON.stringify(path)}),`
  })
  if (commands.length === 0) throw new Error('oclif.manifest.json lists no commands: run the build from the start')
  const modules = [pjson.oclif.helpClass]
    .filter((path): path is string => Boolean(path))
    .map((path) => `  ${JSON.stringify(path)}: () => import(${JSON.stringify(path)}),`)
  return [
    `import {isSea} from 'node:sea'`,
    `import {dirname} from 'node:path'`,
    `import {runBundled} from './dist/cli/run-bundled.js'`,
    `import pjson from './package.json'`,
    `import manifest from './oclif.manifest.json'`,
    `const commands = {`,
    ...commands,
    `}`,
    `const modules = {`,
    ...modules,
    `}`,
    `/** Runs the CLI; root is the package root (npm) or the executable's directory. */`,
    `export function main(root, argv) {`,
    `  return runBundled(root, {pjson, manifest, commands, modules}, argv)`,
    `}`,
    `// Inside the standalone executable this file is the main script.`,
    `if (isSea()) main(dirname(process.execPath))`,
  ].join('\n')
}

/**
 * etcd3 reads its .proto files from disk next to its own code when it is first imported; in a
 * bundle they are not there. Parse them now and put the definitions into the bundle.
 */
function etcdProtos(): EsbuildPlugin {
  return {
    name: 'etcd3-protos',
    setup(b) {
      b.onLoad({filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/}, (args) => {
        const source = readFileSync(args.path, 'utf8')
        const call = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {'
        if (!source.includes(call))
          throw new Error(`${args.path}: etcd3 no longer loads its protos as expected; update scripts/bundle.ts`)
        const requireHere = createRequire(args.path)
        const util = requireHere(join(dirname(requireHere.resolve('@grpc/proto-loader')), 'util.js')) as {
          loadProtosWithOptionsSync(file: string, options: object): {toJSON(): object}
        }
        const json = util
          .loadProtosWithOptionsSync(join(dirname(args.path), '../proto/rpc.proto'), {keepCase: true})
          .toJSON()
        return {contents: source.replace(call, `(0, proto_loader_1.fromJSON)(${JSON.stringify(json)}, {`), loader: 'js'}
      })
    },
  }
}

/**
 * oclif checks at load that the running node satisfies the `engines` of the package.json next to
 * it, through semver (about 40 regular expressions built, ~1.5 ms). In the bundle that is our
 * package.json on the npm path, a check worth keeping; in the standalone executable there is no
 * package.json and the node is the pinned one, so there it only costs: skipped there.
 */
function noEngineCheckInExecutable(): EsbuildPlugin {
  return {
    name: 'no-engine-check-in-executable',
    setup(b) {
      b.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]index\.js$/}, (args) => {
        const source = readFileSync(args.path, 'utf8')
        const call = '\ncheckNodeVersion();\n'
        if (!source.includes(call))
          throw new Error(`${args.path}: oclif no longer checks the node version as expected; update scripts/bundle.ts`)
        return {
          contents: source.replace(call, "\nif (!require('node:sea').isSea()) checkNodeVersion();\n"),
          loader: 'js',
        }
      })
    },
  }
}

/**
 * oclif loads built-in modules at start-up that `--help` never uses: perf_hooks (for its timing marks
 * when debugging) and readline (for flags read from stdin), with the internal modules behind them,
 * each compiled at every start (13 of the 56 built-ins `--help` loaded). oclif reaches them only
 * through property accesses (`node_perf_hooks_1.performance`), so each becomes an object that
 * requires the module on its first property access. (child_process would gain nothing: wsl-utils,
 * which oclif asks at every start whether it runs under WSL, calls into it as it loads.)
 */
const LAZY_BUILTINS: Record<string, string> = {
  'performance.js': 'node:perf_hooks',
  'parser/parse.js': 'node:readline',
}

function lazyOclifBuiltins(): EsbuildPlugin {
  return {
    name: 'lazy-oclif-builtins',
    setup(b) {
      b.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/].*\.js$/}, (args) => {
        const file = Object.keys(LAZY_BUILTINS).find((end) => args.path.replaceAll('\\', '/').endsWith(`/lib/${end}`))
        if (!file) return undefined
        const id = LAZY_BUILTINS[file]!
        const source = readFileSync(args.path, 'utf8')
        const call = `require(${JSON.stringify(id)})`
        if (source.split(call).length !== 2)
          throw new Error(`${args.path}: oclif no longer requires ${id} once as expected; update scripts/bundle.ts`)
        const lazy = `new Proxy({}, {get: (_, key) => require(${JSON.stringify(id)})[key]})`
        return {contents: source.replace(call, lazy), loader: 'js'}
      })
    },
  }
}

/** The file name a library gets in dist/vendor/ (and as an asset in the standalone executable). */
export function vendorFile(specifier: string): string {
  return specifier.replace(/^@/, '').replaceAll('/', '__') + '.cjs'
}

/**
 * Per lazy library, the exports our code takes from it: the names in every
 * `const {A, B: b} = await import('x')`, or 'all' once one import takes the whole module.
 */
export type LazyImports = Map<string, Set<string> | 'all'>

/** Records what `source` takes from each bare specifier it imports with `await import(...)`. */
export function recordLazyImports(source: string, lazy: LazyImports): void {
  const call = /(?:\{([^{}]*)\}\s*=\s*)?await\s+import\(\s*(['"])([^'"./][^'"]*)\2\s*\)/g
  for (const [, names, , specifier] of source.matchAll(call)) {
    if (isBuiltin(specifier!)) continue
    const seen = lazy.get(specifier!)
    if (names === undefined || seen === 'all') {
      lazy.set(specifier!, 'all')
      continue
    }
    const taken = seen ?? new Set<string>()
    for (const part of names.split(',')) {
      const name = part.split(':')[0]!.trim()
      if (name.startsWith('...')) return void lazy.set(specifier!, 'all')
      if (name) taken.add(name)
    }
    lazy.set(specifier!, taken)
  }
}

/**
 * A lazy library's file: only the exports our code takes, so that esbuild leaves out the rest
 * (client-node's KubeConfig alone is 1.7 MiB of its 15 MiB, and compiling the rest cost every
 * command that reads a kubeconfig ~100 ms of CPU); the whole module when an import takes it all.
 */
export function vendorEntry(specifier: string, taken: Set<string> | 'all'): string {
  const module = JSON.stringify(specifier)
  if (taken === 'all') return `module.exports = require(${module})`
  return `export {${[...taken].sort().join(', ')}} from ${module}`
}

/**
 * Every package our own code imports with `await import(...)` is a lazy library: the call becomes
 * importVendor(...) (src/cli/vendor.ts), which loads dist/vendor/<name>.cjs on first use, and the
 * library is bundled into that file on its own.
 */
function splitLazyLibraries(lazy: LazyImports): EsbuildPlugin {
  const loader = join(root, 'dist/cli/vendor.js')
  const ours = join(root, 'dist') + sep
  return {
    name: 'lazy-libraries',
    setup(b) {
      b.onLoad({filter: /\.js$/}, (args) => {
        if (!args.path.startsWith(ours) || args.path === loader) return undefined
        const source = readFileSync(args.path, 'utf8')
        let found = false
        recordLazyImports(source, lazy)
        const contents = source.replace(
          /\bimport\(\s*(['"])([^'"./][^'"]*)\1\s*\)/g,
          (call, _quote, specifier: string) => {
            if (isBuiltin(specifier)) return call
            if (!lazy.has(specifier)) lazy.set(specifier, 'all')
            found = true
            return `__importVendor(${JSON.stringify(vendorFile(specifier))})`
          },
        )
        if (!found) return undefined
        return {
          contents: `import {importVendor as __importVendor} from ${JSON.stringify(loader)};\n${contents}`,
          loader: 'js',
        }
      })
    },
  }
}

const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ESM libraries ask import.meta.url where they are; in CommonJS that is this file.
  define: {'import.meta.url': '__bundleUrl'},
  banner: {
    js: [
      // Inside the standalone executable, the main script's require() loads built-in modules only
      // and warns on anything else; libraries probe optional packages (require.resolve('x') in
      // try/catch), so give them an ordinary require that simply finds nothing next to the binary.
      `if (require('node:sea').isSea()) require = require('node:module').createRequire(__filename);`,
      `const __bundleUrl = require('node:url').pathToFileURL(__filename).href;`,
    ].join('\n'),
  },
  // oclif reads tsconfig.json with typescript only in development (bin/dev.js); it copes without.
  external: ['typescript'],
  plugins: [etcdProtos(), noEngineCheckInExecutable(), lazyOclifBuiltins()],
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
}

/**
 * The bundle with every non-ASCII character written as a \\u escape, so that the loaders
 * (bin/load-cjs.cjs, bin/sea-main.cjs) can read it as Latin-1, a copy, instead of decoding UTF-8
 * (~1.5 ms of each start for 1.7 MiB). esbuild escapes them in strings but leaves comments and
 * regular expression literals as they are (ansis has a raw U+009B in one); an escape means the same
 * character in both, as in an identifier or a string. A template literal read raw would differ:
 * there is none, and the check below fails the build should one come.
 */
export function asciiOnly(source: string): string {
  const escaped = source.replace(/[^\x00-\x7f]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const raw = /String\.raw`[^`]*\\u[0-9a-f]{4}/.exec(escaped)
  if (raw) throw new Error(`scripts/bundle.ts: a non-ASCII character in a raw template literal: ${raw[0].slice(0, 80)}`)
  return escaped
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

export async function bundle(): Promise<void> {
  const lazy: LazyImports = new Map()
  const main = await build({
    ...common,
    stdin: {contents: entrySource(), resolveDir: root, sourcefile: 'bundle-entry.js', loader: 'js'},
    outfile: join(root, BUNDLE),
    plugins: [...common.plugins!, splitLazyLibraries(lazy)],
  })
  writeFileSync(join(root, BUNDLE), asciiOnly(readFileSync(join(root, BUNDLE), 'utf8')))
  console.log(`${BUNDLE}: ${mib(main.metafile!.outputs[BUNDLE]!.bytes)}`)
  for (const [specifier, taken] of lazy) {
    // A lazy library that our code also imports statically somewhere is in the main file too.
    const eager = Object.keys(main.metafile!.inputs).find((input) => input.includes(`node_modules/${specifier}/`))
    if (eager)
      console.warn(
        `warning: ${specifier} is imported statically too (${eager} is in the main bundle): startup pays for it`,
      )
    const outfile = `${VENDOR_DIR}/${vendorFile(specifier)}`
    const result = await build({
      ...common,
      stdin: {contents: vendorEntry(specifier, taken), resolveDir: root, sourcefile: `${specifier}.js`, loader: 'js'},
      outfile: join(root, outfile),
    })
    const what = taken === 'all' ? '' : `, ${[...taken].join(', ')}`
    console.log(`${outfile}: ${mib(result.metafile!.outputs[outfile]!.bytes)} (loaded on first use${what})`)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundle()
