/**
 * `kubectl encryption rewrite --engine svm` end to end: the built plugin hands the rewrite to the
 * sandbox's own storage-version migrator (kube-controller-manager v1.37, storagemigration.k8s.io/v1)
 * and follows it. Secrets are created under key1, then key2 becomes the write key on every node, so
 * the proof is what a user would check: every value in etcd now starts with key2's prefix. Also: a
 * migration the controller fails (a validating webhook denies one object's patch) gives exit 4 with
 * the controller's reason and --resume creates it anew once the cause is gone; a run killed with
 * SIGKILL is picked up by --resume, which follows the same migration. The controller can take a
 * minute or more before it acts on a new migration, so every wait here is on a condition.
 * The control plane is restored afterwards (every Secret decrypted first), and everything created deleted.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {DENY_UPDATE_ANNOTATION} from '../sandbox/admission-webhook.js'
import {
  expectNoKeyMaterial,
  restoreControlPlane,
  saveControlPlane,
  type SavedControlPlane,
} from './helpers/control-plane-state.js'
import {aescbcConfig, enableOnNode, newKey} from './helpers/encryption-setup.js'
import {json, plugin, spawnPlugin, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, run, sandbox, waitFor} from './helpers/sandbox.js'

const ns = `rw-svm-${randomBytes(3).toString('hex')}`
const COUNT = 30
const RUN_LABEL = 'encryption.kubectl-encryption.io/run'
const key1 = newKey('key1')
const key2 = newKey('key2')
let saved: SavedControlPlane | undefined
let stateHome: string
let previousStateHome: string | undefined

interface RewriteJson {
  engine: string
  resumed: boolean
  interrupted: boolean
  totals: {listed: number; rewritten: number; alreadyCurrent: number; failed: number}
  resources: Array<{resource: string; listed: number; rewritten: number; complete: boolean}>
  failures: Array<{resource: string; migration?: string; reason: string; message: string}>
  migrations: Array<{resource: string; name: string; state: string}>
  verify?: {resources: Array<{resource: string; write: string; scanned: number; stillStale: number}>}
}

// Every plugin run of this file (spawned ones too) keeps its checkpoints in stateHome (XDG_STATE_HOME, set in beforeAll).
const svm = (args: string[], timeoutMs = 420_000) =>
  plugin(['rewrite', '--engine', 'svm', ...sshArgs(), ...args], {timeoutMs})

const migrationNames = async () =>
  (await run('kubectl', ['get', 'storageversionmigrations', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout
    .split(/\s+/)
    .filter(Boolean)

/** Raw values under a prefix, through the real etcdctl (-w json: base64 keys and values). */
async function etcdValues(prefix: string): Promise<Map<string, Buffer>> {
  const out = JSON.parse(await ok('etcdctl', ['get', '--prefix', prefix, '-w', 'json'])) as {
    kvs?: Array<{key: string; value: string}>
  }
  return new Map(
    (out.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64')]),
  )
}

const underKey = (value: Buffer, key: string) =>
  value.subarray(0, 64).toString('latin1').startsWith(`k8s:enc:aescbc:v1:${key}:`)

async function keysOf(namespace: string): Promise<Record<string, number>> {
  const count: Record<string, number> = {}
  for (const value of (await etcdValues(`/registry/secrets/${namespace}/`)).values()) {
    const key = underKey(value, 'key2') ? 'key2' : underKey(value, 'key1') ? 'key1' : 'other'
    count[key] = (count[key] ?? 0) + 1
  }
  return count
}

async function migrationsOfRun(
  runId: string,
): Promise<Array<{name: string; conditions: Array<{type: string; status: string}>}>> {
  const list = JSON.parse(
    await ok('kubectl', ['get', 'storageversionmigrations', '-l', `${RUN_LABEL}=${runId}`, '-o', 'json']),
  ) as {items: Array<{metadata: {name: string}; status?: {conditions?: Array<{type: string; status: string}>}}>}
  return list.items.map((i) => ({name: i.metadata.name, conditions: i.status?.conditions ?? []}))
}

const runIdOf = (name: string) => /^kubectl-encryption-([0-9a-f]{8})-/.exec(name)![1]!

beforeAll(async () => {
  stateHome = mkdtempSync(path.join(tmpdir(), 'rw-svm-state-'))
  previousStateHome = process.env.XDG_STATE_HOME
  process.env.XDG_STATE_HOME = stateHome
  saved = await saveControlPlane()
  // key1 everywhere, then the Secrets, then key2 first everywhere: every Secret below is stale.
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key1]))
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < COUNT; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `s-${i}`, '-n', ns, `--from-literal=v=${ns}-${i}`])
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key2, key1]))
  expect(await keysOf(ns)).toEqual({key1: COUNT})
}, 900_000)

afterEach(async () => {
  await expectNoKeyMaterial()
})

afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false'])
  // The plugin's migrations are its record in the cluster; the test's go with it.
  await kubectl(['delete', 'storageversionmigrations', '-l', 'app.kubernetes.io/managed-by=kubectl-encryption'])
  rmSync(stateHome, {recursive: true, force: true})
  if (previousStateHome === undefined) delete process.env.XDG_STATE_HOME
  else process.env.XDG_STATE_HOME = previousStateHome
  await restoreControlPlane(saved)
}, 900_000)

describe('kubectl encryption rewrite --engine svm (sandbox)', () => {
  it('the cluster migrator rewrites every Secret (-A): etcd holds them under the new key, --verify agrees', async () => {
    // etcd read directly with the sandbox's client certificate (exec and ssh: cluster-checks.test.ts)
    const env = sandbox().env
    const r = await svm([
      '-A',
      '-o',
      'json',
      '--verify',
      '--etcd-endpoints',
      env.ETCDCTL_ENDPOINTS!,
      '--etcd-cacert',
      env.ETCDCTL_CACERT!,
      '--etcd-cert',
      env.ETCDCTL_CERT!,
      '--etcd-key',
      env.ETCDCTL_KEY!,
    ])
    expect(r.code, r.stderr).toBe(0)
    const result = json<RewriteJson>(r)
    expect(result.engine).toBe('svm')
    expect(result.failures).toEqual([])
    expect(result.migrations).toEqual([
      {resource: 'secrets', name: expect.stringMatching(/-secrets$/), state: 'Succeeded'},
    ])
    // the namespace's 30 stale Secrets at least (other namespaces may hold more)
    expect(result.totals.rewritten).toBeGreaterThanOrEqual(COUNT)
    expect(result.totals.rewritten + result.totals.alreadyCurrent).toBe(result.totals.listed)
    expect(result.verify?.resources).toEqual([
      expect.objectContaining({resource: 'secrets', write: 'aescbc:key2', stillStale: 0}),
    ])
    expect(await keysOf(ns)).toEqual({key2: COUNT})
    // data unchanged
    const data = JSON.parse(await ok('kubectl', ['get', 'secret', 's-7', '-n', ns, '-o', 'json'])) as {
      data: {v: string}
    }
    expect(Buffer.from(data.data.v, 'base64').toString()).toBe(`${ns}-7`)
    // the migration is there for `kubectl get`, Succeeded as the controller set it
    const [m] = await migrationsOfRun(runIdOf(result.migrations[0]!.name))
    expect(m!.conditions).toContainEqual(expect.objectContaining({type: 'Succeeded', status: 'True'}))
  }, 600_000)

  it('after SIGKILL, --resume follows the same migration to the end (and creates no other)', async () => {
    const known = new Set(await migrationNames())
    const first = spawnPlugin(['rewrite', '--engine', 'svm', '-A', ...sshArgs()])
    const stateDir = path.join(stateHome, 'kubectl-encryption')
    const created = await waitFor(
      'the run to create its StorageVersionMigration',
      async () => (await migrationNames()).find((name) => !known.has(name)),
      120_000,
      200,
    )
    first.child.kill('SIGKILL')
    await first.done
    const files = readdirSync(stateDir).filter((f) => f.startsWith('rewrite-'))
    expect(files).toHaveLength(1)
    expect(statSync(path.join(stateDir, files[0]!)).mode & 0o777).toBe(0o600)
    expect(readFileSync(path.join(stateDir, files[0]!), 'utf8')).toContain(created)

    const second = await plugin(['rewrite', '--engine', 'svm', '-A', '--resume', '-o', 'json', ...sshArgs()], {
      timeoutMs: 420_000,
    })
    expect(second.code, second.stderr).toBe(0)
    const result = json<RewriteJson>(second)
    expect(result).toMatchObject({resumed: true, interrupted: false, failures: []})
    expect(result.migrations).toEqual([{resource: 'secrets', name: created, state: 'Succeeded'}])
    expect((await migrationsOfRun(runIdOf(created))).map((m) => m.name)).toEqual([created])
    expect(readdirSync(stateDir).filter((f) => f.startsWith('rewrite-'))).toEqual([])
    expect(await keysOf(ns)).toEqual({key2: COUNT})
  }, 600_000)

  it('a migration the controller fails: exit 4 with its reason; --resume creates it anew once the cause is gone', async () => {
    // One Secret whose every update the sandbox's validating webhook denies: the migrator's patch too.
    // (Created with the annotation: adding it later would be an update, which the webhook denies.)
    await ok('kubectl', ['create', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {name: 'frozen', namespace: ns, annotations: {[DENY_UPDATE_ANNOTATION]: 'frozen by the test'}},
        data: {v: Buffer.from('x').toString('base64')},
      }),
    })
    const failed = await svm(['-A', '-o', 'json'])
    expect(failed.code, failed.stderr).toBe(4)
    const result = json<RewriteJson>(failed)
    expect(result.failures).toEqual([
      {
        resource: 'secrets',
        migration: result.migrations[0]!.name,
        reason: 'MigrationFailed',
        message: expect.stringMatching(/^StorageVersionMigrationFailed: .*frozen by the test/),
      },
    ])
    expect(result.migrations[0]!.state).toBe('Failed')
    expect(failed.stderr).toMatch(/a migration failed; the run is saved in .*--resume/)

    // The cause goes; the resume makes the next attempt under the same run id.
    await ok('kubectl', ['delete', 'secret', 'frozen', '-n', ns])
    const resumed = await svm(['-A', '--resume', '-o', 'json'])
    expect(resumed.code, resumed.stderr).toBe(0)
    const after = json<RewriteJson>(resumed)
    expect(after).toMatchObject({resumed: true, failures: []})
    expect(after.migrations).toEqual([
      {resource: 'secrets', name: `${result.migrations[0]!.name}-2`, state: 'Succeeded'},
    ])
  }, 900_000)

  it('options the migrator cannot honour are refused before anything is created', async () => {
    const before = await ok('kubectl', ['get', 'storageversionmigrations', '-o', 'name'])
    for (const args of [
      ['-A', '--only-stale'],
      ['-n', ns],
      ['-A', '-l', 'a=b'],
    ]) {
      const r = await svm(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1)
    }
    expect(await ok('kubectl', ['get', 'storageversionmigrations', '-o', 'name'])).toBe(before)
  })
})
