import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {enableEncryption} from '../../../src/usecases/enable.js'
import {ROTATE_STAGES, type RotateDeps, rotateKeys} from '../../../src/usecases/rotate.js'
import {fakeControlPlane} from './fake-control-plane.js'
import {fakeReadCheck} from './read-check-fake.js'

/** Key names are `key-<UTC time>` (issue 13 item 12); the fake control plane's clock is fixed. */
const K1 = 'key-20261127T210000Z'
const K2 = 'key-20261127T210000Z-2'

const ENC = '/etc/kubernetes/enc/enc.yaml'
type Cfg = {resources: Array<{providers: Array<Record<string, {keys?: Array<{name: string; secret: string}>}>>}>}
const providersOf = (text: string) =>
  (parse(text) as Cfg).resources[0]?.providers.map(
    (p) => `${Object.keys(p)[0]}:${(Object.values(p)[0]?.keys ?? []).map((k) => k.name).join(',')}`,
  )

async function enabled(automaticReload = false) {
  const cp = fakeControlPlane()
  await enableEncryption({automaticReload, provider: 'aescbc'}, cp.deps)
  let underOld = 0
  const rewrites: string[] = []
  const deps: RotateDeps = {
    ...cp.deps,
    followUps: {
      rewrite: async ({text: configText}) => {
        rewrites.push(`rewrite ${providersOf(configText)?.join(' ')}`)
        underOld = 0
        return {resources: ['secrets'], rewritten: 3, alreadyCurrent: 0, failed: 0, incomplete: [], failures: []}
      },
      countUnderKey: async () => underOld,
    },
  }
  const config = (node = 'cp-1') => cp.files.get(node)?.fs.get(ENC)?.content ?? ''
  const state = () =>
    JSON.parse(
      String(
        (cp.objects.store.get('configmaps/kube-system/kubectl-encryption-state')?.data as Record<string, string>)
          ?.rotate ?? 'null',
      ),
    )
  return {cp, deps, config, state, rewrites, setUnderOld: (n: number) => (underOld = n)}
}

describe('rotate (six stages over fakes)', {timeout: 90_000}, () => {
  it('runs all six stages: new key second, then first, rewrite, old key removed; state recorded', async () => {
    const t = await enabled()
    const oldSecret = (parse(t.config()) as Cfg).resources[0]?.providers[0]?.aescbc?.keys?.[0]?.secret ?? ''
    const result = await rotateKeys({backupConfirmed: true}, t.deps)
    expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(ROTATE_STAGES.map((s) => `${s}:done`))
    expect(result).toMatchObject({provider: 'aescbc', newKey: K2, oldKey: {provider: 'aescbc', name: K1}})
    expect(result.newKeyFingerprint).toMatch(/^sha256:/)
    expect(providersOf(t.config())).toEqual([`aescbc:${K2}`, 'identity:'])
    for (const node of ['cp-2', 'cp-3']) expect(t.config(node)).toBe(t.config())
    expect(t.state()).toMatchObject({status: 'done', completedStages: [...ROTATE_STAGES]})
    expect(t.rewrites).toEqual([`rewrite aescbc:${K2},${K1} identity:`])
    // the rewrite stage's summary (with its estimate and webhooks, when the real follow-ups give them) is in the result
    expect(result.rewrite).toEqual({
      resources: ['secrets'],
      rewritten: 3,
      alreadyCurrent: 0,
      failed: 0,
      incomplete: [],
      failures: [],
    })
    expect(JSON.stringify(t.state()) + JSON.stringify(result)).not.toContain(oldSecret)
    // each config stage restarted every node (no automatic reload): 3 stages × 3 nodes
    expect(t.cp.waiter.waits.filter((w) => w.startsWith('restart')).length).toBe(3 + 9)
    // the wait stages check each apiserver's loaded config (last_config_info), restarts or not
    expect(t.cp.waiter.waits.filter((w) => w.startsWith('reload')).length).toBe(6)
  })

  it('a wait stage refuses to go on when the nodes no longer run one config', async () => {
    const t = await enabled()
    await rotateKeys({stage: 'add-key'}, t.deps)
    const file = t.cp.files.get('cp-2')!.fs.get(ENC)!
    file.content = file.content.replace('- identity: {}', '- identity: {}\n# edited by hand')
    await expect(rotateKeys({stage: 'wait-add'}, t.deps)).rejects.toMatchObject({code: 'NODES_DISAGREE', exitCode: 3})
    expect(t.state()).toMatchObject({status: 'failed', stage: 'wait-add', completedStages: ['add-key']})
  })

  it('resumes after a failure at any stage, never regenerating the new key', async () => {
    const t = await enabled()
    t.setUnderOld(5)
    // no rewrite available: stops at stage 5 with the state recorded
    const noRewrite = {...t.deps, followUps: undefined}
    await expect(rotateKeys({backupConfirmed: true}, noRewrite)).rejects.toMatchObject({code: 'REWRITE_UNAVAILABLE'})
    expect(t.state()).toMatchObject({
      status: 'failed',
      stage: 'rewrite',
      completedStages: ['add-key', 'wait-add', 'promote', 'wait-promote'],
    })
    const afterPromote = t.config()
    expect(providersOf(afterPromote)).toEqual([`aescbc:${K2},${K1}`, 'identity:'])
    const resumed = await rotateKeys({backupConfirmed: true}, t.deps)
    expect(resumed.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
      'add-key:already-done',
      'wait-add:already-done',
      'promote:already-done',
      'wait-promote:already-done',
      'rewrite:done',
      'remove-old:done',
    ])
    const newSecret = (c: string) =>
      (parse(c) as Cfg).resources[0]?.providers[0]?.aescbc?.keys?.find((k) => k.name === K2)?.secret
    expect(newSecret(t.config())).toBe(newSecret(afterPromote))
  })

  it('picks up a half-written add-key stage (some nodes have the new key) and keeps that key', async () => {
    const t = await enabled()
    t.cp.waiter.broken.add('cp-2')
    // make cp-2 fail its restart during add-key: broken nodes fail once the manifest names a config
    await expect(rotateKeys({backupConfirmed: true}, t.deps)).rejects.toMatchObject({exitCode: 6})
    expect(t.state()).toMatchObject({status: 'failed', stage: 'add-key'})
    const onCp1 = t.config('cp-1')
    expect(t.config('cp-2')).not.toBe(onCp1)
    t.cp.waiter.broken.delete('cp-2')
    await rotateKeys({stage: 'add-key'}, t.deps)
    expect(t.config('cp-2')).toBe(onCp1)
    expect(t.config('cp-3')).toBe(onCp1)
  })

  it('refuses to remove the old key without a backup confirmation or while values still use it', async () => {
    const t = await enabled()
    await expect(rotateKeys({}, t.deps)).rejects.toMatchObject({code: 'BACKUP_NOT_CONFIRMED', exitCode: 3})
    expect(t.state()).toMatchObject({status: 'failed', stage: 'remove-old'})
    t.setUnderOld(2)
    await expect(rotateKeys({backupConfirmed: true, stage: 'remove-old'}, t.deps)).rejects.toMatchObject({
      code: 'OLD_KEY_STILL_USED',
      message: expect.stringContaining('2 value(s)'),
    })
    expect(providersOf(t.config())).toEqual([`aescbc:${K2},${K1}`, 'identity:'])
    t.setUnderOld(0)
    await rotateKeys({backupConfirmed: true}, t.deps)
    expect(providersOf(t.config())).toEqual([`aescbc:${K2}`, 'identity:'])
  })

  it('--backup-dir: remove-old writes the new config and the one still holding the old key, both 0600', async () => {
    const t = await enabled()
    const dir = mkdtempSync(join(tmpdir(), 'rotate-unit-'))
    try {
      await rotateKeys({stage: 'add-key'}, t.deps)
      const result = await rotateKeys({backupDir: join(dir, 'out')}, t.deps)
      expect(providersOf(readFileSync(result.localBackup!, 'utf8'))).toEqual([`aescbc:${K2}`, 'identity:'])
      expect(readFileSync(result.localBackup!, 'utf8')).toBe(t.config())
      expect(result.oldKeyBackup).toMatch(/-with-old-key\.yaml$/)
      expect(providersOf(readFileSync(result.oldKeyBackup!, 'utf8'))).toEqual([`aescbc:${K2},${K1}`, 'identity:'])
      for (const f of [result.localBackup!, result.oldKeyBackup!]) expect(statSync(f).mode & 0o777).toBe(0o600)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('switches provider aescbc -> secretbox the same way', async () => {
    const t = await enabled()
    await rotateKeys({provider: 'secretbox', backupConfirmed: true}, t.deps)
    expect(providersOf(t.config())).toEqual([`secretbox:${K2}`, 'identity:'])
  })

  it('with automatic reload waits on the reload metrics instead of restarts', async () => {
    const t = await enabled(true)
    t.cp.waiter.waits.length = 0
    await rotateKeys({backupConfirmed: true}, t.deps)
    expect(t.cp.waiter.waits.filter((w) => w.startsWith('restart'))).toEqual([])
    expect(t.cp.waiter.waits.filter((w) => w.startsWith('reload')).length).toBe(9 + 6)
  })

  it("dry run shows the next stage's diff and changes nothing", async () => {
    const t = await enabled()
    const before = t.config()
    const plan = await rotateKeys({dryRun: true}, t.deps)
    expect(plan.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(['add-key:planned'])
    expect(plan.diffs.map((d) => d.path)).toEqual([
      ENC,
      '/etc/kubernetes/manifests/kube-apiserver.yaml',
      ENC,
      '/etc/kubernetes/manifests/kube-apiserver.yaml',
      ENC,
      '/etc/kubernetes/manifests/kube-apiserver.yaml',
    ])
    expect(plan.diffs[0]?.diff).toMatch(/\+\s+- name: key-20261127T210000Z-2\n\+\s+secret: <redacted/)
    expect(t.config()).toBe(before)
    expect(t.state()).toBeNull()
  })

  describe('read check before the stages that demote or drop a key', () => {
    it('promote and remove-old check their own config first; a removal that would leave values unreadable is refused (exit 3) and changes nothing', async () => {
      const t = await enabled()
      // values under the old key that countUnderKey does not see (it says 0): only the full check finds them
      const check = fakeReadCheck({needs: K1, storedAs: `aescbc:${K1}`, unreadable: 4})
      const deps = {...t.deps, followUps: {...t.deps.followUps!, checkConfig: check.checkConfig}}
      const error = await rotateKeys({backupConfirmed: true}, deps).catch((e: unknown) => e)
      expect(error).toMatchObject({
        code: 'CONFIG_CANNOT_READ',
        exitCode: 3,
        message: expect.stringContaining(`secrets (aescbc:${K1}=4)`),
      })
      expect((error as Error).message).toContain('Stage remove-old changed nothing.')
      // promote's config (new key first, old second), then remove-old's (old key gone)
      expect(check.seen.map((c) => providersOf(c)?.join(' '))).toEqual([
        `aescbc:${K2},${K1} identity:`,
        `aescbc:${K2} identity:`,
      ])
      expect(t.state()).toMatchObject({
        status: 'failed',
        stage: 'remove-old',
        completedStages: ['add-key', 'wait-add', 'promote', 'wait-promote', 'rewrite'],
      })
      for (const node of ['cp-1', 'cp-2', 'cp-3'])
        expect(providersOf(t.config(node))).toEqual([`aescbc:${K2},${K1}`, 'identity:'])
      const partial = (error as {partialResult?: {stages: Array<{stage: string; readCheck?: unknown}>}}).partialResult
      expect(partial?.stages.find((s) => s.stage === 'promote')?.readCheck).toMatchObject({status: 'readable'})
    })

    it('a proven removal does not also need the prefix count (values under the old key elsewhere may stay readable by other entries)', async () => {
      const t = await enabled()
      const check = fakeReadCheck({needs: K2})
      const deps = {
        ...t.deps,
        followUps: {...t.deps.followUps!, checkConfig: check.checkConfig, countUnderKey: async () => 7},
      }
      const result = await rotateKeys({backupConfirmed: true}, deps)
      expect(result.stages.find((s) => s.stage === 'remove-old')).toMatchObject({
        status: 'done',
        readCheck: {status: 'readable'},
      })
      // etcd unreadable for the check: the old key's prefix count still guards the removal
      const u = await enabled()
      const unproven = {
        ...u.deps,
        followUps: {
          ...u.deps.followUps!,
          checkConfig: fakeReadCheck({fail: 'etcd down'}).checkConfig,
          countUnderKey: async () => 7,
        },
      }
      await expect(rotateKeys({backupConfirmed: true}, unproven)).rejects.toMatchObject({
        code: 'OLD_KEY_STILL_USED',
        message: expect.stringContaining('7 value(s)'),
      })
    })

    it('--force removes the key anyway, with a warning and the count on the stage', async () => {
      const t = await enabled()
      const check = fakeReadCheck({needs: K1})
      const result = await rotateKeys(
        {backupConfirmed: true, force: true},
        {...t.deps, followUps: {...t.deps.followUps!, checkConfig: check.checkConfig}},
      )
      expect(result.stages.find((s) => s.stage === 'remove-old')).toMatchObject({
        status: 'done',
        readCheck: {status: 'unreadable', forced: true, unreadable: 3},
      })
      expect(providersOf(t.config())).toEqual([`aescbc:${K2}`, 'identity:'])
      expect(t.cp.events).toContainEqual({type: 'warning', message: expect.stringContaining('--force: going ahead')})
    })

    it('etcd that cannot be read: warnings, the checks reported as not run, and the rotation goes on', async () => {
      const t = await enabled()
      const check = fakeReadCheck({fail: 'etcd down'})
      const result = await rotateKeys(
        {backupConfirmed: true},
        {...t.deps, followUps: {...t.deps.followUps!, checkConfig: check.checkConfig}},
      )
      expect(result.stages.filter((s) => s.readCheck).map((s) => `${s.stage}:${s.readCheck?.status}`)).toEqual([
        'promote:not-run',
        'remove-old:not-run',
      ])
      expect(
        t.cp.events.filter(
          (e) =>
            (e as {type: string; message: string}).type === 'warning' &&
            (e as {message: string}).message.includes('before rotate stage'),
        ),
      ).toHaveLength(2)
    })
  })
})
