// The confirmations on a real terminal (a pseudo-terminal opened by util-linux `script`): `enable`
// asks y/N, `decrypt-all` wants the context name typed. Refusals (a wrong name, n, Ctrl-D, Ctrl-C)
// change nothing on any node; the right name goes ahead. Also the terminal whose size was never set
// (0 columns, which is what `script` gives without a terminal around it): the spinner used to loop
// there forever and the question never came. For decrypt-all, encryption is switched on by hand on
// cp-1 only, with identity already first (what an interrupted `decrypt-all --remove-encryption`
// leaves), so the accepted run restarts nothing; afterAll puts cp-1 back.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {setConfigHashAnnotation} from '../../src/controlplane/apiserver-manifest.js'
import {configHash} from '../../src/encryption/fingerprint.js'
import {
  kubeadmClusterConfiguration,
  allNodeStates,
  expectNoKeyMaterial,
  restoreControlPlane,
  saveControlPlane,
  type SavedControlPlane,
} from './helpers/control-plane-state.js'
import {apiserverHash, ENC_CONFIG, MANIFEST, newKey, withEncryptionFlag} from './helpers/encryption-setup.js'
import {sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, waitForApiserverRestart, writeNodeFile} from './helpers/sandbox.js'
import {onTerminal} from './helpers/terminal.js'

const SIZE = {cols: 120, rows: 40}
const YES_NO = '[y/N] '
const TYPE_NAME = 'to continue: '
/** ora's frames (braille) and its line clearing: none may be drawn while the question waits. */
const SPINNER = /[\u2800-\u28ff]|\x1b\[(?:0K|1A|2K)/

let saved: SavedControlPlane | undefined
let context = ''
/** The plugin's state ConfigMap (rotation record, the cluster's lock): a refused run leaves it as it was. */
const stateConfigMap = async () => {
  const r = await kubectl([
    'get',
    'configmap',
    '-n',
    'kube-system',
    'kubectl-encryption-state',
    '-o',
    'jsonpath={.data}',
  ])
  return r.code === 0 ? r.stdout : `absent (${r.stderr.includes('NotFound') || r.stderr.includes('not found')})`
}
const clusterState = async () => ({
  nodes: await allNodeStates(),
  kubeadmConfig: await kubeadmClusterConfiguration(),
  state: await stateConfigMap(),
})

beforeAll(async () => {
  saved = await saveControlPlane()
  context = (await ok('kubectl', ['config', 'current-context'])).trim()
}, 120_000)

afterAll(async () => {
  await restoreControlPlane(saved)
}, 600_000)

describe('enable: y/N on a terminal', {timeout: 300_000}, () => {
  it('n: the question is on the terminal, no spinner draws over it, "Aborted" (exit 3), nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['enable', ...sshArgs()], {size: SIZE, type: {after: YES_NO, keys: 'n\r'}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toMatch(/Enable encryption at rest on cp-1, cp-2, cp-3 \(.*\)\? \[y\/N\] n\n/)
    expect(r.screen).toContain('error: Aborted: nothing was changed.')
    // the spinner ran before the question (the terminal has a size) and stayed off while it waited
    expect(r.screen.slice(0, r.screen.indexOf('Enable encryption'))).toMatch(
      /[\u2800-\u28ff] Connecting to the cluster/,
    )
    expect(r.whileAsking).not.toMatch(SPINNER)
    expect(await clusterState()).toEqual(before)
  })

  it('Ctrl-D (end of input) refuses: exit 3, nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['enable', ...sshArgs()], {size: SIZE, type: {after: YES_NO, keys: '\x04'}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain('error: Aborted: nothing was changed.')
    expect(await clusterState()).toEqual(before)
  })

  it('Ctrl-C at the question: exit 3 "Interrupted at the confirmation", nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['enable', ...sshArgs()], {size: SIZE, type: {after: YES_NO, keys: 'y\x03'}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain('[y/N] y^C\n')
    expect(r.screen).toContain('error: Interrupted at the confirmation: nothing was changed.')
    expect(await clusterState()).toEqual(before)
  })
})

describe('decrypt-all: the context name typed on a terminal', {timeout: 300_000}, () => {
  beforeAll(async () => {
    // identity first, an aescbc key kept readable, on cp-1 only; the manifest as the plugin writes it
    const config = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - identity: {}
      - aescbc:
          keys:
            - name: key1
              secret: ${newKey('key1').secret}
`
    const before = await apiserverHash('cp-1')
    await writeNodeFile('cp-1', ENC_CONFIG, config)
    const manifest = setConfigHashAnnotation(
      withEncryptionFlag(await readNodeFile('cp-1', MANIFEST)),
      configHash(config),
    ).text
    await writeNodeFile('cp-1', MANIFEST, manifest)
    await waitForApiserverRestart('cp-1', before, 120_000)
  }, 300_000)

  it('on a terminal without a size (0 columns): the question comes; a wrong name refuses (exit 3), nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['decrypt-all', ...sshArgs()], {type: {after: TYPE_NAME, keys: `${context}x\r`}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain(`Put identity first on cp-1 `)
    expect(r.screen).toContain(`Type the context name (${context}) to continue: ${context}x\n`)
    expect(r.screen).toContain('error: Aborted: nothing was changed.')
    expect(r.whileAsking).not.toMatch(SPINNER)
    expect(await clusterState()).toEqual(before)
  })

  it('Ctrl-D instead of the name refuses (exit 3), nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['decrypt-all', ...sshArgs()], {size: SIZE, type: {after: TYPE_NAME, keys: '\x04'}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain('error: Aborted: nothing was changed.')
    expect(await clusterState()).toEqual(before)
  })

  it('the right name goes ahead: the question on the terminal (stderr), the result in the file stdout went to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-encryption-tty-'))
    const before = await clusterState()
    try {
      const out = join(dir, 'result.json')
      const r = await onTerminal(['decrypt-all', ...sshArgs(), '-o', 'json'], {
        size: SIZE,
        type: {after: TYPE_NAME, keys: `${context}\r`},
        redirect: `> ${out}`,
      })
      expect(r.code, r.screen).toBe(0)
      expect(r.screen).toContain(`Type the context name (${context}) to continue: ${context}\n`)
      const stdout = readFileSync(out, 'utf8')
      expect(stdout).not.toContain('Type the context name')
      const result = JSON.parse(stdout) as {stages: Array<{stage: string; status: string}>; decrypted: boolean}
      expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
        'identity-first:unchanged',
        'rewrite:done',
        'scan:done',
        'remove-encryption:skipped',
      ])
      expect(result.decrypted).toBe(true)
      // identity was first already: the files on the nodes are as they were
      expect(await clusterState()).toEqual(before)
      await expectNoKeyMaterial([await readNodeFile('cp-1', ENC_CONFIG)])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
