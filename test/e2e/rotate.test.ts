// `kubectl encryption rotate` end to end on the sandbox's three nodes: from aescbc key1 (set up by
// hand as the seed does), a dry run, a full rotation with restarts, then (automatic reload switched
// on by hand, so later tests restart nothing) a full rotation with reloads, a rotation killed
// (SIGKILL) in every stage and resumed, and a provider switch that stops before stage 6 without a
// backup confirmation, and two runs started at once (the cluster's lock lets one through). The tests share one cluster
// state and run in order, each starting from the write key the previous one left; after each, every
// Secret in etcd is under the new key (status --scan), no node's config holds the old key, and no
// key material appeared in any output. afterAll puts back manifests, /etc/kubernetes/enc,
// /etc/kubernetes/tmp, the manifests dir, the Secrets' stored bytes and the state ConfigMap.
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, parseDocument, type YAMLMap, type YAMLSeq} from 'yaml'

import {DENY_UPDATE_WEBHOOK} from '../sandbox/admission-webhook.js'
import {aescbcConfig, apiserverHash, ENC_CONFIG, enableOnNode, MANIFEST, newKey} from './helpers/encryption-setup.js'
import {json, plugin, sshArgs, spawnPlugin} from './helpers/plugin.js'
import {
  kubectl,
  ok,
  readNodeFile,
  type RunResult,
  run,
  sandbox,
  sshOk,
  waitForApiserverRestart,
  writeNodeFile,
} from './helpers/sandbox.js'

const ns = `rot-${Date.now().toString(36)}`
const STAGES = ['add-key', 'wait-add', 'promote', 'wait-promote', 'rewrite', 'remove-old']
const STATE_KEY = '/registry/configmaps/kube-system/kubectl-encryption-state'

// ---- what afterAll puts back -------------------------------------------------------------------
const savedManifests = new Map<string, string>()
/** Per node: `ls -A` of the dirs the plugin writes to, and a tar (base64) of /etc/kubernetes/enc if it existed. */
const savedListings = new Map<string, {manifests: string[]; tmp: string[]; encTar?: string}>()
let savedSecrets = new Map<string, string>()
let savedState: string | undefined
const localDirs: string[] = []

// ---- what the tests check against --------------------------------------------------------------
/** Every stdout and stderr of the plugin in this file. */
const outputs: string[] = []
/** Every key secret that was ever in a node's config (base64 as written). */
const secrets = new Set<string>()
const key1 = newKey('key1')
secrets.add(key1.secret)
const values = new Map<string, string>()

type Cfg = {
  resources: Array<{
    resources: string[]
    providers: Array<Record<string, {keys?: Array<{name: string; secret: string}>} | undefined>>
  }>
}

interface StageJson {
  stage: string
  status: string
  detail?: string
  backupDir?: string
  nodes?: Array<{
    node: string
    status: string
    files: Array<{path: string; kind: string}>
    backups: string[]
    waitedFor?: string
  }>
}
interface RotateJson {
  context: string
  dryRun: boolean
  provider: string
  newKey: string
  newKeyFingerprint?: string
  oldKey: {provider: string; name: string}
  stages: StageJson[]
  diffs: Array<{node: string; path: string; diff: string}>
  state: {status: string; stage: string; completedStages: string[]}
  localBackup?: string
  rewrite?: RewriteJson
}
/** The rewrite stage's summary, with what it said before its first write (issue 17 item 3). */
interface RewriteJson {
  rewritten: number
  estimate?: {
    resources: Array<{resource: string; objects: number | null; bytes: number | null}>
    seconds: number | null
  }
  webhooks?: Array<{kind: string; configuration: string; webhook: string; failurePolicy: string; seesNoOpWrite: string}>
  webhooksListError?: string
}
interface StateDoc {
  status: string
  stage: string
  completedStages: string[]
  provider: string
  newKey: string
  oldKey: {provider: string; name: string}
}

const nodes = () => sandbox().nodes

async function rotate(args: string[], timeoutMs = 840_000): Promise<RunResult> {
  const r = await plugin(['rotate', ...sshArgs(), ...args], {timeoutMs})
  outputs.push(r.stdout, r.stderr)
  return r
}

async function pluginLogged(args: string[]): Promise<RunResult> {
  const r = await plugin(args)
  outputs.push(r.stdout, r.stderr)
  return r
}

/** Providers of the secrets entry as `provider:key,key` strings, secrets collected on the way. */
async function configOn(node: string): Promise<{text: string; providers: string[]}> {
  const text = await readNodeFile(node, ENC_CONFIG)
  const cfg = parse(text) as Cfg
  const providers = (cfg.resources[0]?.providers ?? []).map((p) => {
    const [type, body] = Object.entries(p)[0]!
    for (const k of body?.keys ?? []) secrets.add(k.secret)
    return `${type}:${(body?.keys ?? []).map((k) => k.name).join(',')}`
  })
  return {text, providers}
}

async function readState(): Promise<StateDoc | undefined> {
  const r = await kubectl([
    'get',
    'configmap',
    '-n',
    'kube-system',
    'kubectl-encryption-state',
    '-o',
    'jsonpath={.data.rotate}',
  ])
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as StateDoc) : undefined
}

async function mirrorHashes(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const node of nodes()) out[node] = await apiserverHash(node)
  return out
}

/** The write provider and key every node has now (they must agree). */
async function currentWrite(): Promise<{provider: string; key: string}> {
  const first = (await configOn(nodes()[0]!)).providers[0]!
  const [provider, keys] = first.split(':')
  return {provider: provider!, key: keys!.split(',')[0]!}
}

/**
 * What a finished rotation must leave: every node runs one config whose secrets entry is exactly
 * [<provider>:<key>, identity:], every Secret in etcd is under that key (status --scan, exit 0),
 * the Secrets read back unchanged through the API, and the state ConfigMap says done.
 */
async function expectRotatedTo(provider: string, key: string, oldKey: string): Promise<void> {
  const configs = await Promise.all(nodes().map((n) => configOn(n)))
  for (const c of configs) {
    expect(c.providers).toEqual([`${provider}:${key}`, 'identity:'])
    expect(c.text).toBe(configs[0]!.text)
    expect(c.text).not.toMatch(new RegExp(`name: ${oldKey}\\b`))
  }
  const r = await pluginLogged(['status', ...sshArgs(), '--scan', '--resource', 'secrets', '-o', 'json'])
  const doc = json<{
    scan: {
      resources: Array<{
        resource: string
        total: number
        byProvider: Record<string, number>
        plaintext: number
        stale: number
        undecryptable: number
      }>
    }
    problems: string[]
  }>(r)
  const scanned = doc.scan.resources.find((x) => x.resource === 'secrets')!
  expect(scanned.byProvider, doc.problems.join('\n')).toEqual({[`${provider}:${key}`]: scanned.total})
  expect({plaintext: scanned.plaintext, stale: scanned.stale, undecryptable: scanned.undecryptable}).toEqual({
    plaintext: 0,
    stale: 0,
    undecryptable: 0,
  })
  expect(r.code, doc.problems.join('\n')).toBe(0)
  const list = JSON.parse(await ok('kubectl', ['get', 'secrets', '-n', ns, '-o', 'json'])) as {
    items: Array<{metadata: {name: string}; data: {v: string}}>
  }
  expect(
    Object.fromEntries(list.items.map((i) => [i.metadata.name, Buffer.from(i.data.v, 'base64').toString()])),
  ).toEqual(Object.fromEntries(values))
  expect(await readState()).toMatchObject({status: 'done', completedStages: STAGES, provider, newKey: key})
}

/** No key secret, and nothing shaped like a 32-byte base64 key, in anything the plugin printed. */
function expectNoKeyMaterial(): void {
  const all = outputs.join('\n')
  for (const s of secrets) expect(all.includes(s), 'a key secret appeared in plugin output').toBe(false)
  expect(all).not.toMatch(/[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/)
}

// ---- set-up and restore ------------------------------------------------------------------------

async function listing(node: string, dir: string): Promise<string[]> {
  const out = await sshOk(node, `sudo -n sh -c 'ls -A ${dir} 2>/dev/null || true'`)
  return out.split('\n').filter(Boolean)
}

async function etcdSecrets(): Promise<Map<string, string>> {
  const out = await ok('etcdctl', ['get', '--prefix', '/registry/secrets/', '-w', 'json'])
  const kvs = (JSON.parse(out) as {kvs?: Array<{key: string; value: string}>}).kvs ?? []
  return new Map(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), kv.value]))
}

async function etcdRaw(key: string): Promise<string | undefined> {
  const out = await ok('etcdctl', ['get', key, '-w', 'json'])
  return (JSON.parse(out) as {kvs?: Array<{value: string}>}).kvs?.[0]?.value
}

beforeAll(async () => {
  for (const node of nodes()) {
    savedManifests.set(node, await readNodeFile(node, MANIFEST))
    const encTar = (
      await sshOk(
        node,
        `sudo -n sh -c 'if [ -d /etc/kubernetes/enc ]; then tar -C /etc/kubernetes -cf - enc | base64 -w0; fi'`,
      )
    ).trim()
    savedListings.set(node, {
      manifests: await listing(node, '/etc/kubernetes/manifests'),
      tmp: await listing(node, '/etc/kubernetes/tmp'),
      encTar: encTar || undefined,
    })
  }
  savedSecrets = await etcdSecrets()
  savedState = await etcdRaw(STATE_KEY)
  // A rotation recorded by someone else would be continued instead of started: start from none.
  await run('etcdctl', ['del', STATE_KEY])
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < 6; i++) {
    const value = `value-${i}-${Math.random().toString(36).slice(2)}`
    values.set(`s${i}`, value)
    await ok('kubectl', ['create', 'secret', 'generic', `s${i}`, '-n', ns, `--from-literal=v=${value}`])
  }
  for (const node of nodes()) await enableOnNode(node, aescbcConfig([key1]))
}, 600_000)

afterAll(async () => {
  // The test Secrets go first, while every node can still read them.
  await kubectl(['delete', 'namespace', ns, '--wait=false'])
  await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns}/`])
  for (const node of nodes()) {
    const manifest = savedManifests.get(node)
    if (manifest !== undefined && (await readNodeFile(node, MANIFEST).catch(() => '')) !== manifest) {
      const before = await apiserverHash(node).catch(() => '')
      await writeNodeFile(node, MANIFEST, manifest)
      await waitForApiserverRestart(node, before, 180_000).catch(() => undefined)
    }
    const saved = savedListings.get(node)
    if (!saved) continue
    // Whatever the plugin (or a kill in the middle of a write) left: backups, dot temp files, .bak copies.
    const extraManifests = (await listing(node, '/etc/kubernetes/manifests')).filter(
      (f) => !saved.manifests.includes(f),
    )
    const extraTmp = (await listing(node, '/etc/kubernetes/tmp')).filter((f) => !saved.tmp.includes(f))
    const paths = [
      ...extraManifests.map((f) => `/etc/kubernetes/manifests/${f}`),
      ...extraTmp.map((f) => `/etc/kubernetes/tmp/${f}`),
    ]
    if (paths.length > 0) await sshOk(node, `sudo -n rm -rf ${paths.map((p) => `'${p}'`).join(' ')}`)
    if (saved.tmp.length === 0) await sshOk(node, `sudo -n sh -c 'rmdir /etc/kubernetes/tmp 2>/dev/null || true'`)
    await sshOk(node, 'sudo -n rm -rf /etc/kubernetes/enc')
    if (saved.encTar) await sshOk(node, `sudo -n sh -c 'base64 -d | tar -C /etc/kubernetes -xpf -'`, saved.encTar)
  }
  // The rewrite re-encrypted every Secret in the cluster: put the stored bytes back as they were.
  const now = await etcdSecrets()
  for (const [key, value] of savedSecrets)
    if (now.get(key) !== value) await ok('etcdctl', ['put', key], {input: Buffer.from(value, 'base64')})
  for (const key of now.keys()) if (!savedSecrets.has(key)) await ok('etcdctl', ['del', key])
  if (savedState === undefined) await run('etcdctl', ['del', STATE_KEY])
  else await ok('etcdctl', ['put', STATE_KEY], {input: Buffer.from(savedState, 'base64')})
  for (const dir of localDirs) rmSync(dir, {recursive: true, force: true})
}, 900_000)

// ---- the tests ---------------------------------------------------------------------------------

// Each config stage restarts (or reloads) three apiservers one after the other: minutes on a busy machine.
describe('kubectl encryption rotate', {timeout: 900_000}, () => {
  it('--dry-run: the plan and a diff per node (keys masked), nothing changed', async () => {
    const before = await Promise.all(nodes().map((n) => readNodeFile(n, ENC_CONFIG)))
    const hashes = await mirrorHashes()
    const r = await rotate(['--dry-run', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = json<RotateJson>(r)
    // new keys are named key-<UTC time>, never a reused counter (issue 13 item 12)
    expect(doc).toMatchObject({
      dryRun: true,
      provider: 'aescbc',
      newKey: expect.stringMatching(/^key-\d{8}T\d{6}Z$/),
      oldKey: {provider: 'aescbc', name: 'key1'},
    })
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(['add-key:planned'])
    expect(doc.stages[0]!.nodes!.map((n) => `${n.node}:${n.status}`)).toEqual(nodes().map((n) => `${n}:planned`))
    expect(new Set(doc.diffs.map((d) => d.node))).toEqual(new Set(nodes()))
    const configDiff = doc.diffs.find((d) => d.path === ENC_CONFIG)!.diff
    expect(configDiff).toMatch(new RegExp(`^\\+\\s+- name: ${doc.newKey}$`, 'm'))
    expect(configDiff).toMatch(/^\+\s+secret: <redacted/m)
    expect(await Promise.all(nodes().map((n) => readNodeFile(n, ENC_CONFIG)))).toEqual(before)
    expect(await mirrorHashes()).toEqual(hashes)
    expect(await readState()).toBeUndefined()
    expectNoKeyMaterial()
  })

  it('without --yes and without a terminal: refused (exit 3), nothing changed', async () => {
    const before = await Promise.all(nodes().map((n) => readNodeFile(n, ENC_CONFIG)))
    const r = await rotate([])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('--yes')
    expect(await Promise.all(nodes().map((n) => readNodeFile(n, ENC_CONFIG)))).toEqual(before)
    expect(await readState()).toBeUndefined()
  })

  it('rotates key1 -> a new key on every node with restarts, six stages, results per node and stage', async () => {
    const hashes = await mirrorHashes()
    const r = await rotate(['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = json<RotateJson>(r)
    expect(doc).toMatchObject({
      provider: 'aescbc',
      newKey: expect.stringMatching(/^key-\d{8}T\d{6}Z$/),
      oldKey: {provider: 'aescbc', name: 'key1'},
      state: {status: 'done', completedStages: STAGES},
    })
    expect(doc.newKeyFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(STAGES.map((s) => `${s}:done`))
    for (const stage of ['add-key', 'promote', 'remove-old']) {
      const s = doc.stages.find((x) => x.stage === stage)!
      expect(s.nodes!.map((n) => `${n.node}:${n.status}:${n.waitedFor}`)).toEqual(
        nodes().map((n) => `${n}:changed:restart`),
      )
      for (const n of s.nodes!)
        expect(n.backups.every((b) => b.startsWith('/etc/kubernetes/tmp/kubectl-encryption-'))).toBe(true)
    }
    expect(doc.stages.find((s) => s.stage === 'rewrite')!.detail).toMatch(/\d+ object\(s\) of secrets rewritten/)
    // before the rewrite stage wrote anything: the sandbox's deny-update webhook (UPDATE of */*) and the estimate
    expect(doc.rewrite?.webhooks).toContainEqual(
      expect.objectContaining({
        kind: 'validating',
        webhook: DENY_UPDATE_WEBHOOK,
        failurePolicy: 'Fail',
        seesNoOpWrite: 'some',
      }),
    )
    // stored bytes only once the restarted API servers have counted them (about a minute): maybe not yet
    const estimated = doc.rewrite!.estimate!.resources[0]!
    expect(doc.rewrite?.estimate?.resources).toEqual([
      {resource: 'secrets', objects: expect.any(Number), bytes: estimated.bytes === null ? null : expect.any(Number)},
    ])
    expect(estimated.bytes === null || estimated.bytes > 0, String(estimated.bytes)).toBe(true)
    const warned = r.stderr.indexOf(`Warning: validating admission webhook ${DENY_UPDATE_WEBHOOK} `)
    expect(warned, r.stderr).toBeGreaterThanOrEqual(0)
    expect(
      r.stderr.search(
        new RegExp(
          `Estimate: ${estimated.objects!.toLocaleString('en-US')} objects ${estimated.bytes === null ? '' : '\\(about .* stored\\) '}in 1 resource`,
        ),
      ),
      r.stderr,
    ).toBeGreaterThan(warned)
    const after = await mirrorHashes()
    for (const node of nodes()) expect(after[node]).not.toBe(hashes[node])
    await expectRotatedTo('aescbc', doc.newKey, 'key1')
    expectNoKeyMaterial()
  })

  it('with automatic reload: no apiserver restarts, the reload metrics are awaited', async () => {
    // Switch automatic reload on by hand (flag, and a short poll interval through the sandbox's SANDBOX_ENCRYPTION_RELOAD_INTERVAL), one node at a time.
    for (const node of nodes()) {
      const before = await apiserverHash(node)
      const doc = parseDocument(await readNodeFile(node, MANIFEST))
      ;(doc.getIn(['metadata', 'annotations']) as YAMLMap | undefined)?.delete('kubectl-encryption/config-hash')
      const container = (doc.getIn(['spec', 'containers']) as YAMLSeq).items[0] as YAMLMap
      ;(container.get('command') as YAMLSeq).add(doc.createNode('--encryption-provider-config-automatic-reload=true'))
      container.set('env', doc.createNode([{name: 'SANDBOX_ENCRYPTION_RELOAD_INTERVAL', value: '500ms'}]))
      await writeNodeFile(node, MANIFEST, doc.toString())
      await waitForApiserverRestart(node, before, 120_000)
    }
    const from = await currentWrite()
    const hashes = await mirrorHashes()
    const r = await rotate(['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = json<RotateJson>(r)
    for (const stage of ['add-key', 'promote', 'remove-old']) {
      const s = doc.stages.find((x) => x.stage === stage)!
      expect(s.nodes!.map((n) => `${n.node}:${n.status}:${n.waitedFor}`)).toEqual(
        nodes().map((n) => `${n}:changed:reload`),
      )
      expect(s.nodes!.flatMap((n) => n.files.map((f) => f.kind))).toEqual(nodes().map(() => 'config'))
    }
    expect(await mirrorHashes()).toEqual(hashes)
    await expectRotatedTo(from.provider, doc.newKey, from.key)
    expectNoKeyMaterial()
  })
  it('killed (SIGKILL) in every stage and resumed each time: the same end state as an uninterrupted run', async () => {
    const from = await currentWrite()
    let newKey: string | undefined
    let newSecret: string | undefined
    const secretOf = async (node: string, name: string) =>
      (parse(await readNodeFile(node, ENC_CONFIG)) as Cfg).resources[0]!.providers.flatMap(
        (p) => Object.values(p)[0]?.keys ?? [],
      ).find((k) => k.name === name)?.secret
    for (const stage of STAGES) {
      // Config stages are killed half way through the nodes (the first node changed, the others not);
      // the others as soon as the stage has started.
      const trigger = ['add-key', 'promote', 'remove-old'].includes(stage)
        ? `${nodes()[0]}: changed`
        : `stage ${stage}: start`
      const {child, done} = spawnPlugin(['rotate', ...sshArgs(), '--yes', '--backup-confirmed', '--verbose'])
      let seen = ''
      let killed = false
      child.stderr!.on('data', (c: Buffer) => {
        seen += c.toString()
        const at = seen.indexOf(`stage ${stage}: start`)
        if (!killed && at >= 0 && seen.indexOf(trigger, at) >= 0) {
          killed = true
          child.kill('SIGKILL')
        }
      })
      const r = await done
      outputs.push(r.stdout, r.stderr)
      expect(killed, `never reached "${trigger}" in stage ${stage}: ${r.stderr}`).toBe(true)
      const state = (await readState())!
      // Killed inside the stage: recorded as running, not as done; the new key never changes.
      expect(state).toMatchObject({
        status: 'in-progress',
        stage,
        completedStages: STAGES.slice(0, STAGES.indexOf(stage)),
      })
      newKey ??= state.newKey
      expect(state.newKey).toBe(newKey)
      if (stage === 'add-key') {
        // Half way: the first node has the new key second, the last node not yet.
        expect((await configOn(nodes()[0]!)).providers[0]).toBe(`${from.provider}:${from.key},${newKey}`)
        expect((await configOn(nodes()[2]!)).providers[0]).toBe(`${from.provider}:${from.key}`)
        newSecret = await secretOf(nodes()[0]!, newKey)
      }
      if (stage === 'wait-add') {
        // Resume this one stage by name: it runs alone and is recorded.
        const one = await rotate(['--stage', 'wait-add', '--yes', '-o', 'json'])
        expect(one.code, one.stderr).toBe(0)
        const doc = json<RotateJson>(one)
        expect(doc.stages.filter((s) => s.status !== 'already-done').map((s) => `${s.stage}:${s.status}`)).toEqual([
          'wait-add:done',
        ])
        expect(doc.state).toMatchObject({status: 'in-progress', completedStages: ['add-key', 'wait-add']})
        const status = await pluginLogged(['status', ...sshArgs(), '-o', 'json'])
        expect(json<{rotation?: {stage: string; status: string; next: string}}>(status).rotation).toMatchObject({
          status: 'in-progress',
          next: 'kubectl encryption rotate',
        })
      }
    }
    const r = await rotate(['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = json<RotateJson>(r)
    expect(doc.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      ...STAGES.slice(0, 5).map((s) => `${s}:already-done`),
      'remove-old:done',
    ])
    expect(doc.newKey).toBe(newKey)
    await expectRotatedTo(from.provider, newKey!, from.key)
    expect(await secretOf(nodes()[2]!, newKey!)).toBe(newSecret)
    expectNoKeyMaterial()
  })

  it('switches provider aescbc -> secretbox; stage 6 is refused (exit 3) until a backup is confirmed; --backup-dir gets the new config 0600', async () => {
    const from = await currentWrite()
    const r = await rotate(['--yes', '--provider', 'secretbox', '-o', 'json'])
    expect(r.code, r.stderr).toBe(3)
    expect(json<{error: {code: string}}>(r).error.code).toBe('BACKUP_NOT_CONFIRMED')
    expect(r.stderr).toContain('--backup-confirmed')
    const state = (await readState())!
    expect(state).toMatchObject({
      status: 'failed',
      stage: 'remove-old',
      provider: 'secretbox',
      completedStages: STAGES.slice(0, 5),
    })
    // everything is written with the new key, the old one is still there to read old backups
    for (const node of nodes())
      expect((await configOn(node)).providers).toEqual([
        `secretbox:${state.newKey}`,
        `${from.provider}:${from.key}`,
        'identity:',
      ])
    const dir = mkdtempSync(join(tmpdir(), 'rotate-backup-'))
    localDirs.push(dir)
    const out = join(dir, 'enc')
    const done = await rotate(['--yes', '--backup-dir', out, '-o', 'json'])
    expect(done.code, done.stderr).toBe(0)
    const doc = json<RotateJson>(done)
    expect(doc.localBackup).toMatch(new RegExp(`^${out}/`))
    expect(statSync(doc.localBackup!).mode & 0o777).toBe(0o600)
    expect(readFileSync(doc.localBackup!, 'utf8')).toBe(await readNodeFile(nodes()[0]!, ENC_CONFIG))
    await expectRotatedTo('secretbox', state.newKey, from.key)
    expectNoKeyMaterial()
  })

  it('two runs at once: one takes the lock and proceeds, the other exits 3 naming it; status shows the lock; SIGTERM gives it back', async () => {
    const from = await currentWrite()
    const args = ['rotate', ...sshArgs(), '--stage', 'add-key', '--yes', '--verbose', '-o', 'json']
    const runs = [spawnPlugin(args), spawnPlugin(args)]
    // The run that gets as far as changing nodes is paused there (SIGSTOP), so the other one surely
    // meets its lock and `status` can show it; then it goes on (SIGCONT).
    let winner: number | undefined
    runs.forEach((r, i) => {
      let seen = ''
      r.child.stderr!.on('data', (c: Buffer) => {
        seen += c.toString()
        if (winner === undefined && seen.includes('stage add-key: start')) {
          winner = i
          r.child.kill('SIGSTOP')
        }
      })
    })
    try {
      const first = await Promise.race(runs.map((r, i) => r.done.then((res) => ({i, res}))))
      outputs.push(first.res.stdout, first.res.stderr)
      expect(first.res.code, first.res.stderr).toBe(3)
      for (let t = 0; winner === undefined && t < 600; t++) await new Promise((resolve) => setTimeout(resolve, 200))
      expect(winner, 'the other run never started a stage').toBe(1 - first.i)
      const holderPid = runs[winner!]!.child.pid
      const refused = json<{error: {code: string; message: string; hint: string}}>(first.res)
      expect(refused.error.code).toBe('OPERATION_LOCKED')
      expect(refused.error.message).toMatch(
        new RegExp(`rotate by \\S+@\\S+ pid ${holderPid}, since \\d{4}-\\d\\d-\\d\\dT`),
      )
      expect(first.res.stderr).toMatch(/^hint: Wait until it finishes/m)
      const status = await pluginLogged(['status', ...sshArgs(), '-o', 'json'])
      const doc = json<{
        lock?: {holder: string; operation: string; since: string; stale: boolean}
        rotation?: {stage: string; status: string}
      }>(status)
      expect(doc.lock).toMatchObject({
        holder: expect.stringMatching(new RegExp(` pid ${holderPid}$`)),
        operation: 'rotate',
        stale: false,
      })
      expect(doc.rotation).toMatchObject({stage: 'add-key', status: 'in-progress'})
      const table = await pluginLogged(['status', ...sshArgs()])
      expect(table.stdout).toMatch(
        new RegExp(`^Lock:\\s+held by \\S+ pid ${holderPid} for rotate since ${doc.lock!.since}$`, 'm'),
      )
    } finally {
      for (const r of runs) r.child.kill('SIGCONT')
    }
    const done = await runs[winner!]!.done
    outputs.push(done.stdout, done.stderr)
    expect(done.code, done.stderr).toBe(0)
    const result = json<RotateJson>(done)
    expect(result.stages.filter((s) => s.status !== 'already-done').map((s) => `${s.stage}:${s.status}`)).toEqual([
      'add-key:done',
    ])
    // As the one run left it: one new key, second, on every node; the state says add-key; no lock left.
    const configs = await Promise.all(nodes().map((n) => configOn(n)))
    for (const c of configs) expect(c.providers).toEqual([`${from.provider}:${from.key},${result.newKey}`, 'identity:'])
    expect(await readState()).toMatchObject({
      status: 'in-progress',
      stage: 'add-key',
      completedStages: ['add-key'],
      newKey: result.newKey,
    })
    expect(json<{lock?: unknown}>(await pluginLogged(['status', ...sshArgs(), '-o', 'json'])).lock).toBeUndefined()

    // SIGTERM in the middle of a stage: the stage in progress is finished (or stopped at a safe point),
    // the run stops there with exit 4 and says where, and the lock is given back before the process
    // exits; the state names where the next run starts.
    const {child, done: terminated} = spawnPlugin(['rotate', ...sshArgs(), '--stage', 'wait-add', '--yes', '--verbose'])
    let seen = ''
    let signalled = false
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString()
      // Once: a second signal means "stop at once" (exit 130), which leaves the lock to expire.
      if (!signalled && seen.includes('stage wait-add: start')) {
        signalled = true
        child.kill('SIGTERM')
      }
    })
    const t = await terminated
    outputs.push(t.stdout, t.stderr)
    expect(json<{lock?: unknown}>(await pluginLogged(['status', ...sshArgs(), '-o', 'json'])).lock).toBeUndefined()
    if (t.code === 0) {
      // The one stage asked for had nothing left to wait for and finished before the signal was acted on.
      expect((await readState())?.completedStages).toEqual(['add-key', 'wait-add'])
    } else {
      // A wait changes nothing: it ends where it waits, says so (exit 4) and gives the lock back.
      expect(t.code, t.stderr).toBe(4)
      expect(t.stderr).toMatch(/interrupted: stopped at stage wait-add.*; run the same command to continue/)
      expect(await readState()).toMatchObject({status: 'in-progress', stage: 'wait-add', completedStages: ['add-key']})
    }
    expectNoKeyMaterial()
  })
})
