// `config check FILE` on the real sandbox: encryption switched on by hand (aescbc key1, identity
// fallback) on every node, Secrets written under key1; then the file the nodes run (exit 0), files
// that lose key1 or plaintext (exit 5, counted per resource and provider:key), and files that are
// missing or invalid (the config validate error, exit 3). Every node's manifest is restored and
// every test Secret deleted afterwards.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {aescbcConfig, enableOnNode, MANIFEST, newKey, restoreNodes, type TestKey} from './helpers/encryption-setup.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, sandbox} from './helpers/sandbox.js'

const ns = `check-${Date.now().toString(36)}`
const key1 = newKey('key1')
const key2 = newKey('key2')
const key1Replaced: TestKey = {name: 'key1', secret: newKey('x').secret}
const saved = new Map<string, string>()
const dir = mkdtempSync(join(tmpdir(), 'config-check-e2e-'))
const SECRETS = 3

interface CheckResult {
  readable: boolean
  file: string
  hash: string
  values: number
  unreadable: number
  resources: Array<{
    resource: string
    values: number
    unreadable: number
    unreadableAs: Record<string, number>
    errors: Record<string, number>
    examples: string[]
  }>
  examples: string[]
}

const file = (name: string, content: string) => {
  const path = join(dir, name)
  writeFileSync(path, content, {mode: 0o600})
  return path
}
const check = (path: string, ...extra: string[]) => plugin(['config', 'check', path, ...sshArgs(), ...extra])
const secretsOf = (doc: CheckResult) => doc.resources.find((r) => r.resource === 'secrets')!

beforeAll(async () => {
  const {nodes} = sandbox()
  for (const node of nodes) saved.set(node, await readNodeFile(node, MANIFEST))
  await ok('kubectl', ['create', 'namespace', ns])
  await ok('kubectl', ['create', 'secret', 'generic', 'before', '-n', ns, '--from-literal=k=v'])
  for (const node of nodes) await enableOnNode(node, aescbcConfig([key1]))
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `after-${i}`, '-n', ns, '--from-literal=k=v'])
}, 600_000)

afterAll(async () => {
  // The test Secrets go first, while every node can still read them; wait until they are gone: an
  // API server restarted without key1 while key1 values are stored never becomes Ready.
  await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
  await restoreNodes(saved)
  rmSync(dir, {recursive: true, force: true})
}, 900_000)

describe('kubectl encryption config check', () => {
  it('the file the nodes run reads every value: exit 0', async () => {
    const path = file('good.yaml', aescbcConfig([key1]))
    const r = await check(path, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const doc = json<CheckResult>(r)
    expect(doc).toMatchObject({readable: true, unreadable: 0, file: path})
    expect(doc.hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(secretsOf(doc).values).toBeGreaterThanOrEqual(SECRETS + 1)
    const table = await check(path)
    expect(table.code).toBe(0)
    expect(table.stdout).toContain(`Every value is readable with ${path}.`)
  })

  it('a file without key1 cannot read the Secrets written under it: exit 5, counted per resource and provider:key', async () => {
    const path = file('no-key1.yaml', aescbcConfig([key2]))
    const r = await check(path, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(5)
    const doc = json<CheckResult>(r)
    expect(doc.readable).toBe(false)
    const secrets = secretsOf(doc)
    expect(secrets.unreadableAs['aescbc:key1']).toBeGreaterThanOrEqual(SECRETS)
    expect(secrets.unreadable).toBe(doc.unreadable)
    expect(secrets.errors['no matching key was found for the provided AES transformer']).toBe(secrets.unreadable)
    expect(doc.examples.length).toBeGreaterThan(0)
    expect(doc.examples.length).toBeLessThanOrEqual(5)
    for (const key of doc.examples) expect(key).toMatch(/^\/registry\/secrets\//)
    const table = await check(path)
    expect(table.code).toBe(5)
    expect(table.stdout).toMatch(
      new RegExp(`^secrets\\s+\\d+\\s+${doc.unreadable}\\s+aescbc:key1=${doc.unreadable}\\s`, 'm'),
    )
    expect(table.stdout).toContain(`${doc.unreadable} of ${doc.values} values would be unreadable`)
  })

  it('key1 with another secret reads nothing under key1 either: exit 5', async () => {
    const r = await check(file('key1-replaced.yaml', aescbcConfig([key1Replaced])), '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(5)
    expect(secretsOf(json<CheckResult>(r)).unreadableAs['aescbc:key1']).toBeGreaterThanOrEqual(SECRETS)
  })

  it('a file without identity cannot read the Secret stored before encryption: exit 5, as identity', async () => {
    const r = await check(file('no-identity.yaml', aescbcConfig([key1], false)), '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(5)
    const secrets = secretsOf(json<CheckResult>(r))
    expect(secrets.unreadableAs.identity).toBeGreaterThanOrEqual(1)
    expect(secrets.unreadableAs['aescbc:key1']).toBeUndefined()
    expect(secrets.errors['no matching prefix found']).toBe(secrets.unreadable)
  })

  it('a missing file is the config validate error, exit 3', async () => {
    const path = join(dir, 'missing.yaml')
    const r = await check(path)
    expect(r.code, r.stdout + r.stderr).toBe(3)
    expect(r.stderr).toContain(`open ${path}: no such file or directory`)
    expect(r.stdout).toBe('')
  })

  it('an invalid file is the config validate error, exit 3, with -o json too', async () => {
    const path = file('invalid.yaml', aescbcConfig([{name: 'key1', secret: 'c2hvcnQ='}]))
    const validate = await plugin(['config', 'validate', path, '-o', 'json'])
    expect(validate.code).toBe(3)
    const message = json<{message: string}>(validate).message
    const r = await check(path, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(3)
    expect(r.stdout + r.stderr).toContain('CONFIG_INVALID')
    expect(r.stdout + r.stderr).toContain(message.split('\n')[0])
  })

  it('no key material in any output', () => {
    const all = pluginOutputs.join('\n')
    for (const key of [key1, key2, key1Replaced]) expect(all).not.toContain(key.secret)
  })
})
