// status, verify and inspect against the sandbox through the real kubectl: transports, failure
// paths and exit codes that do not need encryption switched on (see cluster-encrypted.test.ts).
import {readFileSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {json, plugin, spawnPlugin, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, sandbox, waitFor} from './helpers/sandbox.js'
import {etcdFlags} from '../sandbox/etcd-flags.js'
import {testTempDir} from '../helpers/temp-dir.js'

const ns = `checks-${Date.now().toString(36)}`
let blackhole: Server
let blackholePort: number
const held: Socket[] = []

async function verifySecretsLeft(): Promise<string[]> {
  const r = await kubectl(['get', 'secrets', '-n', ns, '-l', 'kubectl-encryption/verify=true', '-o', 'name'])
  return r.stdout.split('\n').filter(Boolean)
}

beforeAll(async () => {
  await ok('kubectl', ['create', 'namespace', ns])
  await ok('kubectl', ['create', 'secret', 'generic', 'probe', '-n', ns, '--from-literal=mykey=mydata'])
  // A TCP server that accepts and never answers: etcd "hangs".
  blackhole = createServer((socket) => held.push(socket))
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  blackholePort = (blackhole.address() as {port: number}).port
})

afterAll(async () => {
  for (const s of held) s.destroy()
  blackhole?.close()
  await kubectl(['delete', 'namespace', ns, '--wait=false'])
})

describe('status with encryption off', () => {
  it('lists every node, says encryption is off, and exits 5; -o json carries the same', async () => {
    const r = await plugin(['status', ...sshArgs()])
    expect(r.code, r.stderr).toBe(5)
    for (const node of sandbox().nodes) expect(r.stdout).toMatch(new RegExp(`^${node}\\s+ready\\s+off`, 'm'))
    expect(r.stdout).toContain('encryption at rest is off')
    const doc = json<{nodes: Array<{node: string; encryption: {enabled: boolean}}>; problems: string[]}>(
      await plugin(['status', ...sshArgs(), '-o', 'json']),
    )
    expect(doc.nodes.map((n) => n.node)).toEqual(sandbox().nodes)
    expect(doc.nodes.every((n) => !n.encryption.enabled)).toBe(true)
    expect(doc.problems).toEqual(['encryption at rest is off: no apiserver has --encryption-provider-config'])
  })

  it('a kubeconfig whose user is an exec credential plugin (as on EKS, GKE, AKS) authenticates', async () => {
    // The plugin hands over the admin's client certificate as an ExecCredential and leaves a mark.
    const dir = testTempDir('exec-auth')
    const admin = parse(readFileSync(sandbox().env.KUBECONFIG!, 'utf8')) as {
      clusters: Array<{cluster: Record<string, string>}>
      users: Array<{name: string; user: Record<string, string>}>
    }
    const user = admin.users.find((u) => u.name === 'kubernetes-admin')!.user
    const pem = (data: string) => Buffer.from(data, 'base64').toString('utf8')
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: {
        clientCertificateData: pem(user['client-certificate-data']!),
        clientKeyData: pem(user['client-key-data']!),
      },
    })
    writeFileSync(join(dir, 'credential.json'), credential, {mode: 0o600})
    const marker = join(dir, 'called')
    const script = `require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes'); process.stdout.write(require('fs').readFileSync(${JSON.stringify(join(dir, 'credential.json'))}))`
    const kubeconfig = join(dir, 'config')
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{name: 'sandbox', cluster: admin.clusters[0]!.cluster}],
        users: [
          {
            name: 'exec-user',
            user: {
              exec: {
                apiVersion: 'client.authentication.k8s.io/v1',
                command: process.execPath,
                args: ['-e', script],
                interactiveMode: 'Never',
              },
            },
          },
        ],
        contexts: [{name: 'exec', context: {cluster: 'sandbox', user: 'exec-user'}}],
        'current-context': 'exec',
      }),
      {mode: 0o600},
    )
    const r = await plugin(['status', '--no-ssh', '--kubeconfig', kubeconfig, '-o', 'json'])
    const doc = json<{context: string; nodes: Array<{node: string; apiserver: {ready: boolean}}>}>(r)
    expect(doc.context).toBe('exec')
    expect(doc.nodes.map((n) => n.node)).toEqual(sandbox().nodes)
    expect(doc.nodes.every((n) => n.apiserver.ready)).toBe(true)
    expect(readFileSync(marker, 'utf8')).toBe('yes')
  })

  it('without SSH still reports every node from the API and metrics, with a warning per node', async () => {
    const r = await plugin(['status', ...sshArgs(), '--ssh-port', '1', '-o', 'json'])
    const doc = json<{nodes: Array<{apiserver: {ready: boolean}}>; warnings: string[]}>(r)
    expect(doc.nodes.every((n) => n.apiserver.ready)).toBe(true)
    expect(doc.warnings.filter((w) => w.includes('SSH:'))).toHaveLength(3)
  })
})

describe('inspect reads one value through each etcd transport', () => {
  const key = () => `/registry/secrets/${ns}/probe`
  const env = () => sandbox().env
  it.each([
    ['exec', () => ['--etcd-via', 'exec'], 'exec (kube-system/etcd-'],
    ['ssh', () => ['--etcd-via', 'ssh', ...sshArgs()], 'ssh ('],
    ['direct', () => etcdFlags(env()), 'direct ('],
  ])('%s', async (_name, args, source) => {
    const r = await plugin(['inspect', key(), '--no-ssh', '-o', 'json', ...args()])
    expect(r.code, r.stderr).toBe(0)
    const doc = json<{
      source: string
      etcdKey: string
      classification: {provider: string; encrypted: boolean; plaintext?: {kind?: string}}
    }>(r)
    expect(doc.source).toContain(source)
    expect(doc.etcdKey).toBe(key())
    expect(doc.classification).toMatchObject({provider: 'identity', encrypted: false, plaintext: {kind: 'Secret'}})
  })

  it('TYPE/NAME resolves through discovery and the context namespace', async () => {
    const r = await plugin(['inspect', 'secret/probe', '-n', ns, '--no-ssh', '--hexdump'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`/registry/secrets/${ns}/probe`)
    expect(r.stdout).toMatch(/^00000000 {2}6b 38 73 00/m)
  })

  it('a key that does not exist is a precondition error (exit 3)', async () => {
    const r = await plugin(['inspect', `/registry/secrets/${ns}/nope`, '--no-ssh'])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`there is no value at /registry/secrets/${ns}/nope in etcd`)
  })
})

describe('clear errors with exit codes from the table', () => {
  it('a bad --context or --kubeconfig is a usage error (exit 2)', async () => {
    const context = await plugin(['status', '--context', 'nope'])
    expect(context.code).toBe(2)
    expect(context.stderr).toContain('context "nope" does not exist')
    const file = await plugin(['status', '--kubeconfig', '/nonexistent/kubeconfig'])
    expect(file.code).toBe(2)
    expect(file.stderr).toContain('/nonexistent/kubeconfig')
  })

  it('an unreachable API server is a precondition error naming the server (exit 3)', async () => {
    const dir = testTempDir('dead-kubeconfig')
    const kubeconfig = readFileSync(sandbox().env.KUBECONFIG!, 'utf8').replace(
      /server: https:\/\/[^\s]+/,
      'server: https://127.0.0.1:1',
    )
    writeFileSync(join(dir, 'config'), kubeconfig, {mode: 0o600})
    const r = await plugin(['status', '--kubeconfig', join(dir, 'config'), '--no-ssh'])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('cannot reach the API server at 127.0.0.1:1: connection refused')
  })

  it('RBAC 403 on secrets names the verb, the resource and how to check', async () => {
    const r = await plugin(['verify', '-n', ns, '--no-ssh', '--kubeconfig', sandbox().env.SANDBOX_VIEWER_KUBECONFIG!])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      new RegExp(`not allowed to create secrets/encryption-verify-[0-9a-f]{8} in namespace ${ns}`),
    )
    expect(r.stderr).toContain(`kubectl auth can-i create secrets -n ${ns}`)
  })

  it('unreachable etcd names the transport and endpoint (exit 3)', async () => {
    const env = sandbox().env
    const r = await plugin(['status', '--no-ssh', '--scan', ...etcdFlags(env, 'https://127.0.0.1:1')])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('through direct (https://127.0.0.1:1)')
    expect(r.stderr).toContain('hint:')
  })

  it('an unreachable node (SSH) names the node (exit 3)', async () => {
    const r = await plugin([
      'inspect',
      `/registry/secrets/${ns}/probe`,
      '--etcd-via',
      'ssh',
      '--no-ssh',
      ...sshArgs(),
      '--ssh-port',
      '1',
      '--ssh-timeout',
      '3',
    ])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(new RegExp(sandbox().nodes.join('|')))
  })
})

describe('verify cleans up', () => {
  it('after a failure: the test Secret is deleted and the hint says so', async () => {
    const env = sandbox().env
    const r = await plugin(['verify', '-n', ns, '--no-ssh', ...etcdFlags(env, 'https://127.0.0.1:1')])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/The test object secrets .*\/encryption-verify-[0-9a-f]{8} was deleted/)
    expect(await verifySecretsLeft()).toEqual([])
  })

  it('after Ctrl-C while etcd hangs: the test Secret is deleted', async () => {
    const env = sandbox().env
    // The previous test's Secret must be gone first, or the wait below sees it and interrupts too early.
    await waitFor(
      'no verify Secret left from before',
      async () => (await verifySecretsLeft()).length === 0,
      60_000,
      100,
    )
    const {child, done} = spawnPlugin([
      'verify',
      '-n',
      ns,
      '--no-ssh',
      ...etcdFlags(env, `https://127.0.0.1:${blackholePort}`),
    ])
    try {
      // Start-up of the plugin through kubectl can take long on a loaded machine.
      await waitFor('the verify Secret to exist', async () => (await verifySecretsLeft()).length === 1, 240_000, 100)
    } finally {
      child.kill('SIGINT')
    }
    const r = await done
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('interrupted')
    expect(await verifySecretsLeft()).toEqual([])
  })

  it('--keep leaves it, and a plain run exits 5 with encryption off (stored in plaintext)', async () => {
    const r = await plugin(['verify', '-n', ns, '--keep', ...sshArgs(), '-o', 'json'])
    const doc = json<{ok: boolean; cleanup: string; stored: {encrypted: boolean}; name: string}>(r)
    expect(r.code).toBe(5)
    expect(doc).toMatchObject({ok: false, cleanup: 'kept', stored: {encrypted: false}})
    expect(await verifySecretsLeft()).toContain(`secret/${doc.name}`)
    await ok('kubectl', ['delete', 'secret', '-n', ns, doc.name])
  })
})
