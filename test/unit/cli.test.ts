import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'

import {testTempDir} from '../helpers/temp-dir.js'

const run = promisify(execFile)
const bin = new URL('../../bin/run.js', import.meta.url).pathname

async function plugin(...args: string[]) {
  try {
    const {stdout, stderr} = await run(process.execPath, [bin, ...args])
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code: number; stdout: string; stderr: string}
    return {code: e.code, stdout: e.stdout, stderr: e.stderr}
  }
}

describe('the CLI frame', {timeout: 120_000}, () => {
  it('prints the version as a table and as JSON', async () => {
    const table = await plugin('version')
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^Version:\s+v\d+\.\d+\.\d+/m)
    const json = await plugin('version', '-o', 'json')
    expect(JSON.parse(json.stdout)).toMatchObject({plugin: 'kubectl-encryption'})
  })

  it('reads `kubectl encryption` in usage lines', async () => {
    const help = await plugin('version', '--help')
    expect(help.stdout).toContain('$ kubectl encryption version')
    expect(help.stdout).not.toContain('kubectl-encryption version')
  })

  it('lets help wrap descriptions to the terminal: no line break inside a paragraph', async () => {
    // oclif wraps to the terminal width; a hard break inside a paragraph leaves ragged half-lines.
    const manifestPath = new URL('../../oclif.manifest.json', import.meta.url)
    const {readFile} = await import('node:fs/promises')
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as {
      commands: Record<string, {description?: string}>
    }
    const ragged = Object.entries(manifest.commands)
      .filter(([, command]) => (command.description ?? '').split('\n\n').some((paragraph) => paragraph.includes('\n')))
      .map(([id]) => id)
    expect(Object.keys(manifest.commands).length).toBeGreaterThan(5)
    expect(ragged).toEqual([])
  })

  it('`--help` starts without the libraries and built-ins it does not use (scripts/bundle.ts)', async () => {
    // What a start loads is what it compiles: the heavy libraries load with the commands that need
    // them, and what oclif loads for other work only when used (scripts/bundle.ts, LAZY_REQUIRES):
    // perf_hooks for its debug timings, readline for flags read from stdin, child_process for the
    // Windows shell, tinyglobby (whose fdir looks for picomatch as it loads) for finding command
    // files, ejs for help strings with a tag. A hook writes what the process loaded when it exits,
    // every module path it resolved and how many functions it compiled from strings (EJS templates).
    const {readFile, writeFile} = await import('node:fs/promises')
    const {join} = await import('node:path')
    const dir = testTempDir('help-loads')
    const hook = join(dir, 'hook.cjs')
    const list = join(dir, 'loaded.json')
    await writeFile(
      hook,
      [
        "const Module = require('node:module')",
        'const resolved = []',
        'const resolve = Module._resolveFilename',
        'Module._resolveFilename = function (request, ...rest) { resolved.push(request); return resolve.call(this, request, ...rest) }',
        'let compiled = 0',
        'globalThis.Function = new Proxy(Function, {construct: (f, a, t) => (compiled++, Reflect.construct(f, a, t)), apply: (f, self, a) => (compiled++, Reflect.apply(f, self, a))})',
        `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify({builtins: process.moduleLoadList, files: Object.keys(require.cache), resolved, compiled})))`,
      ].join('\n'),
    )
    const cjs = new URL('../../bin/run.cjs', import.meta.url).pathname
    // As a user runs it: under NODE_ENV=test (vitest's) oclif loads typescript for its development mode.
    const {NODE_ENV: _, ...env} = process.env
    const loadedBy = async (...args: string[]) => {
      const code = await run(process.execPath, ['--require', hook, cjs, ...args], {env}).then(
        () => 0,
        (error: {code: number}) => error.code,
      )
      const loaded = JSON.parse(await readFile(list, 'utf8')) as {
        builtins: string[]
        files: string[]
        resolved: string[]
        compiled: number
      }
      return {
        code,
        resolved: loaded.resolved,
        compiled: loaded.compiled,
        builtins: loaded.builtins
          .filter((m) => m.startsWith('NativeModule '))
          .map((m) => m.slice('NativeModule '.length)),
        vendor: loaded.files.filter((f) => f.includes('/dist/vendor/')).map((f) => f.replace(/.*\//, '')),
      }
    }
    const help = await loadedBy('--help')
    expect(help.code).toBe(0)
    expect(help.builtins).toContain('tty') // the list is real: help is printed through it
    expect(
      help.builtins.filter((m) =>
        /^(perf_hooks|readline|internal\/perf\/usertiming|child_process|dgram|fs\/promises)$/.test(m),
      ),
    ).toEqual([])
    expect(help.resolved).not.toContain('picomatch')
    expect(help.compiled).toBe(0)
    expect(help.vendor).toEqual([])
    // The same hook sees a library load when a command needs one (here, to read a kubeconfig).
    const kubeconfig = join(dir, 'kubeconfig')
    await writeFile(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n',
      {mode: 0o600},
    )
    const status = await loadedBy('status', '--no-ssh', '--kubeconfig', kubeconfig)
    expect(status.code).toBe(3) // the server refuses: exit 3, after client-node read the kubeconfig
    expect(status.vendor).toContain('kubernetes__client-node.cjs')
  })

  it("still colours help with the user's theme.json (read only when there is one: scripts/bundle.ts)", async () => {
    const {mkdirSync, writeFileSync} = await import('node:fs')
    const {join} = await import('node:path')
    const configHome = testTempDir('theme')
    const {NODE_ENV: _, ...env} = process.env
    const help = async () =>
      (
        await run(process.execPath, [new URL('../../bin/run.cjs', import.meta.url).pathname, '--help'], {
          env: {...env, XDG_CONFIG_HOME: configHome, FORCE_COLOR: '1'},
        })
      ).stdout
    expect(await help()).toContain('\u001b[1mVERSION\u001b[22m\n')
    mkdirSync(join(configHome, 'kubectl-encryption'))
    writeFileSync(join(configHome, 'kubectl-encryption', 'theme.json'), '{"sectionHeader": "red"}')
    expect(await help()).toContain('\u001b[31m\u001b[1mVERSION\u001b[22m\u001b[39m\n')
  })

  it('rejects a bad output format with exit 2 and nothing on stdout', async () => {
    const bad = await plugin('version', '-o', 'xml')
    expect(bad.code).toBe(2)
    expect(bad.stdout).toBe('')
    expect(bad.stderr).toContain('error: Expected --output=xml to be one of')
  })

  it('enable generates secretbox unless --provider says otherwise; --provider with --config is a usage error (exit 2)', async () => {
    const help = await plugin('enable', '--help')
    expect(help.stdout).toMatch(/--provider=<option>\s+Provider of a generated config \(default\s+secretbox/)
    expect(help.stdout).toMatch(/<options: secretbox\|aesgcm\|aescbc\|kms>/)
    // before any cluster is contacted (no kubeconfig needed)
    for (const provider of ['aescbc', 'secretbox']) {
      const r = await plugin('enable', '--config', 'enc.yaml', '--provider', provider, '--kubeconfig', '/nonexistent')
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--config cannot be combined with --provider or --resource')
    }
  })
})
