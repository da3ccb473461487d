// Encryption configured by hand, as the seed describes (config file + manifest edit over ssh), and the
// seed's HA caution: nodes whose configs differ cannot read each other's writes.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {aescbcConfig, ENC_CONFIG, enableOnNode, MANIFEST, newKey, apiserverHash} from './helpers/encryption-setup.js'
import {probeHttp} from '../sandbox/api-client.js'
import {
  kubectl,
  kubectlOnNode,
  ok,
  readNodeFile,
  run,
  sandbox,
  sshOk,
  waitForApiserverRestart,
  writeNodeFile,
} from './helpers/sandbox.js'

const NS = 'default'
const key1 = newKey('key1')
const key2 = newKey('key2')
const originals = new Map<string, string>()

/** The ASCII column of `hexdump -C`, joined, so a prefix split over two lines is still found. */
async function hexdumpText(key: string): Promise<string> {
  const r = await run('sh', ['-c', `etcdctl get ${key} | hexdump -C`])
  expect(r.code).toBe(0)
  return r.stdout
    .split('\n')
    .map((l) => /\|(.*)\|$/.exec(l)?.[1] ?? '')
    .join('')
}

async function restoreAll(config: string | undefined): Promise<void> {
  await Promise.all(
    sandbox().nodes.map(async (node) => {
      const before = await apiserverHash(node)
      if (config) return enableOnNode(node, config)
      const original = originals.get(node)!
      if ((await readNodeFile(node, MANIFEST)) === original) return
      await writeNodeFile(node, MANIFEST, original)
      await waitForApiserverRestart(node, before)
    }),
  )
}

describe('encryption at rest configured by hand, on three nodes', () => {
  beforeAll(async () => {
    for (const node of sandbox().nodes) originals.set(node, await readNodeFile(node, MANIFEST))
  })

  afterAll(async () => {
    // Make every object readable everywhere, delete the test secrets, then go back to no encryption.
    await restoreAll(aescbcConfig([key1, key2]))
    await kubectl(['delete', 'secret', 'secret1', 'secret2', '-n', NS, '--ignore-not-found'])
    await restoreAll(undefined)
    for (const node of sandbox().nodes) await sshOk(node, 'sudo -n rm -rf /etc/kubernetes/enc')
  }, 300_000)

  it('writes new secrets with aescbc key1 once every node runs with the config (hexdump shows k8s:enc:aescbc:v1:key1:)', async () => {
    await Promise.all(sandbox().nodes.map((node) => enableOnNode(node, aescbcConfig([key1, key2]))))
    for (const node of sandbox().nodes) {
      const manifest = await readNodeFile(node, MANIFEST)
      expect(manifest).toContain(`--encryption-provider-config=${ENC_CONFIG}`)
      expect(manifest).toMatch(/^# kube-apiserver static pod/m) // comments survive the edit
    }
    await kubectl(['delete', 'secret', 'secret1', '-n', NS, '--ignore-not-found'])
    await ok('kubectl', ['create', 'secret', 'generic', 'secret1', '-n', NS, '--from-literal=mykey=mydata'])
    expect(await hexdumpText(`/registry/secrets/${NS}/secret1`)).toContain('k8s:enc:aescbc:v1:key1:')
    const yaml = await ok('kubectl', ['get', 'secret', 'secret1', '-n', NS, '-o', 'yaml'])
    expect(yaml).toMatch(/^\s+mykey: bXlkYXRh$/m)
  })

  it('a node whose first key changed writes with the new key; another node still reads it while both keys are listed', async () => {
    const [writer, reader] = sandbox().nodes as [string, string]
    await enableOnNode(writer, aescbcConfig([key2, key1]))
    await kubectlOnNode(writer, ['delete', 'secret', 'secret2', '-n', NS, '--ignore-not-found'])
    await ok('kubectl', [
      `--server=https://${sandbox().nodeIps[writer]}:6443`,
      'create',
      'secret',
      'generic',
      'secret2',
      '-n',
      NS,
      '--from-literal=mykey=mydata',
    ])
    expect(await hexdumpText(`/registry/secrets/${NS}/secret2`)).toContain('k8s:enc:aescbc:v1:key2:')
    const viaReader = await kubectlOnNode(reader, [
      'get',
      'secret',
      'secret2',
      '-n',
      NS,
      '-o',
      'jsonpath={.data.mykey}',
    ])
    expect(viaReader.stdout).toBe('bXlkYXRh')
  })

  it('the other node fails to read it once the new key is not in its config (the seed HA caution)', async () => {
    const [, reader] = sandbox().nodes as [string, string]
    // The real kube-apiserver goes further than failing that one read: its informers cannot list
    // Secrets, so it serves requests but never becomes Ready.
    await enableOnNode(reader, aescbcConfig([key1]), 'serving')
    const r = await kubectlOnNode(reader, ['get', 'secret', 'secret2', '-n', NS, '-o', 'yaml'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('Internal error occurred')
    expect((await probeHttp(`https://${sandbox().nodeIps[reader]}:6443/readyz`, 5000)).ok).toBe(false)
    // key1 data stays readable there
    const old = await kubectlOnNode(reader, ['get', 'secret', 'secret1', '-n', NS, '-o', 'jsonpath={.data.mykey}'])
    expect(old.stdout).toBe('bXlkYXRh')
  })
})
