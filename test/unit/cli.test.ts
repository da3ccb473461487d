import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'

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
