// `status --scan --snapshot FILE [--config FILE]` on the sandbox (issue 17 item 2): aescbc key1 on
// every node, Secrets stored under it, an `etcdctl snapshot save` taken; then a full `rotate
// --backup-dir DIR` to a new key (old-key removal included). The old snapshot is reported as needing
// aescbc:key1; the new config rotate wrote (without key1) does not open it (exit 5, naming key1) and
// the config it kept with the old key does (exit 0). All of it offline: the plugin gets no working
// kubeconfig. A truncated copy, random bytes and a missing path exit 3 with one clear line; no
// temporary data dir is left behind; no key material in any output. afterAll puts back the Secrets'
// stored bytes, the state ConfigMap, the manifests and the nodes' dirs.
import {randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {aescbcConfig, enableOnNode, MANIFEST, newKey, restoreNodes} from './helpers/encryption-setup.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, run, type RunResult, sandbox, sshOk} from './helpers/sandbox.js'

const ns = `snap-${Date.now().toString(36)}`
const STATE_KEY = '/registry/configmaps/kube-system/kubectl-encryption-state'
const SECRETS = 3
const key1 = newKey('key1')
const dir = mkdtempSync(join(tmpdir(), 'status-snapshot-e2e-'))
const before = join(dir, 'before-rotation.db')
const after = join(dir, 'after-rotation.db')
const savedManifests = new Map<string, string>()
const savedTmp = new Map<string, string[]>()
let savedSecrets = new Map<string, string>()
let savedState: string | undefined
// The plugin's temporary dir (os.tmpdir() follows TMPDIR): a snapshot scan run by anything else on
// the machine at the same time (another CI run) leaves its own data dirs in the shared one.
const pluginTmp = join(dir, 'tmp')
mkdirSync(pluginTmp, {mode: 0o700})

interface SnapshotJson {
  snapshot: {
    file: string
    bytes: number
    revision: number
    totalKeys: number
    etcdVersion?: string
    integrityChecked: boolean
  }
  keys: number
  values: number
  needs: Array<{storedAs: string; values: number; unreadable?: number}>
  keysNeeded: string[]
  resources: Array<{resource: string; values: number; storedAs: Record<string, number>}>
  config?: {
    readable: boolean
    file: string
    hash: string
    values: number
    unreadable: number
    resources: Array<{resource: string; unreadable: number; unreadableAs: Record<string, number>}>
  }
}

const nodes = () => sandbox().nodes
const snapshotDirs = () => readdirSync(pluginTmp).filter((f) => f.startsWith('kubectl-encryption-snapshot-'))

/**
 * The snapshot scan, offline: the kubeconfig points at nothing, so any cluster access would fail.
 * etcdutl and etcd are the sandbox's (the release kubeadm pins), named by the environment variables.
 */
const scan = (snapshot: string, ...extra: string[]): Promise<RunResult> =>
  plugin(['status', '--scan', '--snapshot', snapshot, ...extra], {
    env: {
      KUBECONFIG: join(dir, 'no-such-kubeconfig'),
      TMPDIR: pluginTmp,
      KUBECTL_ENCRYPTION_ETCDUTL: join(sandbox().env.SANDBOX_BIN_DIR!, 'etcdutl'),
      KUBECTL_ENCRYPTION_ETCD: join(sandbox().env.SANDBOX_BIN_DIR!, 'etcd'),
    },
  })

const need = (doc: SnapshotJson, storedAs: string) => doc.needs.find((n) => n.storedAs === storedAs)

async function etcdSecrets(): Promise<Map<string, string>> {
  const out = await ok('etcdctl', ['get', '--prefix', '/registry/secrets/', '-w', 'json'])
  const kvs = (JSON.parse(out) as {kvs?: Array<{key: string; value: string}>}).kvs ?? []
  return new Map(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), kv.value]))
}

const tmpListing = async (node: string) =>
  (await sshOk(node, `sudo -n sh -c 'ls -A /etc/kubernetes/tmp 2>/dev/null || true'`)).split('\n').filter(Boolean)

beforeAll(async () => {
  for (const node of nodes()) {
    savedManifests.set(node, await readNodeFile(node, MANIFEST))
    savedTmp.set(node, await tmpListing(node))
  }
  // rotate's rewrite re-encrypts every Secret in the cluster: afterAll puts the stored bytes back.
  savedSecrets = await etcdSecrets()
  const state = JSON.parse(await ok('etcdctl', ['get', STATE_KEY, '-w', 'json'])) as {kvs?: Array<{value: string}>}
  savedState = state.kvs?.[0]?.value
  // A rotation recorded by another test would be continued instead of started.
  await run('etcdctl', ['del', STATE_KEY])
  await ok('kubectl', ['create', 'namespace', ns])
  await ok('kubectl', ['create', 'secret', 'generic', 'plain', '-n', ns, '--from-literal=k=v'])
  for (const node of nodes()) await enableOnNode(node, aescbcConfig([key1]))
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `under-key1-${i}`, '-n', ns, '--from-literal=k=v'])
  await ok('etcdctl', ['snapshot', 'save', before])
}, 600_000)

afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
  await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns}/`])
  // The stored bytes first, while every node still runs a config that reads them (identity fallback):
  // an API server restarted without encryption while encrypted Secrets are stored is never Ready.
  const now = await etcdSecrets()
  for (const [key, value] of savedSecrets)
    if (now.get(key) !== value) await ok('etcdctl', ['put', key], {input: Buffer.from(value, 'base64')})
  for (const key of now.keys()) if (!savedSecrets.has(key)) await ok('etcdctl', ['del', key])
  if (savedState === undefined) await run('etcdctl', ['del', STATE_KEY])
  else await ok('etcdctl', ['put', STATE_KEY], {input: Buffer.from(savedState, 'base64')})
  await restoreNodes(savedManifests)
  for (const node of nodes()) {
    const extra = (await tmpListing(node)).filter((f) => !savedTmp.get(node)!.includes(f))
    if (extra.length > 0)
      await sshOk(node, `sudo -n rm -rf ${extra.map((f) => `'/etc/kubernetes/tmp/${f}'`).join(' ')}`)
    if (savedTmp.get(node)!.length === 0)
      await sshOk(node, `sudo -n sh -c 'rmdir /etc/kubernetes/tmp 2>/dev/null || true'`)
  }
  rmSync(dir, {recursive: true, force: true})
}, 900_000)

describe('kubectl encryption status --scan --snapshot', {timeout: 900_000}, () => {
  let newConfig = ''
  let oldKeyConfig = ''
  let newKeyName = ''

  it('a snapshot taken under key1 needs aescbc:key1 (and identity for the Secret stored before); read offline with the real etcdutl and etcd', async () => {
    const r = await scan(before, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const doc = json<SnapshotJson>(r)
    expect(doc.snapshot).toMatchObject({file: before, integrityChecked: true})
    expect(doc.snapshot.revision).toBeGreaterThan(0)
    expect(doc.keysNeeded).toContain('aescbc:key1')
    expect(need(doc, 'aescbc:key1')!.values).toBeGreaterThanOrEqual(SECRETS)
    expect(need(doc, 'identity')!.values).toBeGreaterThan(0)
    expect(doc.resources.find((x) => x.resource === 'secrets')!.storedAs['aescbc:key1']).toBeGreaterThanOrEqual(SECRETS)
    const table = await scan(before)
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/^Keys needed:\s+aescbc:key1$/m)
    expect(table.stdout).toMatch(new RegExp(`^aescbc:key1\\s+${need(doc, 'aescbc:key1')!.values}$`, 'm'))
  })

  it('rotate --backup-dir to a new key through old-key removal writes the new config and one that still holds key1', async () => {
    const out = join(dir, 'enc-backups')
    const r = await plugin(['rotate', ...sshArgs(), '--yes', '--backup-dir', out, '-o', 'json'], {timeoutMs: 840_000})
    expect(r.code, r.stderr).toBe(0)
    const doc = json<{
      newKey: string
      oldKey: {provider: string; name: string}
      localBackup?: string
      oldKeyBackup?: string
      stages: Array<{stage: string; status: string}>
    }>(r)
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(
      ['add-key', 'wait-add', 'promote', 'wait-promote', 'rewrite', 'remove-old'].map((s) => `${s}:done`),
    )
    expect(doc.oldKey).toEqual({provider: 'aescbc', name: 'key1'})
    newKeyName = doc.newKey
    newConfig = doc.localBackup!
    oldKeyConfig = doc.oldKeyBackup!
    const names = (file: string) =>
      (
        parse(readFileSync(file, 'utf8')) as {
          resources: Array<{providers: Array<{aescbc?: {keys: Array<{name: string}>}}>}>
        }
      ).resources[0]!.providers.flatMap((p) => p.aescbc?.keys.map((k) => k.name) ?? [])
    expect(names(newConfig)).toEqual([newKeyName])
    expect(names(oldKeyConfig)).toEqual([newKeyName, 'key1'])
    expect(readFileSync(newConfig, 'utf8')).toBe(await readNodeFile(nodes()[0]!, '/etc/kubernetes/enc/enc.yaml'))
  })

  it('the config without key1 does not open the old snapshot: exit 5, key1 named with its count', async () => {
    const r = await scan(before, '--config', newConfig, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(5)
    const doc = json<SnapshotJson>(r)
    expect(doc.config).toMatchObject({readable: false, file: newConfig})
    expect(need(doc, 'aescbc:key1')).toMatchObject({unreadable: need(doc, 'aescbc:key1')!.values})
    expect(need(doc, 'identity')!.unreadable).toBe(0)
    expect(doc.config!.unreadable).toBe(need(doc, 'aescbc:key1')!.values)
    expect(doc.config!.resources.find((x) => x.resource === 'secrets')!.unreadableAs).toEqual({
      'aescbc:key1': doc.config!.unreadable,
    })
    const table = await scan(before, '--config', newConfig)
    expect(table.code).toBe(5)
    expect(table.stdout).toContain(
      `does NOT open ${doc.config!.unreadable} of ${doc.config!.values} values of ${before}: it cannot read the values stored as aescbc:key1.`,
    )
  })

  it('the config rotate kept with key1 opens the old snapshot: exit 0', async () => {
    const r = await scan(before, '--config', oldKeyConfig, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const doc = json<SnapshotJson>(r)
    expect(doc.config).toMatchObject({readable: true, unreadable: 0, file: oldKeyConfig})
    expect(need(doc, 'aescbc:key1')).toMatchObject({unreadable: 0})
    const table = await scan(before, '--config', oldKeyConfig)
    expect(table.code).toBe(0)
    expect(table.stdout).toContain(`opens every value of ${before}.`)
  })

  it('a snapshot taken after the rotation needs only the new key, and the new config opens it', async () => {
    await ok('etcdctl', ['snapshot', 'save', after])
    const r = await scan(after, '--config', newConfig, '-o', 'json')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const doc = json<SnapshotJson>(r)
    expect(doc.keysNeeded).toContain(`aescbc:${newKeyName}`)
    expect(doc.keysNeeded).not.toContain('aescbc:key1')
    expect(doc.config!.readable).toBe(true)
  })

  it('bad snapshot files: a truncated copy, random bytes, a missing path: exit 3, one clear line, nothing on stdout', async () => {
    const bytes = readFileSync(before)
    const truncated = join(dir, 'truncated.db')
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)))
    const random = join(dir, 'random.db')
    writeFileSync(random, randomBytes(64 * 1024))
    const cases: Array<[string, RegExp]> = [
      [
        truncated,
        new RegExp(
          `^error: --snapshot ${truncated} is not a readable etcd snapshot \\(truncated, damaged, or not a snapshot\\): `,
        ),
      ],
      [
        random,
        new RegExp(
          `^error: --snapshot ${random} is not a readable etcd snapshot \\(truncated, damaged, or not a snapshot\\): invalid database$`,
          'm',
        ),
      ],
      [
        join(dir, 'missing.db'),
        new RegExp(`^error: cannot read --snapshot ${join(dir, 'missing.db')}: no such file$`, 'm'),
      ],
    ]
    for (const [file, message] of cases) {
      const r = await scan(file, '--config', oldKeyConfig)
      expect(r.code, r.stderr).toBe(3)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(message)
      expect(r.stderr.split('\n').filter(Boolean).length, r.stderr).toBeLessThanOrEqual(2) // error: and hint:
    }
  })

  it('leaves no temporary data dir and prints no key material', async () => {
    expect(snapshotDirs()).toEqual([])
    const keys = (
      parse(readFileSync(oldKeyConfig, 'utf8')) as {
        resources: Array<{providers: Array<{aescbc?: {keys: Array<{secret: string}>}}>}>
      }
    ).resources[0]!.providers.flatMap((p) => p.aescbc?.keys.map((k) => k.secret) ?? [])
    expect(keys).toContain(key1.secret)
    const all = pluginOutputs.join('\n')
    for (const secret of keys) expect(all.includes(secret), 'a key secret appeared in plugin output').toBe(false)
  })
})
