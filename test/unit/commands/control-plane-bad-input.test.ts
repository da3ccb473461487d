// Issue 13: bad input to enable, rotate and decrypt-all, as the user runs them (the real command
// classes and withControlPlane) over the fake nodes of fake-control-plane.ts. Bad input is one
// `error:` line naming the problem, the documented exit code, and nothing changed on any node.
import {Errors} from '@oclif/core'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import type {KubeCluster} from '../../../src/kube/types.js'
import {enableEncryption} from '../../../src/usecases/enable.js'
import {testTempDir} from '../../helpers/temp-dir.js'
import {fakeControlPlane} from '../usecases/fake-control-plane.js'

let cp: ReturnType<typeof fakeControlPlane>
let connects = 0

vi.mock('../../../src/changes/connect.js', () => ({
  connectControlPlane: async () => {
    connects++
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
  return {code: code || Number(process.exitCode ?? 0), stdout, stderr}
}

/** Every file on every node, to prove a refused command changed nothing. */
function nodeFiles(): string {
  return JSON.stringify([...cp.files.values()].map((f) => [...f.fs.entries()]))
}

function expectCleanError(r: {code: number; stdout: string; stderr: string}, code: number, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(code)
  const lines = r.stderr
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('Warning: '))
  expect(lines[0], r.stderr).toMatch(/^error: /)
  expect(lines[0], r.stderr).toMatch(pattern)
  expect(
    lines.slice(1).every((l) => l.startsWith('hint: ')),
    r.stderr,
  ).toBe(true)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

beforeEach(() => {
  cp = fakeControlPlane()
  connects = 0
})

afterEach(() => {
  process.exitCode = undefined
})

describe('bad input to the control-plane commands (issue 13)', {timeout: 60_000}, () => {
  it('item 4: --ssh-identity or --ssh-config naming a missing file is exit 2 before the cluster is contacted', async () => {
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const {default: DecryptAll} = await import('../../../src/commands/decrypt-all.js')
    const before = nodeFiles()
    for (const command of [Enable, Rotate, DecryptAll]) {
      expectCleanError(
        await run(command, ['--yes', '--ssh-identity', '/nonexistent/id_ed25519']),
        2,
        /--ssh-identity \/nonexistent\/id_ed25519 does not exist/,
      )
      expectCleanError(
        await run(command, ['--yes', '--ssh-config', '/nonexistent/config']),
        2,
        /--ssh-config \/nonexistent\/config does not exist/,
      )
      expectCleanError(
        await run(command, ['--yes', '--ssh-identity', '/tmp']),
        2,
        /--ssh-identity \/tmp is a directory/,
      )
    }
    expect(connects).toBe(0)
    expect(nodeFiles()).toBe(before)
  })

  it('item 1: enable on an encrypted cluster with another --resource or --provider is exit 3 naming the difference; nothing changed', async () => {
    await enableEncryption({provider: 'secretbox'}, cp.deps)
    const before = nodeFiles()
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const r = await run(Enable, ['--yes', '--resource', 'configmaps', '--provider', 'aesgcm'])
    expectCleanError(r, 3, /already enabled on cp-1 .*but not as asked: configmaps: not covered\. Nothing was changed/)
    expect(r.stderr).toMatch(/^hint: .*kubectl encryption rotate.*--config/m)
    expectCleanError(
      await run(Enable, ['--yes', '--provider', 'aesgcm']),
      3,
      /secrets: written with secretbox, not aesgcm/,
    )
    expect(nodeFiles()).toBe(before)
    // what the nodes run already is "as asked": exit 0, nothing to do
    const same = await run(Enable, ['--yes', '--no-verify', '--provider', 'secretbox', '--resource', 'secrets'])
    expect(same.code, same.stderr).toBe(0)
    expect(same.stdout).toContain('Encryption is already enabled as asked')
  })

  it('item 1: an invalid --resource is exit 2 as in config generate, also on an encrypted cluster', async () => {
    await enableEncryption({provider: 'secretbox'}, cp.deps)
    const {default: Enable} = await import('../../../src/commands/enable.js')
    expectCleanError(
      await run(Enable, ['--yes', '--resource', 'bad name']),
      2,
      /--resource "bad name" names no resource/,
    )
    expectCleanError(await run(Enable, ['--yes', '--resource', 'Secrets']), 2, /--resource: .*Secrets/)
    expect(connects).toBe(0)
  })

  it("item 13: enable --config with a broken file names the user's file first (exit 3), also on an encrypted cluster, before connecting", async () => {
    await enableEncryption({provider: 'secretbox'}, cp.deps)
    const {writeFileSync} = await import('node:fs')
    const {join} = await import('node:path')
    const broken = join(testTempDir('broken'), 'broken.yaml')
    writeFileSync(
      broken,
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers: []\n',
    )
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const before = nodeFiles()
    const r = await run(Enable, ['--yes', '--config', broken])
    expectCleanError(r, 3, new RegExp(`--config ${broken} is not a valid EncryptionConfiguration: .*providers`))
    expect(r.stderr).not.toContain('/etc/kubernetes/enc')
    expect(connects).toBe(0)
    expect(nodeFiles()).toBe(before)
  })

  it('item 13: a dry run shows no fingerprint of a key it throws away, and rotate --dry-run with nothing recorded is "not started"', async () => {
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const plan = await run(Enable, ['--dry-run', '-o', 'json'])
    expect(plan.code, plan.stderr).toBe(0)
    const doc = JSON.parse(plan.stdout)
    expect(doc.configSource).toBe('generated')
    expect(doc.writeKeys).toEqual([
      {resources: ['secrets'], provider: 'secretbox', key: expect.stringMatching(/^key-/)},
    ])
    const table = await run(Enable, ['--dry-run'])
    expect(table.stdout).toMatch(/^Write keys:\s+secrets: secretbox\/key-\S+ \(a new key, made when run\)$/m)
    expect(table.stdout).not.toContain('<redacted sha256:')
    expect(table.stdout).toContain('secret: <redacted: a new key, made when run>')

    await enableEncryption({provider: 'aescbc'}, cp.deps)
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const rotatePlan = await run(Rotate, ['--dry-run'])
    expect(rotatePlan.code, rotatePlan.stderr).toBe(0)
    expect(rotatePlan.stdout).toMatch(/^State:\s+not started \(a dry run records nothing\)$/m)
    expect(rotatePlan.stdout).not.toContain('in-progress')
    expect(rotatePlan.stdout).toMatch(/^New key:\s+aescbc\/key-\S+$/m)
    const json = JSON.parse((await run(Rotate, ['--dry-run', '-o', 'json'])).stdout)
    expect(json.state).toEqual({status: 'not-started', stage: '-', completedStages: []})
    expect(json.newKeyFingerprint).toBeUndefined()
  })

  it('item 5: Ctrl-C during enable finishes the node in progress, prints the nodes done and where it stopped (exit 4); the same command continues', async () => {
    const waitRestarted = cp.waiter.waitRestarted.bind(cp.waiter)
    cp.waiter.waitRestarted = async (node, before) => {
      if (node === 'cp-1') process.emit('SIGINT', 'SIGINT')
      return waitRestarted(node, before)
    }
    const {default: Enable} = await import('../../../src/commands/enable.js')
    const r = await run(Enable, ['--yes', '--no-verify'])
    expect(r.code, r.stderr).toBe(4)
    expect(r.stdout).toMatch(/cp-1\s+changed/)
    expect(r.stdout).toMatch(/cp-2\s+not-reached/)
    expect(r.stderr).toMatch(
      /^error: interrupted: stopped at stage rollout \(node cp-2, not changed; changed: cp-1\); run the same command to continue$/m,
    )
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(process.listenerCount('SIGINT')).toBe(0)
    const manifest = (n: string) => cp.files.get(n)!.fs.get('/etc/kubernetes/manifests/kube-apiserver.yaml')!.content
    expect(manifest('cp-1')).toContain('--encryption-provider-config')
    expect(manifest('cp-2')).not.toContain('--encryption-provider-config')
    const again = await run(Enable, ['--yes', '--no-verify'])
    expect(again.code, again.stderr).toBe(0)
    for (const n of ['cp-1', 'cp-2', 'cp-3']) expect(manifest(n)).toContain('--encryption-provider-config')
  })

  it('item 5: SIGTERM during rotate stops before the next node; state and output say where; rotate again continues', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    const waitRestarted = cp.waiter.waitRestarted.bind(cp.waiter)
    let sent = false
    cp.waiter.waitRestarted = async (node, before) => {
      if (node === 'cp-2' && !sent) {
        sent = true
        process.emit('SIGTERM', 'SIGTERM')
      }
      return waitRestarted(node, before)
    }
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    const r = await run(Rotate, ['--yes', '--backup-confirmed', '-o', 'json'])
    expect(r.code, r.stderr).toBe(4)
    const doc = JSON.parse(r.stdout)
    expect(doc.error).toMatchObject({code: 'INTERRUPTED', exitCode: 4})
    expect(doc.error.message).toBe(
      'interrupted: stopped at stage add-key (node cp-3, not changed; changed: cp-1, cp-2); run the same command to continue',
    )
    expect(doc.stages[0].nodes.map((n: {node: string; status: string}) => `${n.node}:${n.status}`)).toEqual([
      'cp-1:changed',
      'cp-2:changed',
      'cp-3:not-reached',
    ])
    expect(process.listenerCount('SIGTERM')).toBe(0)
    // (the rewrite stage needs a real cluster: continue the interrupted stage only)
    const again = await run(Rotate, ['--yes', '--stage', 'add-key', '-o', 'json'])
    expect(again.code, again.stderr).toBe(0)
    const cont = JSON.parse(again.stdout)
    expect(cont.newKey).toBe(doc.newKey)
    expect(cont.stages[0].nodes.map((n: {node: string; status: string}) => `${n.node}:${n.status}`)).toEqual([
      'cp-1:unchanged',
      'cp-2:unchanged',
      'cp-3:changed',
    ])
    expect(cont.state).toMatchObject({completedStages: ['add-key']})
  })

  it('item 5: SIGTERM while rotate waits for a reload ends the wait at once (exit 4), gives the lock back, and the stage stays next', async () => {
    await enableEncryption({provider: 'aescbc'}, cp.deps)
    const {default: Rotate} = await import('../../../src/commands/rotate.js')
    expect((await run(Rotate, ['--yes', '--stage', 'add-key'])).code).toBe(0)
    // An apiserver that never reports the new config: only the signal can end this wait.
    cp.waiter.waitConfigLoaded = () => {
      setImmediate(() => process.emit('SIGTERM', 'SIGTERM'))
      return new Promise<void>(() => undefined)
    }
    const r = await run(Rotate, ['--yes', '--stage', 'wait-add', '-o', 'json'])
    expect(r.code, r.stderr).toBe(4)
    const doc = JSON.parse(r.stdout)
    expect(doc.error).toMatchObject({code: 'INTERRUPTED', exitCode: 4})
    expect(doc.error.message).toMatch(
      /^interrupted: stopped at stage wait-add \(waiting for cp-1; nothing changed by this stage\)/,
    )
    expect(process.listenerCount('SIGTERM')).toBe(0)
    const state = cp.objects.store.get('configmaps/kube-system/kubectl-encryption-state') as unknown as {
      data: Record<string, string>
    }
    expect(state.data.lock).toBeUndefined()
    expect(JSON.parse(state.data.rotate!)).toMatchObject({
      status: 'in-progress',
      stage: 'wait-add',
      completedStages: ['add-key'],
    })
  })
})
