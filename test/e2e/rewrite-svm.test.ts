/**
 * `kubectl encryption rewrite --engine svm` end to end: the built plugin hands the rewrite to the
 * sandbox's own storage-version migrator (kube-controller-manager v1.37, storagemigration.k8s.io/v1)
 * and follows it. The config encrypts Secrets and ConfigMaps; both are created under key1, then key2
 * becomes the write key on every node, so the proof is what a user would check: `status --scan`
 * finds none stale and every value in etcd now starts with key2's prefix. Also: a
 * migration the controller fails (a validating webhook denies one object's patch) gives exit 4 with
 * the controller's reason and --resume creates it anew once the cause is gone; a run killed with
 * SIGKILL is picked up by --resume, which follows the same migration; with storagemigration.k8s.io
 * switched off on every apiserver (--runtime-config, as an operator could have it) the run stops with
 * exit 3 and the hint, having created and written nothing. The controller can take a
 * minute or more before it acts on a new migration, so every wait here is on a condition.
 * The control plane is restored afterwards (every Secret decrypted first), and everything created deleted.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {parseDocument, type YAMLSeq} from 'yaml'

import {DENY_UPDATE_ANNOTATION} from '../sandbox/admission-webhook.js'
import {
  expectNoKeyMaterial,
  restoreControlPlane,
  saveControlPlane,
  type SavedControlPlane,
} from './helpers/control-plane-state.js'
import {aescbcConfig, apiserverHash, enableOnNode, MANIFEST, newKey} from './helpers/encryption-setup.js'
import {json, plugin, spawnPlugin, sshArgs} from './helpers/plugin.js'
import {
  kubectl,
  ok,
  readNodeFile,
  run,
  sandbox,
  waitFor,
  waitForApiserverRestart,
  writeNodeFile,
} from './helpers/sandbox.js'
import {etcdFlags} from '../sandbox/etcd-flags.js'

const ns = `rw-svm-${randomBytes(3).toString('hex')}`
const COUNT = 30
const CONFIGMAPS = 10
const RESOURCES = ['secrets', 'configmaps']
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

interface StatusJson {
  scan?: {resources: Array<{resource: string; total: number; stale: number; undecryptable: number}>}
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

async function keysOf(namespace: string, resource = 'secrets'): Promise<Record<string, number>> {
  const count: Record<string, number> = {}
  for (const value of (await etcdValues(`/registry/${resource}/${namespace}/`)).values()) {
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

/** `status --scan` (etcd read over SSH, as a user would run it): stale and total per resource. */
async function scanned(): Promise<Record<string, {total: number; stale: number; undecryptable: number}>> {
  const r = await plugin(['status', '--scan', ...sshArgs(), '-o', 'json'])
  // exit 5 while values are stale; 0 once none are
  expect([0, 5], r.stderr).toContain(r.code)
  const resources = json<StatusJson>(r).scan!.resources
  return Object.fromEntries(
    RESOURCES.map((name) => {
      const found = resources.find((x) => x.resource === name)
      expect(found, `status --scan reports ${name}`).toBeDefined()
      return [name, {total: found!.total, stale: found!.stale, undecryptable: found!.undecryptable}]
    }),
  )
}

/** The kube-apiserver manifest with one more command-line flag. */
function withApiserverFlag(manifest: string, flag: string): string {
  const doc = parseDocument(manifest)
  ;(doc.getIn(['spec', 'containers', 0, 'command']) as YAMLSeq).add(doc.createNode(flag))
  return doc.toString()
}

beforeAll(async () => {
  stateHome = mkdtempSync(path.join(tmpdir(), 'rw-svm-state-'))
  previousStateHome = process.env.XDG_STATE_HOME
  process.env.XDG_STATE_HOME = stateHome
  saved = await saveControlPlane()
  // key1 everywhere, then the Secrets, then key2 first everywhere: every Secret below is stale.
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key1], true, RESOURCES))
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < COUNT; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `s-${i}`, '-n', ns, `--from-literal=v=${ns}-${i}`])
  // the ConfigMaps in one request (the namespace's kube-root-ca.crt is there too)
  await ok('kubectl', ['create', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({length: CONFIGMAPS}, (_, i) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {name: `c-${i}`, namespace: ns},
        data: {v: `${ns}-${i}`},
      })),
    }),
  })
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key2, key1], true, RESOURCES))
  expect(await keysOf(ns)).toEqual({key1: COUNT})
  expect((await keysOf(ns, 'configmaps')).key1).toBeGreaterThanOrEqual(CONFIGMAPS)
}, 900_000)

afterEach(async () => {
  await expectNoKeyMaterial()
})

afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false'])
  rmSync(stateHome, {recursive: true, force: true})
  if (previousStateHome === undefined) delete process.env.XDG_STATE_HOME
  else process.env.XDG_STATE_HOME = previousStateHome
  try {
    await restoreControlPlane(saved)
  } finally {
    // The plugin's migrations are its record in the cluster; the test's go with it (after the restore:
    // the last test leaves storagemigration.k8s.io switched off until the manifests are put back).
    await kubectl(['delete', 'storageversionmigrations', '-l', 'app.kubernetes.io/managed-by=kubectl-encryption'])
  }
}, 900_000)

describe('kubectl encryption rewrite --engine svm (sandbox)', () => {
  it('the cluster migrator rewrites every Secret and ConfigMap (-A): status --scan finds none stale, etcd holds them under the new key, --verify agrees', async () => {
    const before = await scanned()
    expect(before.secrets!.stale).toBeGreaterThanOrEqual(COUNT)
    expect(before.configmaps!.stale).toBeGreaterThanOrEqual(CONFIGMAPS)
    // etcd read directly with the sandbox's client certificate (exec and ssh: cluster-checks.test.ts);
    // no --resource: the two resources the cluster's config lists, read over SSH
    const env = sandbox().env
    const r = await svm(['-A', '-o', 'json', '--verify', ...etcdFlags(env)])
    expect(r.code, r.stderr).toBe(0)
    const result = json<RewriteJson>(r)
    expect(result.engine).toBe('svm')
    expect(result.failures).toEqual([])
    // one migration per resource, one run id
    expect(result.migrations).toEqual([
      {resource: 'secrets', name: expect.stringMatching(/-secrets$/), state: 'Succeeded'},
      {resource: 'configmaps', name: expect.stringMatching(/-configmaps$/), state: 'Succeeded'},
    ])
    expect(runIdOf(result.migrations[1]!.name)).toBe(runIdOf(result.migrations[0]!.name))
    // the namespace's stale values at least (other namespaces may hold more)
    expect(result.totals.rewritten).toBeGreaterThanOrEqual(COUNT + CONFIGMAPS)
    expect(result.totals.rewritten + result.totals.alreadyCurrent).toBe(result.totals.listed)
    expect(result.verify?.resources).toEqual([
      expect.objectContaining({resource: 'secrets', write: 'aescbc:key2', stillStale: 0}),
      expect.objectContaining({resource: 'configmaps', write: 'aescbc:key2', stillStale: 0}),
    ])
    // the scan a user runs afterwards: nothing stale, nothing unreadable, nothing lost
    const after = await scanned()
    expect(after).toEqual({
      secrets: {total: before.secrets!.total, stale: 0, undecryptable: 0},
      configmaps: {total: before.configmaps!.total, stale: 0, undecryptable: 0},
    })
    expect(await keysOf(ns)).toEqual({key2: COUNT})
    expect(Object.keys(await keysOf(ns, 'configmaps'))).toEqual(['key2'])
    // data unchanged
    const data = JSON.parse(await ok('kubectl', ['get', 'secret', 's-7', '-n', ns, '-o', 'json'])) as {
      data: {v: string}
    }
    expect(Buffer.from(data.data.v, 'base64').toString()).toBe(`${ns}-7`)
    expect((await ok('kubectl', ['get', 'configmap', 'c-3', '-n', ns, '-o', 'jsonpath={.data.v}'])).trim()).toBe(
      `${ns}-3`,
    )
    // the migrations are there for `kubectl get`, Succeeded as the controller set them
    const migrations = await migrationsOfRun(runIdOf(result.migrations[0]!.name))
    expect(migrations).toHaveLength(2)
    for (const m of migrations)
      expect(m.conditions).toContainEqual(expect.objectContaining({type: 'Succeeded', status: 'True'}))
  }, 600_000)

  it('after SIGKILL, --resume follows the same migration to the end (and creates no other)', async () => {
    const known = new Set(await migrationNames())
    // Secrets only from here on: one migration per run keeps the controller's share of the time small.
    const first = spawnPlugin(['rewrite', '--engine', 'svm', '-A', '--resource', 'secrets', ...sshArgs()])
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

    const second = await plugin(
      ['rewrite', '--engine', 'svm', '-A', '--resource', 'secrets', '--resume', '-o', 'json', ...sshArgs()],
      {timeoutMs: 420_000},
    )
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
    const failed = await svm(['-A', '--resource', 'secrets', '-o', 'json'])
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
    const resumed = await svm(['-A', '--resource', 'secrets', '--resume', '-o', 'json'])
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

  // Last: the apiservers keep the flag until afterAll puts the saved manifests back.
  it('storagemigration.k8s.io not served (switched off on every apiserver): exit 3 with the hint; nothing created or written', async () => {
    // kube-apiserver 1.37 serves storagemigration.k8s.io/v1 by default and v1beta1 only on request
    // (pkg/controlplane/instance.go); --runtime-config turns v1 off, so the group is not served at all.
    for (const node of sandbox().nodes) {
      const hash = await apiserverHash(node)
      const manifest = await readNodeFile(node, MANIFEST)
      await writeNodeFile(
        node,
        MANIFEST,
        withApiserverFlag(manifest, '--runtime-config=storagemigration.k8s.io/v1=false'),
      )
      await waitForApiserverRestart(node, hash, 180_000)
    }
    // what kubectl sees: the group is gone from discovery
    expect((await ok('kubectl', ['api-versions'])).split('\n')).not.toContainEqual(
      expect.stringMatching(/^storagemigration\.k8s\.io\//),
    )
    // what is stored, read from etcd directly (the API cannot list migrations now)
    const stored = async () => ({
      migrations: [...(await etcdValues('/registry/storageversionmigrations/')).keys()],
      secrets: await etcdValues(`/registry/secrets/${ns}/`),
      configmaps: await etcdValues(`/registry/configmaps/${ns}/`),
    })
    const before = await stored()
    expect(before.migrations.length).toBeGreaterThan(0) // the earlier tests' (the prefix is right)

    for (const output of [[], ['-o', 'json']]) {
      const r = await svm(['-A', ...output])
      expect(r.code, r.stderr).toBe(3)
      const [error, hint, ...more] = r.stderr.trimEnd().split('\n')
      expect(error).toBe(
        'error: the server does not serve storagemigration.k8s.io (StorageVersionMigration); --engine svm cannot run',
      )
      // the version, the feature gate and the runtime-config
      expect(hint).toMatch(/^hint: Kubernetes 1\.37\+ serves storagemigration\.k8s\.io\/v1 /)
      expect(hint).toContain('--runtime-config=storagemigration.k8s.io/v1=false')
      expect(hint).toContain(
        '--feature-gates=StorageVersionMigrator=true --runtime-config=storagemigration.k8s.io/v1beta1=true',
      )
      expect(hint).toContain('--engine client')
      expect(more).toEqual([])
      if (output.length === 0) expect(r.stdout).toBe('')
      else expect(json<{error: unknown}>(r).error).toMatchObject({code: 'SVM_NOT_SERVED', exitCode: 3})
    }
    expect(await stored()).toEqual(before)
    // no checkpoint either: there is nothing to resume
    expect(readdirSync(path.join(stateHome, 'kubectl-encryption')).filter((f) => f.startsWith('rewrite-'))).toEqual([])
  }, 600_000)
})
