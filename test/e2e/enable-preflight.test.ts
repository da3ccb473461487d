// The read check before a change, on the real sandbox (issue 17 item 1): aescbc key1 switched on by
// hand on every node with Secrets written under it; then `enable --config` with a file that lacks
// key1 is refused (exit 3, counts per resource and provider:key, example keys) and leaves every
// node's manifest and config as they were; --force with the wrong context is a usage error (exit 2);
// the dry run shows the read check. Then a rotation whose rewrite is recorded as done while Secrets
// are still under key1 (the state ConfigMap edited by hand, as a rewrite that missed objects would
// leave it): remove-old is refused with the counts and changes nothing. Every node's manifest is
// restored, new backup dirs removed, the state ConfigMap and the test Secrets deleted.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {aescbcConfig, ENC_CONFIG, enableOnNode, MANIFEST, newKey, restoreNodes} from './helpers/encryption-setup.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, sandbox, sshOk} from './helpers/sandbox.js'

const ns = `preflight-${Date.now().toString(36)}`
const key1 = newKey('key1')
const key2 = newKey('key2')
const saved = new Map<string, string>()
const savedTmp = new Map<string, string[]>()
const TMP = '/etc/kubernetes/tmp'
const dir = mkdtempSync(join(tmpdir(), 'enable-preflight-e2e-'))
const SECRETS = 3
let context = ''

const nodeFiles = async () => {
  const files: string[] = []
  for (const node of sandbox().nodes)
    files.push(await readNodeFile(node, MANIFEST), await readNodeFile(node, ENC_CONFIG))
  return files
}

beforeAll(async () => {
  const {nodes} = sandbox()
  for (const node of nodes) saved.set(node, await readNodeFile(node, MANIFEST))
  for (const node of nodes)
    savedTmp.set(node, (await sshOk(node, `sudo -n ls -A ${TMP} 2>/dev/null || true`)).split('\n').filter(Boolean))
  context = (await ok('kubectl', ['config', 'current-context'])).trim()
  await ok('kubectl', ['create', 'namespace', ns])
  for (const node of nodes) await enableOnNode(node, aescbcConfig([key1]))
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `under-key1-${i}`, '-n', ns, '--from-literal=k=v'])
}, 600_000)

afterAll(async () => {
  // The Secrets first, while every node can still read them (an apiserver without key1 while key1
  // values are stored never becomes Ready).
  await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
  await restoreNodes(saved)
  await kubectl(['delete', 'configmap', '-n', 'kube-system', 'kubectl-encryption-state', '--ignore-not-found'])
  for (const [node, before] of savedTmp) {
    const now = (await sshOk(node, `sudo -n ls -A ${TMP} 2>/dev/null || true`)).split('\n').filter(Boolean)
    const added = now.filter((n) => !before.includes(n)).map((n) => `${TMP}/${n}`)
    if (added.length > 0) await sshOk(node, `sudo -n rm -rf ${added.join(' ')}`)
  }
  rmSync(dir, {recursive: true, force: true})
}, 900_000)

describe('enable: the read check before any change', () => {
  const noKey1 = () => {
    const path = join(dir, 'no-key1.yaml')
    writeFileSync(path, aescbcConfig([key2]), {mode: 0o600})
    return path
  }

  it('a config without the key of stored values is refused (exit 3) with counts and examples; the nodes are unchanged', async () => {
    const before = await nodeFiles()
    const r = await plugin(['enable', '--config', noKey1(), '--yes', ...sshArgs()])
    expect(r.code, r.stdout + r.stderr).toBe(3)
    const line = r.stderr.split('\n').find((l) => l.startsWith('error: '))!
    expect(line).toMatch(
      /error: Refused: with the config enable applies, \d+ of \d+ value\(s\) stored in etcd would be unreadable: secrets \(aescbc:key1=\d+\); e\.g\. \/registry\/secrets\//,
    )
    expect(Number(/aescbc:key1=(\d+)/.exec(line)![1])).toBeGreaterThanOrEqual(SECRETS)
    expect(line.match(/\/registry\/secrets\//g)!.length).toBeLessThanOrEqual(3)
    expect(r.stderr).toContain('--force')
    expect(await nodeFiles()).toEqual(before)
    const doc = await plugin(['enable', '--config', noKey1(), '--yes', '-o', 'json', ...sshArgs()])
    expect(doc.code).toBe(3)
    expect(json<{error: {code: string}}>(doc).error.code).toBe('CONFIG_CANNOT_READ')
  })

  it('--force with another context name is a usage error (exit 2), nothing changed', async () => {
    const before = await nodeFiles()
    const r = await plugin(['enable', '--config', noKey1(), '--yes', '--force', `${context}-not`, ...sshArgs()])
    expect(r.code, r.stdout + r.stderr).toBe(2)
    expect(r.stderr).toContain(`error: --force "${context}-not" does not match the current context "${context}"`)
    expect(await nodeFiles()).toEqual(before)
  })

  it('--dry-run shows the read check and exits 3 as the real run would', async () => {
    const r = await plugin(['enable', '--config', noKey1(), '--dry-run', ...sshArgs()])
    expect(r.code, r.stdout + r.stderr).toBe(3)
    expect(r.stdout).toMatch(
      /Read check:\s+\d+ of \d+ stored value\(s\) would be unreadable: secrets \(aescbc:key1=\d+\)/,
    )
    expect(r.stdout).toContain('Dry run: nothing was changed.')
    const good = join(dir, 'keeps-key1.yaml')
    writeFileSync(good, aescbcConfig([key2, key1]), {mode: 0o600})
    const g = await plugin(['enable', '--config', good, '--dry-run', ...sshArgs()])
    expect(g.code, g.stdout + g.stderr).toBe(0)
    expect(g.stdout).toMatch(/Read check:\s+every stored value \(\d+\) is readable with the config to apply/)
  })
})

describe('rotate: the read check before a stage that drops a key', () => {
  it('remove-old while Secrets are still under the old key is refused with the counts (exit 3); the stage changes nothing', async () => {
    for (const stage of ['add-key', 'wait-add', 'promote', 'wait-promote']) {
      const r = await plugin(['rotate', '--stage', stage, '--yes', '--key-name', 'key2', ...sshArgs()], {
        timeoutMs: 600_000,
      })
      expect(r.code, `${stage}: ${r.stdout}${r.stderr}`).toBe(0)
      if (stage === 'promote')
        expect(r.stdout).toMatch(
          /Read check:\n\s+promote: every stored value \(\d+\) is readable with the config to apply/,
        )
    }
    // A rewrite recorded as done although it missed objects: the Secrets stay under key1.
    const cm = JSON.parse(
      await ok('kubectl', ['get', 'configmap', '-n', 'kube-system', 'kubectl-encryption-state', '-o', 'json']),
    ) as {data: Record<string, string>}
    const state = JSON.parse(cm.data.rotate!) as {completedStages: string[]; stage: string}
    expect(state.completedStages).toEqual(['add-key', 'wait-add', 'promote', 'wait-promote'])
    cm.data.rotate = JSON.stringify({
      ...state,
      completedStages: [...state.completedStages, 'rewrite'],
      stage: 'rewrite',
    })
    await ok('kubectl', ['replace', '-f', '-'], {input: JSON.stringify(cm)})
    const before = await nodeFiles()
    expect(before[1]).toContain('name: key1')
    const r = await plugin(['rotate', '--stage', 'remove-old', '--backup-confirmed', '--yes', ...sshArgs()], {
      timeoutMs: 600_000,
    })
    expect(r.code, r.stdout + r.stderr).toBe(3)
    const line = r.stderr.split('\n').find((l) => l.startsWith('error: '))!
    expect(line).toMatch(
      /error: Refused: with the config rotate stage remove-old applies, \d+ of \d+ value\(s\) stored in etcd would be unreadable: secrets \(aescbc:key1=\d+\); e\.g\. \/registry\/secrets\/.*Stage remove-old changed nothing\./,
    )
    expect(Number(/aescbc:key1=(\d+)/.exec(line)![1])).toBeGreaterThanOrEqual(SECRETS)
    expect(await nodeFiles()).toEqual(before)
    const after = JSON.parse(
      await ok('kubectl', [
        'get',
        'configmap',
        '-n',
        'kube-system',
        'kubectl-encryption-state',
        '-o',
        'jsonpath={.data.rotate}',
      ]),
    ) as {status: string; stage: string}
    expect(after).toMatchObject({status: 'failed', stage: 'remove-old'})
  })

  it('no key material in any output', () => {
    const all = pluginOutputs.join('\n')
    for (const key of [key1, key2]) expect(all).not.toContain(key.secret)
  })
})
