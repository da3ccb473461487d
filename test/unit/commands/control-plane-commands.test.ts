// enable, rotate and decrypt-all as the user runs them (the real command classes and withControlPlane)
// over the fake nodes of fake-control-plane.ts (connectControlPlane replaced): a run that fails half way
// still reports what it did, and the cluster's lock keeps two runs apart.
import {Errors} from '@oclif/core'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import {localLeaseClock} from '../../../src/cli/cluster-lock.js'
import type {KubeCluster} from '../../../src/kube/types.js'
import {enableEncryption} from '../../../src/usecases/enable.js'
import {fakeControlPlane} from '../usecases/fake-control-plane.js'

/** Key names are `key-<UTC time>` (issue 13 item 12); the fake control plane's clock is fixed. */
const K2 = 'key-20261127T210000Z-2'

let cp: ReturnType<typeof fakeControlPlane>

vi.mock('../../../src/changes/connect.js', () => ({
  connectControlPlane: async () => {
    const cluster = {
      context: {
        contextName: 'fake-ctx',
        cluster: 'fake',
        user: 'admin',
        server: 'https://127.0.0.1:6443',
        namespace: 'default',
        files: [],
      },
      objects: cp.objects,
      close: () => {},
    } as unknown as KubeCluster
    return {cluster, deps: {...cp.deps, onEvent: undefined}}
  },
}))

const root = new URL('../../../', import.meta.url).pathname

/** Runs a command class in this process; stdout, stderr and the exit code as the user sees them. */
async function run(command: {run(argv: string[], opts: {root: string}): Promise<unknown>}, argv: string[]) {
  let stdout = ''
  let stderr = ''
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true))
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true))
  let code = 0
  try {
    await command.run(argv, {root})
  } catch (error) {
    if (!(error instanceof Errors.ExitError)) throw error
    code = error.oclif.exit ?? 1
  } finally {
    out.mockRestore()
    err.mockRestore()
  }
  return {code, stdout, stderr}
}

beforeEach(() => {
  cp = fakeControlPlane()
})

afterEach(() => {
  process.exitCode = undefined
})

describe('a control-plane command that fails half way keeps its record', {timeout: 60_000}, () => {
  it('rotate -o json: a rollout failing on node 2 shows node 1 changed, node 2 rolled back, node 3 untouched; exit 6', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    cp.waiter.broken.add('cp-2')
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const r = await run(Rotate, ['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code).toBe(6)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({
      context: 'fake-ctx',
      provider: 'aescbc',
      newKey: K2,
      state: {status: 'failed', stage: 'add-key', completedStages: []},
    })
    expect(doc.error).toMatchObject({code: 'NODE_ROLLED_BACK', exitCode: 6})
    expect(doc.error.message).toContain('cp-2')
    expect(doc.stages.map((s: {stage: string; status: string}) => `${s.stage}:${s.status}`)).toEqual(['add-key:failed'])
    const nodes = doc.stages[0].nodes as Array<{node: string; status: string; backups: string[]}>
    expect(nodes.map((n) => `${n.node}:${n.status}`)).toEqual(['cp-1:changed', 'cp-2:rolled-back', 'cp-3:not-reached'])
    expect(nodes[1]!.backups.length).toBeGreaterThan(0)
    expect(doc.stages[0].backupDir).toMatch(/^\/etc\/kubernetes\/tmp\/kubectl-encryption-/)
    // the error line still goes to stderr
    expect(r.stderr).toMatch(/^error: Node cp-2 did not take the change/m)
  })

  it('rotate (table): the partial table on stdout, then the error on stderr; exit 6', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    cp.waiter.broken.add('cp-2')
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const r = await run(Rotate, ['--yes', '--backup-confirmed'])
    expect(r.code).toBe(6)
    expect(r.stdout).toMatch(/^State:\s+failed \(last stage: add-key\)$/m)
    expect(r.stdout).toMatch(/^add-key\s+failed\s+Node cp-2 did not take the change/m)
    expect(r.stdout).toMatch(/^cp-1\s+changed/m)
    expect(r.stdout).toMatch(/^cp-2\s+rolled-back/m)
    expect(r.stdout).toMatch(/^cp-3\s+not-reached/m)
    expect(r.stderr).toMatch(/^error: Node cp-2 did not take the change/m)
    expect(r.stderr).toMatch(/^hint: /m)
  })

  it('enable -o yaml: the nodes so far with the error; the summary line is not claimed in table mode', async () => {
    cp.waiter.broken.add('cp-3')
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const {parse} = await import('yaml')
    const r = await run(Enable, ['--yes', '-o', 'yaml'])
    expect(r.code).toBe(6)
    const doc = parse(r.stdout)
    expect(doc.nodes.map((n: {node: string; status: string}) => `${n.node}:${n.status}`)).toEqual([
      'cp-1:changed',
      'cp-2:changed',
      'cp-3:rolled-back',
    ])
    expect(doc).toMatchObject({context: 'fake-ctx', dryRun: false, error: {code: 'NODE_ROLLED_BACK', exitCode: 6}})
    const table = await run(Enable, ['--yes'])
    expect(table.code).toBe(6)
    expect(table.stdout).toMatch(/^cp-3\s+rolled-back/m)
    expect(table.stdout).not.toContain('Encryption is enabled on every node')
  })

  it('decrypt-all -o json: identity-first failing on node 2 keeps node 1 as changed; exit 6', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    cp.waiter.broken.add('cp-2')
    const {default: DecryptAll} = await import('../../../src/commands/decrypt-all.js')
    const r = await run(DecryptAll, ['--yes', '-o', 'json'])
    expect(r.code).toBe(6)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({
      context: 'fake-ctx',
      decrypted: false,
      removed: false,
      error: {code: 'NODE_ROLLED_BACK', exitCode: 6},
    })
    expect(doc.stages.map((s: {stage: string; status: string}) => `${s.stage}:${s.status}`)).toEqual([
      'identity-first:failed',
    ])
    expect(doc.stages[0].nodes.map((n: {node: string; status: string}) => `${n.node}:${n.status}`)).toEqual([
      'cp-1:changed',
      'cp-2:rolled-back',
      'cp-3:not-reached',
    ])
    expect(doc.backupDir).toMatch(/^\/etc\/kubernetes\/tmp\/kubectl-encryption-/)
  })

  it('decrypt-all --remove-encryption --dry-run: names the keys older etcd backups need, never their secrets', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    const secret = /secret:\s*(\S+)/.exec(cp.files.get('cp-1')!.fs.get(ENC)!.content)![1]!
    const {default: DecryptAll} = await import('../../../src/commands/decrypt-all.js')
    const table = await run(DecryptAll, ['--remove-encryption', '--dry-run'])
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(
      /^Keys for older etcd backups \(keep them: backups taken before the decryption need them; /m,
    )
    expect(table.stdout).toMatch(/^ {2}RESOURCE\s+KEYS\n {2}secrets\s+aescbc:key-20261127T210000Z$/m)
    expect(table.stdout).toContain('kubectl encryption status --scan --snapshot FILE.db --config')
    expect(table.stdout).not.toContain(secret)
    const json = await run(DecryptAll, ['--remove-encryption', '--dry-run', '-o', 'json'])
    const doc = JSON.parse(json.stdout)
    expect(doc.keysForOlderBackups).toEqual([{resource: 'secrets', keys: ['aescbc:key-20261127T210000Z']}])
    expect(json.stdout).not.toContain(secret)
    // without --remove-encryption nothing is removed: no such section
    const keep = await run(DecryptAll, ['--dry-run'])
    expect(keep.stdout).not.toContain('Keys for older etcd backups')
    expect(JSON.parse((await run(DecryptAll, ['--dry-run', '-o', 'json'])).stdout).keysForOlderBackups).toBeUndefined()
  })

  it('a failure before anything changed prints only the error (no partial document)', async () => {
    cp.deps.nodes = async () => []
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const r = await run(Enable, ['--yes', '-o', 'json'])
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toEqual({error: expect.objectContaining({code: 'NO_CONTROL_PLANE', exitCode: 3})})
  })
})

const STATE = 'configmaps/kube-system/kubectl-encryption-state'
const ENC = '/etc/kubernetes/enc/enc.yaml'
const stateData = () => (cp.objects.store.get(STATE)?.data ?? {}) as Record<string, string>

/** A lock as another run would have left it in the state ConfigMap. */
function heldBy(pid: number, renewedAt: Date, machine = localLeaseClock().machine) {
  const lock = {
    holder: `carol@ops-box pid ${pid}`,
    user: 'carol',
    host: 'ops-box',
    pid,
    machine,
    operation: 'decrypt-all',
    acquiredAt: '2026-11-28T02:00:00.000Z',
    renewedAt: renewedAt.toISOString(),
    ttlSeconds: 60,
    id: 'other-run',
  }
  cp.objects.store.set(STATE, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {name: 'kubectl-encryption-state', namespace: 'kube-system', resourceVersion: 'seeded'},
    data: {lock: JSON.stringify(lock)},
  })
}

describe('the cluster lock around mutating commands', {timeout: 60_000}, () => {
  it('is released after a failed run (exit 6) and after a successful one', async () => {
    await enableEncryption({}, cp.deps)
    cp.waiter.broken.add('cp-2')
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    expect((await run(Rotate, ['--yes', '--stage', 'add-key'])).code).toBe(6)
    expect(stateData().lock).toBeUndefined()
    expect(JSON.parse(stateData().rotate ?? '{}')).toMatchObject({status: 'failed', stage: 'add-key'})
    cp.waiter.broken.delete('cp-2')
    expect((await run(Rotate, ['--yes', '--stage', 'add-key'])).code).toBe(0)
    expect(Object.keys(stateData())).toEqual(['rotate'])
    // enable leaves no ConfigMap behind when the lock was all it held
    cp = fakeControlPlane()
    const {default: Enable} = await import('../../../src/commands/enable.js')
    expect((await run(Enable, ['--yes', '--no-verify'])).code).toBe(0)
    expect(cp.objects.store.has(STATE)).toBe(false)
  })

  it('a live lock of another run: refused with exit 3 naming holder, operation and since; nothing changed; --dry-run still plans', async () => {
    await enableEncryption({}, cp.deps)
    const before = cp.files.get('cp-1')!.fs.get(ENC)!.content
    heldBy(process.pid, new Date())
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const r = await run(Rotate, ['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code).toBe(3)
    const doc = JSON.parse(r.stdout)
    expect(doc).toEqual({error: expect.objectContaining({code: 'OPERATION_LOCKED', exitCode: 3})})
    expect(doc.error.message).toContain(
      `decrypt-all by carol@ops-box pid ${process.pid}, since 2026-11-28T02:00:00.000Z`,
    )
    expect(r.stderr).toMatch(/^hint: Wait until it finishes/m)
    expect(cp.files.get('cp-1')!.fs.get(ENC)!.content).toBe(before)
    expect(stateData().rotate).toBeUndefined()
    const plan = await run(Rotate, ['--dry-run', '-o', 'json'])
    expect(plan.code, plan.stderr).toBe(0)
    expect(JSON.parse(plan.stdout).stages.map((s: {status: string}) => s.status)).toEqual(['planned'])
    expect(JSON.parse(stateData().lock!).id).toBe('other-run')
  })

  it('a stale lock (its process is gone from this machine) is taken over with a warning, and the run goes on', async () => {
    await enableEncryption({}, cp.deps)
    heldBy(99_999_999, new Date())
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const r = await run(Rotate, ['--yes', '--stage', 'add-key', '-o', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /^Warning: took over the cluster's lock from decrypt-all by carol@ops-box pid 99999999 \(since 2026-11-28T02:00:00.000Z/m,
    )
    expect(JSON.parse(r.stdout).stages.map((s: {stage: string; status: string}) => `${s.stage}:${s.status}`)).toEqual([
      'add-key:done',
    ])
    expect(stateData().lock).toBeUndefined()
  })
})

describe('--force takes the context name, typed out', {timeout: 60_000}, () => {
  const disagree = async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    const file = cp.files.get('cp-3')!.fs.get(ENC)!
    file.content = `${file.content}# edited by hand\n`
    for (const f of cp.files.values()) f.log.length = 0
  }

  it('another name is a one-line usage error (exit 2) naming both; nothing changed, no lock taken', async () => {
    await disagree()
    for (const [name, Command] of [
      ['enable', (await import('../../../src/commands/enable.js')).default],
      ['rotate', (await import('../../../src/commands/rotate.js')).default],
      ['decrypt-all', (await import('../../../src/commands/decrypt-all.js')).default],
    ] as const) {
      const r = await run(Command, ['--yes', '--force', 'prod-ctx'])
      expect(r.code, name).toBe(2)
      expect(r.stderr.split('\n')[0]).toBe(
        'error: --force "prod-ctx" does not match the current context "fake-ctx"; nothing was changed',
      )
      expect(r.stderr).toContain('hint: To override, pass --force fake-ctx')
    }
    const bare = await run((await import('../../../src/commands/enable.js')).default, ['--yes', '--force'])
    expect(bare.code).toBe(2)
    for (const f of cp.files.values()) expect(f.log).toEqual([])
    expect(stateData().lock).toBeUndefined()
  })

  it('the current context name overrides the refusal (nodes that disagree); an etcd that cannot be read is a warning, not a claim', async () => {
    await disagree()
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const refused = await run(Enable, ['--yes'])
    expect(refused.code).toBe(3)
    expect(refused.stderr).toContain('--force CONTEXT')
    const r = await run(Enable, ['--yes', '--force', 'fake-ctx', '--no-verify'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /^Warning: read check not run before enable \(etcd could not be read: .*\); going on without proof/m,
    )
    expect(r.stdout).toMatch(/Read check:\s+NOT RUN \(etcd could not be read/)
    expect(cp.files.get('cp-3')!.fs.get(ENC)!.content).toBe(cp.files.get('cp-1')!.fs.get(ENC)!.content)
  })
})
