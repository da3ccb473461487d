/**
 * `kubectl encryption rewrite` end to end: the built plugin against the sandbox (real etcd, the
 * real kube-apiserver on three nodes, the real kubectl and etcdctl). Every Secret here is created
 * under key1, then the config's write key becomes key2 on every node, so each test's namespace
 * starts with only stale values and checks what a user would: values in etcd under key2, data
 * unchanged or holding a concurrent writer's last value, counts and exit codes. Each node's manifest
 * and encryption config are restored afterwards, and everything the file created is deleted.
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
import {DENY_UPDATE_ANNOTATION, DENY_UPDATE_WEBHOOK} from '../sandbox/admission-webhook.js'
import {aescbcConfig, apiserverHash, ENC_CONFIG, enableOnNode, MANIFEST, newKey} from './helpers/encryption-setup.js'
import {sshArgs} from './helpers/plugin.js'
import {
  kubectl,
  ok,
  readNodeFile,
  run,
  sandbox,
  ssh,
  sshOk,
  waitFor,
  waitForApiserverRestart,
  writeNodeFile,
} from './helpers/sandbox.js'

const bin = path.resolve('bin/run.js')
const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const run_id = randomBytes(3).toString('hex')
const ns = (name: string) => `rw-${name}-${run_id}`
const SIZES: Record<string, number> = {
  writer: 200,
  kill: 1200,
  expire: 400,
  storm: 60,
  restart: 600,
  rbac: 5,
  fail: 20,
  dry: 20,
}
/** A namespace that never exists: an orphan's value is put under it straight into etcd. */
const GONE = ns('gone')
/** What each node had before this file: its manifest and its encryption config (undefined: none). */
const saved = new Map<string, {manifest: string; config?: string}>()

let cluster: KubeCluster
let stateHome: string
const key1 = newKey('key1')
const key2 = newKey('key2')

function env(extra: Record<string, string> = {}) {
  return {...process.env, ...sandbox().env, XDG_STATE_HOME: stateHome, CI: '1', ...extra}
}

// The config (which resources, which write key) is read from the nodes over SSH, as a user would.
function plugin(args: string[], extra: Record<string, string> = {}) {
  return run(process.execPath, [bin, 'rewrite', ...sshArgs(), ...args], {
    env: {XDG_STATE_HOME: stateHome, CI: '1', ...extra},
    timeoutMs: 170_000,
  })
}

function spawnPlugin(
  args: string[],
  extra: Record<string, string> = {},
): {child: ChildProcess; done: Promise<{code: number | null; stdout: string; stderr: string}>} {
  const child = spawn(process.execPath, [bin, 'rewrite', ...sshArgs(), ...args], {env: env(extra)})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  return {child, done: new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))}
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({length: width}, async () => {
      while (next < items.length) await work(items[next++]!)
    }),
  )
}

/** Raw values under a prefix, through the real etcdctl (-w json: base64 keys and values). */
async function etcdValues(prefix: string): Promise<Map<string, {value: Buffer; modRevision: number}>> {
  const out = JSON.parse(await ok('etcdctl', ['get', '--prefix', prefix, '-w', 'json'])) as {
    kvs?: Array<{key: string; value: string; mod_revision: number}>
  }
  return new Map(
    (out.kvs ?? []).map((kv) => [
      Buffer.from(kv.key, 'base64').toString(),
      {value: Buffer.from(kv.value, 'base64'), modRevision: kv.mod_revision},
    ]),
  )
}

const underKey = (value: Buffer, key: string) =>
  value.subarray(0, 64).toString('latin1').startsWith(`k8s:enc:aescbc:v1:${key}:`)

async function expectAllUnderKey2(namespace: string, count: number) {
  const values = await etcdValues(`/registry/secrets/${namespace}/`)
  expect(values.size).toBe(count)
  const wrong = [...values].filter(([, v]) => !underKey(v.value, 'key2')).map(([k]) => k)
  expect(wrong).toEqual([])
}

async function secretsData(namespace: string): Promise<Map<string, string>> {
  const list = JSON.parse(await ok('kubectl', ['get', 'secrets', '-n', namespace, '-o', 'json'])) as {
    items: KubeObject[]
  }
  return new Map(list.items.map((s) => [s.metadata.name, Buffer.from((s.data as {v: string}).v, 'base64').toString()]))
}

const secretName = (i: number) => `s-${String(i).padStart(5, '0')}`

beforeAll(async () => {
  stateHome = mkdtempSync(path.join(tmpdir(), 'rw-e2e-state-'))
  for (const node of sandbox().nodes) {
    const config = await ssh(node, `sudo -n cat ${ENC_CONFIG}`)
    saved.set(node, {
      manifest: await readNodeFile(node, MANIFEST),
      config: config.code === 0 ? config.stdout : undefined,
    })
  }
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
          metadata: {
            name: secretName(i),
            namespace: ns(name),
            // in "fail", one object a validating webhook will not let anyone update
            ...(name === 'fail' && i === 3
              ? {annotations: {[DENY_UPDATE_ANNOTATION]: 'secrets in this namespace are frozen'}}
              : {}),
          },
          data: {v: Buffer.from(`${name}-${i}`).toString('base64'), pad: randomBytes(700).toString('base64')},
        }),
    )
  }
  for (const node of sandbox().nodes) await enableOnNode(node, aescbcConfig([key2, key1]))
  const before = await etcdValues(`/registry/secrets/${ns('writer')}/`)
  expect(underKey([...before.values()][0]!.value, 'key1')).toBe(true)
}, 900_000)

afterAll(async () => {
  // Namespaces first, while every node can still read their values; deleting one deletes its Secrets.
  for (const name of Object.keys(SIZES)) await kubectl(['delete', 'namespace', ns(name), '--wait=false'])
  for (const name of [...Object.keys(SIZES).map(ns), GONE])
    await run('etcdctl', ['del', '--prefix', `/registry/secrets/${name}/`])
  cluster?.close()
  rmSync(stateHome, {recursive: true, force: true})
  for (const [node, was] of saved) {
    const current = await readNodeFile(node, MANIFEST).catch(() => '')
    if (was.config === undefined)
      await sshOk(node, `sudo -n sh -c 'rm -f ${ENC_CONFIG}; rmdir ${path.dirname(ENC_CONFIG)} 2>/dev/null || true'`)
    else await writeNodeFile(node, ENC_CONFIG, was.config)
    // enableOnNode always changed the manifest; writing it back restarts the API server with what it had
    if (current === was.manifest) continue
    const before = await apiserverHash(node).catch(() => '')
    await writeNodeFile(node, MANIFEST, was.manifest)
    await waitForApiserverRestart(node, before, 180_000)
  }
}, 900_000)

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
          await cluster.objects.replace(SECRETS, {
            ...current,
            data: {...(current.data as object), v: Buffer.from(value).toString('base64')},
          })
          latest.set(name, value)
        } catch {
          // a 409 against the rewrite: the writer retries with another object
        }
      }
    })()
    const r = await plugin(['-n', namespace, '-o', 'json', '--concurrency', '4', '--qps', '100', '--verify'])
    writing = false
    await writer
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result.config).toMatchObject({source: 'ssh'})
    expect(result.verify.resources).toEqual([
      {resource: 'secrets', write: 'aescbc:key2', scanned: SIZES.writer, stillStale: 0, examples: []},
    ])
    expect(result.totals).toMatchObject({listed: SIZES.writer, failed: 0})
    // Secrets are built in: listed and written back in protobuf, through the writer's 409s
    expect(result.resources).toEqual([expect.objectContaining({resource: 'secrets', encoding: 'protobuf'})])
    expect(result.totals.rewritten + result.totals.alreadyCurrent).toBe(SIZES.writer)
    expect(writes).toBeGreaterThan(10)
    const data = await secretsData(namespace)
    for (let i = 0; i < SIZES.writer!; i++)
      expect(data.get(secretName(i))).toBe(latest.get(secretName(i)) ?? `writer-${i}`)
    await expectAllUnderKey2(namespace, SIZES.writer!)
  })

  it('after SIGKILL, --resume finishes: all objects current, none lost, none written twice', async () => {
    const namespace = ns('kill')
    const before = await etcdValues(`/registry/secrets/${namespace}/`)
    const first = spawnPlugin(['-n', namespace, '--concurrency', '4', '--chunk-size', '100', '--qps', '100'])
    const stateDir = path.join(stateHome, 'kubectl-encryption')
    await waitFor(
      'the rewrite to be well under way',
      async () => {
        const values = await etcdValues(`/registry/secrets/${namespace}/`)
        const done = [...values.values()].filter((v) => underKey(v.value, 'key2')).length
        return done > SIZES.kill! / 4
      },
      120_000,
      100,
    )
    first.child.kill('SIGKILL')
    await first.done
    const mid = await etcdValues(`/registry/secrets/${namespace}/`)
    const doneAtKill = [...mid.values()].filter((v) => underKey(v.value, 'key2')).length
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
      if (underKey(mid.get(key)!.value, 'key2')) expect(v.modRevision, key).toBe(mid.get(key)!.modRevision)
    }
    // the data survived
    const data = await secretsData(namespace)
    expect([...data].filter(([name, v]) => v !== `kill-${Number(name.slice(2))}`)).toEqual([])
    // and the finished run left no checkpoint behind
    expect(readdirSync(stateDir)).toEqual([])
  })

  it('goes on after etcd compacts in the middle of the list (410 Gone, or served from the watch cache)', async () => {
    const namespace = ns('expire')
    const r = spawnPlugin([
      '-n',
      namespace,
      '--chunk-size',
      '50',
      '--qps',
      '60',
      '--concurrency',
      '2',
      '--verbose',
      '-o',
      'json',
    ])
    // compact etcd at its current revision once the first pages are through
    await waitFor(
      'the first pages',
      async () => {
        const values = await etcdValues(`/registry/secrets/${namespace}/`)
        return [...values.values()].filter((v) => underKey(v.value, 'key2')).length >= 60
      },
      120_000,
      100,
    )
    const status = JSON.parse(await ok('etcdctl', ['endpoint', 'status', '-w', 'json'])) as Array<{
      Status: {header: {revision: number}}
    }>
    await ok('etcdctl', ['compaction', String(status[0]!.Status.header.revision)])
    const done = await r.done
    expect(done.code, done.stderr).toBe(0)
    // kube-apiserver 1.34+ (ListFromCacheSnapshot) serves a continue token from its watch cache's
    // snapshots, which etcd's compaction does not touch; only a token the cache cannot serve goes to
    // etcd and gets 410. Whichever the server did, the rewrite must finish, and a 410 must be reported
    // with where the listing restarted. (The 410 logic itself: test/unit/usecases/rewrite.test.ts.)
    if (/expired \(410\)/.test(done.stderr))
      expect(done.stderr).toMatch(
        /expired \(410\); restarted after rw-expire-\w+\/s-\d{5} with the server's continue hint/,
      )
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
            await cluster.objects.replace(SECRETS, {
              ...current,
              data: {...(current.data as object), v: Buffer.from(value).toString('base64')},
            })
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
    const r = spawnPlugin(['-n', namespace, '--qps', '40', '--concurrency', '2', '--verbose', '-o', 'json'], {
      KUBECONFIG: kubeconfig,
    })
    // restart once the run is well under way (not while it reads the config and discovery)
    await waitFor(
      'the rewrite to be under way',
      async () => {
        const values = await etcdValues(`/registry/secrets/${namespace}/`)
        return [...values.values()].filter((v) => underKey(v.value, 'key2')).length >= 50
      },
      120_000,
      100,
    )
    const manifest = await readNodeFile(node, MANIFEST)
    await writeNodeFile(node, MANIFEST, manifest + `# restarted ${Date.now()}\n`)
    const done = await r.done
    rmSync(dir, {recursive: true, force: true})
    expect(done.code, done.stderr).toBe(0)
    expect(done.stderr).toMatch(/retry \d+: .* got no response/)
    expect(JSON.parse(done.stdout).totals).toMatchObject({listed: SIZES.restart, failed: 0})
    await expectAllUnderKey2(namespace, SIZES.restart!)
  })

  it('refuses when RBAC forbids listing (403): exit 3 naming the verb and resource, no checkpoint, nothing changed (issue 13 item 8)', async () => {
    const namespace = ns('rbac')
    const before = await etcdValues(`/registry/secrets/${namespace}/`)
    const r = await plugin(['-n', namespace, '--context', 'viewer@kubernetes', '-o', 'json'])
    expect(r.code, r.stderr).toBe(3)
    const result = JSON.parse(r.stdout)
    expect(result.error).toMatchObject({code: 'KUBE_FORBIDDEN', exitCode: 3})
    expect(result.error.message).toMatch(/cannot list resource "secrets"/)
    expect(r.stderr).not.toMatch(/--resume/)
    const after = await etcdValues(`/registry/secrets/${namespace}/`)
    expect([...after].map(([k, v]) => [k, v.modRevision])).toEqual([...before].map(([k, v]) => [k, v.modRevision]))
  })

  it('lists and writes Secrets in protobuf and a custom resource in JSON; --wire json sends both as JSON', async () => {
    const namespace = ns('wire')
    const group = `rw-${run_id}.example.com`
    const widgets: ApiResource = {group, version: 'v1', resource: 'widgets', kind: 'Widget', namespaced: true}
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: {name: `widgets.${group}`},
      spec: {
        group,
        scope: 'Namespaced',
        names: {plural: 'widgets', singular: 'widget', kind: 'Widget'},
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}},
          },
        ],
      },
    }
    await ok('kubectl', ['apply', '-f', '-'], {input: JSON.stringify(crd)})
    try {
      await ok('kubectl', ['wait', '--for=condition=Established', `crd/widgets.${group}`, '--timeout=60s'])
      await cluster.objects.create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}})
      for (let i = 0; i < 3; i++) {
        await cluster.objects.create(SECRETS, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {name: secretName(i), namespace},
          data: {v: Buffer.from(`wire-${i}`).toString('base64')},
        })
        // the CRD may not be served by every apiserver yet: retried until one create succeeds
        await waitFor(
          `widget w-${i} to be created`,
          () =>
            cluster.objects
              .create(widgets, {apiVersion: `${group}/v1`, kind: 'Widget', metadata: {name: `w-${i}`, namespace}})
              .then(() => true),
          30_000,
        )
      }
      const args = ['-n', namespace, '--resource', 'secrets', '--resource', `widgets.${group}`, '-o', 'json']
      for (const [extra, secretsWire] of [
        [[], 'protobuf'],
        [['--wire', 'json'], 'json'],
      ] as const) {
        const r = await plugin([...args, ...extra])
        expect(r.code, r.stderr).toBe(0)
        const result = JSON.parse(r.stdout)
        expect(result.resources).toEqual([
          expect.objectContaining({resource: 'secrets', encoding: secretsWire, listed: 3, failed: 0}),
          expect.objectContaining({resource: `widgets.${group}`, encoding: 'json', listed: 3, failed: 0}),
        ])
      }
      // what was written back is what was there
      expect([...(await secretsData(namespace)).values()].sort()).toEqual(['wire-0', 'wire-1', 'wire-2'])
    } finally {
      await kubectl(['delete', 'namespace', namespace, '--wait=false'])
      await kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false'])
    }
  })

  it('--dry-run reports what it would rewrite and changes nothing', async () => {
    const namespace = ns('dry')
    const before = await etcdValues(`/registry/secrets/${namespace}/`)
    const files = () => readdirSync(stateHome, {recursive: true}).map(String).sort()
    const filesBefore = files()
    const r = await plugin(['-n', namespace, '--dry-run', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result).toMatchObject({
      dryRun: true,
      totals: {listed: SIZES.dry, wouldRewrite: SIZES.dry, rewritten: 0, failed: 0},
    })
    const after = await etcdValues(`/registry/secrets/${namespace}/`)
    expect([...after].map(([k, v]) => [k, v.modRevision, underKey(v.value, 'key1')])).toEqual(
      [...before].map(([k, v]) => [k, v.modRevision, true]),
    )
    expect(files()).toEqual(filesBefore)
  })

  it('lists what it cannot write with the reason (webhook denial, orphan, undecryptable), exit 4; --verify names what is still stale', async () => {
    const namespace = ns('fail')
    // A value under a key that has left the config, between s-00007 and s-00008; and an orphan:
    // a plaintext Secret left in etcd under a namespace that no longer exists.
    const unreadable = `/registry/secrets/${namespace}/s-00007b`
    await ok('etcdctl', ['put', unreadable], {
      input: Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key0:'), randomBytes(64)]),
    })
    await ok('etcdctl', ['put', `/registry/secrets/${GONE}/orphan`], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {name: 'orphan', namespace: GONE, uid: '00000000-0000-0000-0000-000000000001'},
        data: {v: 'b3JwaGFu'},
      }),
    })
    const r = await plugin(['-n', namespace, '-n', GONE, '--chunk-size', '5', '-o', 'json', '--verify'])
    expect(r.code, r.stderr).toBe(4)
    const result = JSON.parse(r.stdout)
    const failures = result.failures
      .map((f: {namespace: string; name: string; reason: string}) => `${f.namespace}/${f.name}: ${f.reason}`)
      .sort()
    // An orphan's update: kube-apiserver up to 1.36 refuses it (NamespaceLifecycle, 404 namespaces "<ns>"
    // not found); from 1.37 NamespaceLifecycle lets every update through, so the orphan is rewritten.
    const minor = Number((sandbox().env.SANDBOX_KUBE_VERSION ?? 'v1.37').split('.')[1])
    const orphanRefused = minor <= 36
    const stuck = [`${namespace}/s-00003`, `${namespace}/s-00007b`, ...(orphanRefused ? [`${GONE}/orphan`] : [])].sort()
    expect(failures).toEqual(
      [
        ...(orphanRefused ? [`${GONE}/orphan: NamespaceGone`] : []),
        `${namespace}/s-00003: AdmissionDenied`,
        `${namespace}/s-00007b: Undecryptable`,
      ].sort(),
    )
    const message = (name: string) => result.failures.find((f: {name: string}) => f.name === name).message
    expect(message('s-00003')).toContain(
      `admission webhook "${DENY_UPDATE_WEBHOOK}" denied the request: secrets in this namespace are frozen`,
    )
    if (orphanRefused) expect(message('orphan')).toContain(`namespaces "${GONE}" not found`)
    // "unable to transform key …", or since 1.33 a StorageReadError naming "Key: …": the key either way
    expect(message('s-00007b')).toContain(unreadable)
    // every other object, including those after the unreadable one in its page, was rewritten
    expect(result.totals).toMatchObject({
      listed: SIZES.fail! + 2,
      rewritten: SIZES.fail! + 2 - stuck.length,
      failed: stuck.length,
    })
    const values = await etcdValues(`/registry/secrets/${namespace}/`)
    expect(
      [...values]
        .filter(([, v]) => !underKey(v.value, 'key2'))
        .map(([k]) => k)
        .sort(),
    ).toEqual([`/registry/secrets/${namespace}/s-00003`, unreadable])
    if (!orphanRefused)
      expect(
        underKey(
          (await etcdValues(`/registry/secrets/${GONE}/`)).get(`/registry/secrets/${GONE}/orphan`)!.value,
          'key2',
        ),
      ).toBe(true)
    // --verify: what etcd still holds under something other than key2, in the namespaces asked for
    expect(result.verify.resources).toEqual([
      expect.objectContaining({
        resource: 'secrets',
        write: 'aescbc:key2',
        scanned: SIZES.fail! + 2,
        stillStale: stuck.length,
      }),
    ])
    expect([...result.verify.resources[0].examples].sort()).toEqual(stuck)
    // the table names them too
    const table = await plugin(['-n', namespace, '-n', GONE])
    expect(table.code).toBe(4)
    expect(table.stdout).toMatch(new RegExp(`secrets/s-00007b -n ${namespace}\\s+Undecryptable`))
    if (orphanRefused) expect(table.stdout).toMatch(new RegExp(`secrets/orphan -n ${GONE}\\s+NamespaceGone`))
  })
})
