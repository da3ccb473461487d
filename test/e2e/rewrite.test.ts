/**
 * `kubectl encryption rewrite` end to end: the built plugin against the sandbox (real etcd, the
 * API server stand-in on three nodes, the real kubectl and etcdctl). Every Secret here is created
 * under key1, then the config's write key becomes key2 on every node, so each test's namespace
 * starts with only stale values and checks what a user would: values in etcd under key2, data
 * unchanged or holding a concurrent writer's last value, counts and exit codes.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {connectCluster} from '../../src/kube/connect.js'
import type {ApiResource, KubeCluster, KubeObject} from '../../src/kube/types.js'
import {aescbcConfig, enableOnNode, MANIFEST, newKey} from './helpers/encryption-setup.js'
import {kubectl, ok, readNodeFile, run, sandbox, waitFor, writeNodeFile} from './helpers/sandbox.js'

const bin = path.resolve('bin/run.js')
const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const run_id = randomBytes(3).toString('hex')
const ns = (name: string) => `rw-${name}-${run_id}`
const SIZES: Record<string, number> = {writer: 200, kill: 1200, expire: 400, storm: 60, restart: 600, rbac: 5}

let cluster: KubeCluster
let stateHome: string
const key1 = newKey('key1')
const key2 = newKey('key2')

function env(extra: Record<string, string> = {}) {
  return {...process.env, ...sandbox().env, XDG_STATE_HOME: stateHome, CI: '1', ...extra}
}

function plugin(args: string[], extra: Record<string, string> = {}) {
  return run(process.execPath, [bin, 'rewrite', ...args], {env: {XDG_STATE_HOME: stateHome, CI: '1', ...extra}, timeoutMs: 170_000})
}

function spawnPlugin(args: string[], extra: Record<string, string> = {}): {child: ChildProcess; done: Promise<{code: number | null; stdout: string; stderr: string}>} {
  const child = spawn(process.execPath, [bin, 'rewrite', ...args], {env: env(extra)})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  return {child, done: new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))}
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({length: width}, async () => {
    while (next < items.length) await work(items[next++]!)
  }))
}

/** Raw values under a prefix, through the real etcdctl (-w json: base64 keys and values). */
async function etcdValues(prefix: string): Promise<Map<string, {value: Buffer; modRevision: number}>> {
  const out = JSON.parse(await ok('etcdctl', ['get', '--prefix', prefix, '-w', 'json'])) as {kvs?: Array<{key: string; value: string; mod_revision: number}>}
  return new Map((out.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), {value: Buffer.from(kv.value, 'base64'), modRevision: kv.mod_revision}]))
}

async function expectAllUnderKey2(namespace: string, count: number) {
  const values = await etcdValues(`/registry/secrets/${namespace}/`)
  expect(values.size).toBe(count)
  const wrong = [...values].filter(([, v]) => !v.value.subarray(0, 22).toString().startsWith('k8s:enc:aescbc:v1:key2:')).map(([k]) => k)
  expect(wrong).toEqual([])
}

async function secretsData(namespace: string): Promise<Map<string, string>> {
  const list = JSON.parse(await ok('kubectl', ['get', 'secrets', '-n', namespace, '-o', 'json'])) as {items: KubeObject[]}
  return new Map(list.items.map((s) => [s.metadata.name, Buffer.from((s.data as {v: string}).v, 'base64').toString()]))
}

const secretName = (i: number) => `s-${String(i).padStart(5, '0')}`

beforeAll(async () => {
  stateHome = mkdtempSync(path.join(tmpdir(), 'rw-e2e-state-'))
  cluster = await connectCluster({kubeconfig: sandbox().env.KUBECONFIG})
  // key1 everywhere, then the Secrets, then key2 first everywhere: every Secret below is stale.
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key1]))
  for (const [name, count] of Object.entries(SIZES)) {
    await cluster.objects.create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns(name)}})
    await pool(
      Array.from({length: count}, (_, i) => i),
      16,
      (i) =>
        cluster.objects.create(SECRETS, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {name: secretName(i), namespace: ns(name)},
          data: {v: Buffer.from(`${name}-${i}`).toString('base64'), pad: randomBytes(700).toString('base64')},
        }),
    )
  }
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key2, key1]))
  const before = await etcdValues(`/registry/secrets/${ns('writer')}/`)
  expect([...before.values()][0]!.value.subarray(0, 22).toString()).toBe('k8s:enc:aescbc:v1:key1:')
}, 600_000)

afterAll(async () => {
  for (const name of Object.keys(SIZES)) await kubectl(['delete', 'namespace', ns(name), '--wait=false'])
  // the stand-in does not cascade namespace deletion: remove the Secrets too
  for (const name of Object.keys(SIZES)) await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns(name)}/`])
  cluster?.close()
  rmSync(stateHome, {recursive: true, force: true})
})

describe('kubectl encryption rewrite (sandbox)', () => {
  it('re-encrypts every object under the new key and loses no update of a concurrent writer', async () => {
    const namespace = ns('writer')
    const latest = new Map<string, string>()
    let writing = true
    let writes = 0
    // Someone else keeps updating Secrets through the API while the rewrite runs.
    const writer = (async () => {
      while (writing) {
        const name = secretName(Math.floor(Math.random() * SIZES.writer!))
        try {
          const current = await cluster.objects.get(SECRETS, name, namespace)
          const value = `w2-${++writes}`
          await cluster.objects.replace(SECRETS, {...current, data: {...(current.data as object), v: Buffer.from(value).toString('base64')}})
          latest.set(name, value)
        } catch {
          // a 409 against the rewrite: the writer retries with another object
        }
      }
    })()
    const r = await plugin(['-n', namespace, '-o', 'json', '--concurrency', '4', '--qps', '100'])
    writing = false
    await writer
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result.totals).toMatchObject({listed: SIZES.writer, failed: 0})
    expect(result.totals.rewritten + result.totals.alreadyCurrent).toBe(SIZES.writer)
    expect(writes).toBeGreaterThan(10)
    const data = await secretsData(namespace)
    for (let i = 0; i < SIZES.writer!; i++) expect(data.get(secretName(i))).toBe(latest.get(secretName(i)) ?? `writer-${i}`)
    await expectAllUnderKey2(namespace, SIZES.writer!)
  })

  it('after SIGKILL, --resume finishes: all objects current, none lost, none written twice', async () => {
    const namespace = ns('kill')
    const before = await etcdValues(`/registry/secrets/${namespace}/`)
    const first = spawnPlugin(['-n', namespace, '--concurrency', '4', '--chunk-size', '100', '--qps', '100'])
    const stateDir = path.join(stateHome, 'kubectl-encryption')
    await waitFor('the rewrite to be well under way', async () => {
      const values = await etcdValues(`/registry/secrets/${namespace}/`)
      const done = [...values.values()].filter((v) => v.value.subarray(0, 22).toString().startsWith('k8s:enc:aescbc:v1:key2:')).length
      return done > SIZES.kill! / 4
    }, 120_000, 100)
    first.child.kill('SIGKILL')
    await first.done
    const mid = await etcdValues(`/registry/secrets/${namespace}/`)
    const doneAtKill = [...mid.values()].filter((v) => v.value.subarray(0, 22).toString().startsWith('k8s:enc:aescbc:v1:key2:')).length
    expect(doneAtKill).toBeLessThan(SIZES.kill!)
    const [checkpoint] = readdirSync(stateDir)
    expect(statSync(path.join(stateDir, checkpoint!)).mode & 0o777).toBe(0o600)

    const second = await plugin(['-n', namespace, '--resume', '-o', 'json', '--concurrency', '4'])
    expect(second.code, second.stderr).toBe(0)
    const result = JSON.parse(second.stdout)
    expect(result).toMatchObject({resumed: true, interrupted: false, totals: {listed: SIZES.kill, failed: 0}})
    await expectAllUnderKey2(namespace, SIZES.kill!)
    // none written twice: each object's mod revision moved exactly once past the start (one write),
    // i.e. no object was re-written after the resume re-listed it
    const after = await etcdValues(`/registry/secrets/${namespace}/`)
    for (const [key, v] of after) {
      expect(v.modRevision).toBeGreaterThan(before.get(key)!.modRevision)
      if (mid.get(key)!.value.subarray(0, 22).toString().startsWith('k8s:enc:aescbc:v1:key2:')) expect(v.modRevision, key).toBe(mid.get(key)!.modRevision)
    }
    // the data survived
    const data = await secretsData(namespace)
    expect([...data].filter(([name, v]) => v !== `kill-${Number(name.slice(2))}`)).toEqual([])
    // and the finished run left no checkpoint behind
    expect(readdirSync(stateDir)).toEqual([])
  })

  it('goes on after a 410 Gone in the middle of the list (etcd compaction)', async () => {
    const namespace = ns('expire')
    const r = spawnPlugin(['-n', namespace, '--chunk-size', '50', '--qps', '60', '--concurrency', '2', '--verbose', '-o', 'json'])
    // compact etcd at its current revision once the first pages are through
    await waitFor('the first pages', async () => {
      const values = await etcdValues(`/registry/secrets/${namespace}/`)
      return [...values.values()].filter((v) => v.value.subarray(0, 22).toString().includes(':key2:')).length >= 60
    }, 120_000, 100)
    const status = JSON.parse(await ok('etcdctl', ['endpoint', 'status', '-w', 'json'])) as Array<{Status: {header: {revision: number}}}>
    await ok('etcdctl', ['compaction', String(status[0]!.Status.header.revision)])
    const done = await r.done
    expect(done.code, done.stderr).toBe(0)
    expect(done.stderr).toMatch(/expired \(410\); restarted after rw-expire-\w+\/s-\d{5} with the server's continue hint/)
    expect(JSON.parse(done.stdout).totals).toMatchObject({listed: SIZES.expire, rewritten: SIZES.expire, failed: 0})
    await expectAllUnderKey2(namespace, SIZES.expire!)
  })

  it('re-reads through a 409 storm and never overwrites the newer value', async () => {
    const namespace = ns('storm')
    let storming = true
    const hot = [0, 1, 2, 3, 4].map(secretName)
    const last = new Map<string, string>()
    let n = 0
    const storm = Promise.all(
      hot.map(async (name) => {
        while (storming) {
          try {
            const current = await cluster.objects.get(SECRETS, name, namespace)
            const value = `storm-${++n}`
            await cluster.objects.replace(SECRETS, {...current, data: {...(current.data as object), v: Buffer.from(value).toString('base64')}})
            last.set(name, value)
          } catch {
            // lost a race against the rewrite; try again
          }
        }
      }),
    )
    const r = await plugin(['-n', namespace, '-o', 'json', '--concurrency', '8', '--chunk-size', '10'])
    storming = false
    await storm
    const result = JSON.parse(r.stdout)
    // documented outcome: retried conflicts; an object that never stops changing is listed as Conflict (exit 4)
    expect(result.totals.listed).toBe(SIZES.storm)
    expect(result.failures.every((f: {reason: string}) => f.reason === 'Conflict')).toBe(true)
    expect(r.code).toBe(result.failures.length > 0 ? 4 : 0)
    const data = await secretsData(namespace)
    for (const name of hot) if (last.has(name)) expect(data.get(name)).toBe(last.get(name))
    await expectAllUnderKey2(namespace, SIZES.storm!)
  })

  it('rides out an API server restart (the node kubelet restarting it) during the run', async () => {
    const namespace = ns('restart')
    const node = sandbox().nodes[0]!
    // talk to that one node, not the load balancer, so the restart is felt
    const dir = mkdtempSync(path.join(tmpdir(), 'rw-kc-'))
    const kc = parse(readFileSync(sandbox().env.KUBECONFIG!, 'utf8'))
    for (const c of kc.clusters) c.cluster.server = `https://${sandbox().nodeIps[node]}:6443`
    const kubeconfig = path.join(dir, 'config')
    writeFileSync(kubeconfig, stringify(kc), {mode: 0o600})
    const r = spawnPlugin(['-n', namespace, '--qps', '40', '--concurrency', '2', '--verbose', '-o', 'json'], {KUBECONFIG: kubeconfig})
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const manifest = await readNodeFile(node, MANIFEST)
    await writeNodeFile(node, MANIFEST, manifest + `# restarted ${Date.now()}\n`)
    const done = await r.done
    rmSync(dir, {recursive: true, force: true})
    expect(done.code, done.stderr).toBe(0)
    expect(done.stderr).toMatch(/retry \d+: .* got no response/)
    expect(JSON.parse(done.stdout).totals).toMatchObject({listed: SIZES.restart, failed: 0})
    await expectAllUnderKey2(namespace, SIZES.restart!)
  })

  it('reports an RBAC 403 as a failed listing with the reason, exit 4, nothing changed', async () => {
    const namespace = ns('rbac')
    const before = await etcdValues(`/registry/secrets/${namespace}/`)
    const r = await plugin(['-n', namespace, '--context', 'viewer@kubernetes', '-o', 'json'])
    expect(r.code).toBe(4)
    const result = JSON.parse(r.stdout)
    expect(result.failures).toEqual([expect.objectContaining({resource: 'secrets', namespace, reason: 'Forbidden', status: 403})])
    expect(result.failures[0].message).toMatch(/cannot list resource "secrets"/)
    expect(r.stderr).toMatch(/--resume/)
    const after = await etcdValues(`/registry/secrets/${namespace}/`)
    expect([...after].map(([k, v]) => [k, v.modRevision])).toEqual([...before].map(([k, v]) => [k, v.modRevision]))
  })
})
