// scripts/bundle.ts changes a few library files as it bundles them, to take work out of every
// start. Each change must keep what the library does: these run the changed files themselves.
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

import {asciiWidthFirst, lazyRequire, PATCHES} from '../../scripts/bundle.js'

const nodeModules = join(dirname(fileURLToPath(import.meta.url)), '../../node_modules')
const requireHere = createRequire(join(nodeModules, 'x.js'))

/** A library file with the build's patches applied, as the bundle has it. */
function patched(file: string): {path: string; source: string} {
  const path = join(nodeModules, file)
  const patches = PATCHES[file]
  if (!patches) throw new Error(`no patches for ${file}`)
  return {path, source: patches.reduce((source, patch) => patch(source, path), readFileSync(path, 'utf8'))}
}

/** Runs CommonJS `source` with `load` as its require; returns its exports. */
function runCommonJs(source: string, load: (id: string) => unknown): Record<string, unknown> {
  const module = {exports: {} as Record<string, unknown>}
  new Function('exports', 'require', 'module', source)(module.exports, load, module)
  return module.exports
}

describe('lazyRequire', () => {
  const source = [
    '"use strict";',
    'const tinyglobby_1 = require("tinyglobby");',
    'const ejs_1 = __importDefault(require("ejs"));',
    '// tinyglobby_1 in a comment is no use',
    'exports.find = () => (0, tinyglobby_1.glob)("*.js");',
    'exports.render = (t) => ejs_1.default.render(t);',
  ].join('\n')

  it('loads the module on the first property access, once, and not before', () => {
    const lazy = lazyRequire(lazyRequire(source, 'tinyglobby'), 'ejs')
    const loaded: string[] = []
    const load = (id: string) => {
      loaded.push(id)
      return id === 'ejs' ? {render: (t: string) => `ejs:${t}`} : {glob: (p: string) => [`found ${p}`]}
    }
    const __importDefault = (m: {__esModule?: boolean}) => (m?.__esModule ? m : {default: m})
    const module = {exports: {} as Record<string, (...a: string[]) => unknown>}
    new Function('exports', 'require', 'module', '__importDefault', lazy)(module.exports, load, module, __importDefault)
    expect(loaded).toEqual([])
    expect(module.exports.render!('x')).toBe('ejs:x')
    expect(loaded).toEqual(['ejs'])
    expect(module.exports.find!()).toEqual(['found *.js'])
    expect(module.exports.find!()).toEqual(['found *.js'])
    expect(loaded).toEqual(['ejs', 'tinyglobby'])
  })

  it('fails the build when the require is not there once, or the module is used other than by its properties', () => {
    expect(() => lazyRequire(source, 'minimatch', 'lib/x.js')).toThrow(
      'lib/x.js: oclif no longer requires minimatch once as expected',
    )
    expect(() => lazyRequire(`${source}\nconst tinyglobby_2 = require("tinyglobby");`, 'tinyglobby')).toThrow(
      /requires tinyglobby once/,
    )
    expect(() => lazyRequire(`${source}\nexports.all = tinyglobby_1;`, 'tinyglobby')).toThrow(
      /uses tinyglobby_1 other than by its properties/,
    )
    expect(() => lazyRequire(`${source}\ntinyglobby_1();`, 'tinyglobby')).toThrow(/other than by its properties/)
  })

  it('every lazy require in the build matches oclif as installed (the same check the build makes)', () => {
    for (const file of Object.keys(PATCHES).filter((f) => f.startsWith('@oclif/core/'))) {
      expect(() => patched(file), file).not.toThrow()
    }
  })
})

describe("oclif's help template, as bundled", () => {
  const {source} = patched('@oclif/core/lib/help/util.js')
  const load = (loaded: string[]) => (id: string) => {
    loaded.push(id)
    if (id === 'ejs')
      return {render: (t: string, context: {bin: string}) => `[ejs]${t.replace('<%= bin %>', context.bin)}`}
    return requireHere(join(nodeModules, '@oclif/core/lib/help', id))
  }

  it('gives a string with no EJS delimiter back as it is, without loading EJS', () => {
    const loaded: string[] = []
    const util = runCommonJs(source, load(loaded)) as {template(c: object): (t: string) => string}
    const render = util.template({bin: 'kubectl-encryption'})
    expect(render('Switch on encryption at rest (100% of Secrets)')).toBe(
      'Switch on encryption at rest (100% of Secrets)',
    )
    expect(render('')).toBe('')
    expect(loaded).not.toContain('ejs')
  })

  it('still renders every string with a tag or a delimiter through EJS', () => {
    const loaded: string[] = []
    const util = runCommonJs(source, load(loaded)) as {template(c: object): (t: string) => string}
    const render = util.template({bin: 'kubectl-encryption'})
    expect(render('$ <%= bin %> status')).toBe('[ejs]$ kubectl-encryption status')
    expect(loaded).toContain('ejs')
    for (const input of ['<%% literal', 'a -%> b', 'a %> b']) expect(render(input)).toBe(`[ejs]${input}`)
  })
})

describe('string-width, as bundled', () => {
  const {path, source} = patched('string-width/index.js')
  const patchedWidth = runCommonJs(source, createRequire(path)) as unknown as (s: string) => number
  const width = requireHere('string-width') as (s: string) => number

  it('measures as string-width does: printable ASCII, ANSI colours, emoji, wide and combining characters, controls', () => {
    const printable = Array.from({length: 0x7f - 0x20}, (_, i) => String.fromCharCode(0x20 + i))
    const strings = [
      ...printable,
      printable.join(''),
      '',
      '  kubectl encryption status --scan  Scan every Secret in etcd',
      '\u001b[1mCOMMANDS\u001b[22m',
      '\u009b31mred',
      'tab\there',
      'line\nbreak',
      '\u007f',
      'caf\u00e9',
      'e\u0301',
      '\u{1f600} smile',
      '#\ufe0f\u20e3',
      '\u4e2d\u6587',
      '\uff21',
      'x\u0000y',
    ]
    for (const s of strings) expect(patchedWidth(s), JSON.stringify(s)).toBe(width(s))
    expect(patchedWidth(printable.join(''))).toBe(95)
  })

  it('fails the build when string-width no longer starts as expected', () => {
    expect(() => asciiWidthFirst('module.exports = s => s.length', 'string-width/index.js')).toThrow(
      'string-width/index.js: string-width no longer starts as expected',
    )
  })
})

describe("oclif's WSL question, as bundled", () => {
  it('asks the is-wsl that wsl-utils re-exports, and gets the same answer', async () => {
    const {path, source} = patched('@oclif/core/lib/util/os.js')
    const asked = /\(await import\(("[^"]+")\)\)\.default/.exec(source)
    expect(asked).not.toBeNull()
    expect(source).not.toContain("(await import('wsl-utils')).isWsl")
    const isWslPath = JSON.parse(asked![1]!) as string
    const wslUtils = createRequire(path).resolve('wsl-utils')
    expect(isWslPath).toBe(createRequire(wslUtils).resolve('is-wsl'))
    expect((await import(isWslPath)).default).toBe((await import(wslUtils)).isWsl)
  })
})
