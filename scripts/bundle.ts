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
import {readFileSync, realpathSync, writeFileSync} from 'node:fs'
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
 * `source` with `old`, which must be there exactly once, replaced by `replacement`; else the build
 * fails, naming the file and what it no longer does as expected (`what`).
 */
function replaceOnce(source: string, file: string, old: string, replacement: string, what: string): string {
  if (source.split(old).length !== 2) throw new Error(`${file}: ${what} as expected; update scripts/bundle.ts`)
  return source.replace(old, () => replacement)
}

/**
 * oclif checks at load that the running node satisfies the `engines` of the package.json next to
 * it, through semver (about 40 regular expressions built, ~1.5 ms). In the bundle that is our
 * package.json on the npm path, a check worth keeping; in the standalone executable there is no
 * package.json and the node is the pinned one, so there it only costs: skipped there.
 */
function noEngineCheckInExecutable(source: string, file: string): string {
  const call = '\ncheckNodeVersion();\n'
  const inExecutableNot = "\nif (!require('node:sea').isSea()) checkNodeVersion();\n"
  return replaceOnce(source, file, call, inExecutableNot, 'oclif no longer checks the node version')
}

/**
 * oclif renders every string of a help page as an EJS template (`<%= config.bin %>`): one template
 * compiled, a `new Function`, per string (~2 ms of a start-up that prints help; the root page alone
 * compiles two). A string with no EJS delimiter renders as itself, so it skips EJS; the others still
 * go through it. One place for the command, topic and root pages: help/util.js's template().
 */
export function ejsOnlyForTags(source: string, file: string): string {
  const render = 'return ejs_1.default.render(t, context);'
  const onlyForTags = "return t.includes('<%') || t.includes('%>') ? ejs_1.default.render(t, context) : t;"
  return replaceOnce(source, file, render, onlyForTags, 'oclif no longer renders help through ejs')
}

/**
 * Modules oclif requires as it loads that `--help` never uses, per file of @oclif/core's lib: each
 * is evaluated at every start otherwise (built-ins compiled by node's loader, libraries run by the
 * bundle). perf_hooks is for its timing marks when debugging, readline for flags read from stdin,
 * tinyglobby (with fdir and picomatch; fdir looks for picomatch on disk as it loads) for finding
 * command files the manifest already lists, minimatch and lilconfig for plugins, get-package-type
 * for loading files from disk, ejs for help strings with a tag (none of ours has one), cli-spinners
 * for oclif's own spinner and clean-stack for printing an error. oclif reaches each only through
 * property accesses (`tinyglobby_1.glob`, `ejs_1.default.render`), which the build checks, so each
 * becomes an object that loads the module on its first property access. child_process is for
 * finding the shell on Windows (with isWslWithoutWslUtils below, nothing else loads it at start),
 * fs/promises for reading files (with themeReadOnlyIfThere below, a start without a theme reads none).
 * Not wordwrap: ux/list.js calls it, not a property of it.
 */
export const LAZY_REQUIRES: Record<string, string[]> = {
  'config/config.js': ['ejs'],
  'config/plugin-loader.js': ['minimatch'],
  'config/plugin.js': ['tinyglobby'],
  'config/ts-path.js': ['node:fs/promises'],
  'errors/errors/cli.js': ['clean-stack'],
  'errors/handle.js': ['clean-stack'],
  'help/util.js': ['ejs'],
  'module-loader.js': ['get-package-type'],
  'parser/parse.js': ['node:readline'],
  'performance.js': ['node:perf_hooks'],
  'util/os.js': ['node:child_process'],
  'util/fs.js': ['node:fs/promises'],
  'util/read-pjson.js': ['lilconfig'],
  'util/read-tsconfig.js': ['node:fs/promises'],
  'ux/action/spinner.js': ['cli-spinners'],
}

/**
 * `source` with `const name = require(id)` (or `= __importDefault(require(id))`) made lazy; throws
 * when the require is not there once, or when `name` is used other than as `name.property`.
 */
export function lazyRequire(source: string, id: string, file = 'source'): string {
  const declaration = new RegExp(
    String.raw`\bconst (\w+) = ((?:__importDefault\()?require\(["']${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']\)\)?);`,
    'g',
  )
  const found = [...source.matchAll(declaration)]
  if (found.length !== 1)
    throw new Error(`${file}: oclif no longer requires ${id} once as expected; update scripts/bundle.ts`)
  const [whole, name, load] = found[0]!
  const code = source
    .split(whole)
    .join('')
    .replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
  const uses = code.match(new RegExp(String.raw`\b${name}\b(?!\.\w)`, 'g'))
  if (uses) throw new Error(`${file}: oclif uses ${name} other than by its properties; update scripts/bundle.ts`)
  const lazy = `const ${name} = (() => { let loaded; return new Proxy({}, {get: (_, key) => (loaded ??= ${load})[key]}) })();`
  return source.replace(whole, () => lazy)
}

/**
 * oclif asks at every start whether it runs under WSL, as `(await import('wsl-utils')).isWsl`: the
 * answer of is-wsl, which wsl-utils re-exports. Loading wsl-utils also loads powershell-utils and,
 * as both load, child_process, which with dgram and three internal modules node compiles at every
 * start. Asked of is-wsl itself (the copy wsl-utils uses), the answer is the same without them.
 */
export function isWslWithoutWslUtils(source: string, file: string): string {
  const ask = "(await import('wsl-utils')).isWsl"
  const wslUtils = createRequire(file).resolve('wsl-utils')
  if (!readFileSync(wslUtils, 'utf8').includes("export {default as isWsl} from 'is-wsl';"))
    throw new Error(`${wslUtils}: isWsl is no longer is-wsl's answer; update scripts/bundle.ts`)
  const isWsl = createRequire(wslUtils).resolve('is-wsl')
  const askIsWsl = `(await import(${JSON.stringify(isWsl)})).default`
  return replaceOnce(source, file, ask, askIsWsl, 'oclif no longer asks wsl-utils for isWsl')
}

/**
 * string-width (4.x, through oclif's help: wrap-ansi measures every word, widest-line every line)
 * strips ANSI codes, replaces emoji through a regular expression of 10 KiB and looks up every code
 * point. A string of printable ASCII alone is as wide as it is long, and that is nearly all of help.
 */
export function asciiWidthFirst(source: string, file: string): string {
  const start = "\tif (typeof string !== 'string' || string.length === 0) {\n\t\treturn 0;\n\t}\n"
  const asciiFirst = `${start}\n\tif (/^[\\x20-\\x7e]*$/.test(string)) {\n\t\treturn string.length;\n\t}\n`
  return replaceOnce(source, file, start, asciiFirst, 'string-width no longer starts')
}

/**
 * oclif reads the user's theme (`<config dir>/theme.json`) at every start through fs/promises, the
 * one use of it in a start that prints help, and most users have no such file. Asked first whether
 * it exists (oclif's own existsSync), a start without one loads neither fs/promises (node compiles
 * it with 8 modules behind it) nor the thread pool's first read; with one, it is read as before.
 */
export function themeReadOnlyIfThere(source: string, file: string): string {
  const read = '(0, fs_1.safeReadJson)(userThemeFile),'
  const ifThere = '(0, fs_1.existsSync)(userThemeFile) ? (0, fs_1.safeReadJson)(userThemeFile) : undefined,'
  return replaceOnce(source, file, read, ifThere, "oclif no longer reads the user's theme")
}

type Patch = (source: string, file: string) => string

/**
 * What the build changes in the libraries it bundles, by file under node_modules (the copy found
 * from the project root): each patch throws when the code it changes is not there, and the build
 * fails when a patched file is no longer part of the bundle.
 */
export const PATCHES: Record<string, Patch[]> = {
  '@oclif/core/lib/index.js': [noEngineCheckInExecutable],
  '@oclif/core/lib/help/util.js': [ejsOnlyForTags],
  '@oclif/core/lib/util/os.js': [isWslWithoutWslUtils],
  '@oclif/core/lib/config/config.js': [themeReadOnlyIfThere],
  'string-width/index.js': [asciiWidthFirst],
}
for (const [file, ids] of Object.entries(LAZY_REQUIRES))
  (PATCHES[`@oclif/core/lib/${file}`] ??= []).unshift(
    ...ids.map((id) => (source: string, path: string) => lazyRequire(source, id, path)),
  )

/** `everyFile`: the build fails unless every file in PATCHES was patched (the main bundle's check). */
function patchLibraries({everyFile = false} = {}): EsbuildPlugin {
  return {
    name: 'patch-libraries',
    setup(b) {
      const byPath = new Map(
        Object.entries(PATCHES).map(([file, patches]) => [realpathSync(join(root, 'node_modules', file)), patches]),
      )
      const patched = new Set<string>()
      b.onLoad({filter: /[\\/]node_modules[\\/].*\.js$/}, (args) => {
        const patches = byPath.get(args.path)
        if (!patches) return undefined
        patched.add(args.path)
        return {
          contents: patches.reduce((source, patch) => patch(source, args.path), readFileSync(args.path, 'utf8')),
          loader: 'js',
        }
      })
      b.onEnd((result) => {
        if (!everyFile || result.errors.length > 0) return
        const missed = [...byPath.keys()].filter((path) => !patched.has(path))
        if (missed.length > 0)
          throw new Error(`scripts/bundle.ts patches files the bundle no longer has: ${missed.join(', ')}`)
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
  plugins: [etcdProtos(), patchLibraries()],
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
    plugins: [etcdProtos(), patchLibraries({everyFile: true}), splitLazyLibraries(lazy)],
    // Without whitespace and comments (names kept, so stack traces still name functions): every
    // start copies the bundle's text, and 1.9 MiB become 1.3 (~1 ms of the executable's start).
    minifyWhitespace: true,
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
