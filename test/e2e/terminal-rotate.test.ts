// `kubectl encryption rotate` on a real terminal (a pseudo-terminal opened by util-linux `script`,
// see helpers/terminal.ts) wants the context name typed (issue 6). A wrong name and Ctrl-D refuse
// (exit 3) and change nothing: no node's manifests, /etc/kubernetes/enc or backups, no apiserver
// restarted, and the ConfigMap kube-system/kubectl-encryption-state (rotation record, the cluster's
// lock) as it was. The right name goes ahead: `rotate --stage add-key`, the cheapest stage that
// really changes the nodes; then, with that rotation recorded, a wrong name again leaves the record
// as it was. Set-up: aescbc key1 on every node by hand with automatic reload on, so
// add-key reloads instead of restarting three apiservers. afterAll puts back the nodes (decrypting
// first), and the state ConfigMap byte for byte in etcd.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, parseDocument, type YAMLMap, type YAMLSeq} from 'yaml'

import {
  allNodeStates,
  expectNoKeyMaterial,
  keysSeen,
  restoreControlPlane,
  saveControlPlane,
  type SavedControlPlane,
} from './helpers/control-plane-state.js'
import {
  aescbcConfig,
  apiserverHash,
  ENC_CONFIG,
  MANIFEST,
  newKey,
  withEncryptionFlag,
} from './helpers/encryption-setup.js'
import {pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, run, sandbox, waitForApiserverRestart, writeNodeFile} from './helpers/sandbox.js'
import {onTerminal} from './helpers/terminal.js'

const SIZE = {cols: 120, rows: 40}
const TYPE_NAME = 'to continue: '
/** ora's frames (braille) and its line clearing: none may be drawn while the question waits. */
const SPINNER = /[\u2800-\u28ff]|\x1b\[(?:0K|1A|2K)/
const STATE_KEY = '/registry/configmaps/kube-system/kubectl-encryption-state'
const REFUSED = 'error: Aborted: nothing was changed.'

let saved: SavedControlPlane | undefined
/** The state ConfigMap as stored in etcd (base64), or undefined when there was none. */
let savedState: string | undefined
let stateSaved = false
let context = ''
const key1 = newKey('key1')
const nodes = () => sandbox().nodes

const etcdRaw = async (key: string) =>
  (JSON.parse(await ok('etcdctl', ['get', key, '-w', 'json'])) as {kvs?: Array<{value: string}>}).kvs?.[0]?.value
const stateData = async () => {
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
const mirrorHashes = async () =>
  Object.fromEntries(await Promise.all(nodes().map(async (n) => [n, await apiserverHash(n)] as const)))
const clusterState = async () => ({
  nodes: await allNodeStates(),
  apiservers: await mirrorHashes(),
  state: await stateData(),
})
/** The secrets entry's providers on a node, as `provider:key,key`. */
const providersOn = async (node: string) =>
  (
    parse(await readNodeFile(node, ENC_CONFIG)) as {
      resources: Array<{providers: Array<Record<string, {keys?: Array<{name: string}>} | undefined>>}>
    }
  ).resources[0]!.providers.map((p) => {
    const [type, body] = Object.entries(p)[0]!
    return `${type}:${(body?.keys ?? []).map((k) => k.name).join(',')}`
  })

beforeAll(async () => {
  saved = await saveControlPlane()
  savedState = await etcdRaw(STATE_KEY)
  stateSaved = true
  // A rotation recorded by another file would be continued instead of started: start from none.
  await run('etcdctl', ['del', STATE_KEY])
  context = (await ok('kubectl', ['config', 'current-context'])).trim()
  // The seed's set-up on every node, with automatic reload (SANDBOX_ENCRYPTION_RELOAD_INTERVAL: a short poll interval, see test/sandbox/README.md).
  for (const node of nodes()) {
    const before = await apiserverHash(node)
    await writeNodeFile(node, ENC_CONFIG, aescbcConfig([key1]))
    const doc = parseDocument(withEncryptionFlag(await readNodeFile(node, MANIFEST)))
    const container = (doc.getIn(['spec', 'containers']) as YAMLSeq).items[0] as YAMLMap
    ;(container.get('command') as YAMLSeq).add(doc.createNode('--encryption-provider-config-automatic-reload=true'))
    container.set('env', doc.createNode([{name: 'SANDBOX_ENCRYPTION_RELOAD_INTERVAL', value: '500ms'}]))
    await writeNodeFile(node, MANIFEST, doc.toString())
    await waitForApiserverRestart(node, before, 120_000)
  }
}, 600_000)

afterAll(async () => {
  try {
    await restoreControlPlane(saved)
  } finally {
    if (stateSaved) {
      if (savedState === undefined) await run('etcdctl', ['del', STATE_KEY])
      else await ok('etcdctl', ['put', STATE_KEY], {input: Buffer.from(savedState, 'base64')})
    }
  }
}, 900_000)

describe('rotate: the context name typed on a terminal', {timeout: 300_000}, () => {
  it('a wrong name refuses (exit 3): the question on the terminal, no spinner over it, nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['rotate', ...sshArgs()], {size: SIZE, type: {after: TYPE_NAME, keys: `${context}x\r`}})
    expect(r.code, r.screen).toBe(3)
    // the new key is named key-<UTC time> (issue 13 item 12)
    expect(r.screen).toMatch(
      /Rotate aescbc\/key1 -> aescbc\/key-\d{8}T\d{6}Z on every control-plane node \(stages add-key, wait-add, promote, wait-promote, rewrite, remove-old;/,
    )
    expect(r.screen).toContain(`Type the context name (${context}) to continue: ${context}x\n`)
    expect(r.screen).toContain(REFUSED)
    expect(r.whileAsking).not.toMatch(SPINNER)
    expect(await clusterState()).toEqual(before)
  })

  it('Ctrl-D instead of the name refuses (exit 3), also on a terminal without a size; nothing changed', async () => {
    const before = await clusterState()
    const r = await onTerminal(['rotate', ...sshArgs(), '--stage', 'add-key'], {type: {after: TYPE_NAME, keys: '\x04'}})
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain('(stage add-key;')
    expect(r.screen).toContain(REFUSED)
    expect(await clusterState()).toEqual(before)
  })

  it('the right name goes ahead: add-key on every node (reloaded, no restart), recorded, the lock released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-encryption-tty-rotate-'))
    const apiservers = await mirrorHashes()
    try {
      const out = join(dir, 'result.json')
      const r = await onTerminal(['rotate', ...sshArgs(), '--stage', 'add-key', '-o', 'json'], {
        size: SIZE,
        type: {after: TYPE_NAME, keys: `${context}\r`},
        redirect: `> ${out}`,
      })
      const stdout = readFileSync(out, 'utf8')
      pluginOutputs.push(stdout)
      expect(r.code, r.screen).toBe(0)
      expect(r.screen).toContain(`Type the context name (${context}) to continue: ${context}\n`)
      expect(stdout).not.toContain('Type the context name')
      const result = JSON.parse(stdout) as {
        newKey: string
        stages: Array<{
          stage: string
          status: string
          nodes?: Array<{node: string; status: string; waitedFor?: string}>
        }>
        state: {status: string; completedStages: string[]}
      }
      expect(result.newKey).toMatch(/^key-\d{8}T\d{6}Z$/)
      expect(result.stages.map((s) => `${s.stage}:${s.status}`)).toEqual(['add-key:done'])
      expect(result.stages[0]!.nodes!.map((n) => `${n.node}:${n.status}:${n.waitedFor}`)).toEqual(
        nodes().map((n) => `${n}:changed:reload`),
      )
      expect(result.state).toMatchObject({status: 'in-progress', completedStages: ['add-key']})
      for (const node of nodes()) expect(await providersOn(node)).toEqual([`aescbc:key1,${result.newKey}`, 'identity:'])
      expect(await mirrorHashes()).toEqual(apiservers)
      const state = JSON.parse(
        await ok('kubectl', ['get', 'configmap', '-n', 'kube-system', 'kubectl-encryption-state', '-o', 'json']),
      ) as {data: Record<string, string>}
      expect(Object.keys(state.data)).toEqual(['rotate'])
      expect(JSON.parse(state.data.rotate!)).toMatchObject({
        status: 'in-progress',
        stage: 'add-key',
        completedStages: ['add-key'],
        newKey: result.newKey,
      })
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('continuing the recorded rotation, a wrong name refuses (exit 3): the record and the nodes as they were', async () => {
    const before = await clusterState()
    const record = JSON.parse((JSON.parse(before.state) as {rotate: string}).rotate) as {completedStages: string[]}
    expect(record.completedStages).toEqual(['add-key'])
    const r = await onTerminal(['rotate', ...sshArgs()], {
      size: SIZE,
      type: {after: TYPE_NAME, keys: `other-${context}\r`},
    })
    expect(r.code, r.screen).toBe(3)
    expect(r.screen).toContain('(stages wait-add, promote, wait-promote, rewrite, remove-old;')
    expect(r.screen).toContain(REFUSED)
    expect(await clusterState()).toEqual(before)
  })

  it('no key material (key1, key2, base64 or hex) in anything shown on the terminal or written to stdout', async () => {
    expect(pluginOutputs.length).toBeGreaterThanOrEqual(4)
    await expectNoKeyMaterial([aescbcConfig([key1])])
    expect(keysSeen(), 'key1 and the key2 add-key wrote').toBeGreaterThanOrEqual(2)
  })
})
