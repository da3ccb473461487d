// What the kubelet does with broken static pods, as on a real kubeadm node: a manifest that does not
// parse stops the pod; a config file that is not mounted or not valid crash-loops the API server; a
// stray non-dot file in the manifests dir starts a second instance; dot files are ignored.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {apiserverHash, ENC_CONFIG, MANIFEST, withEncryptionFlag} from './helpers/encryption-setup.js'
import {
  isReady,
  kubectl,
  mirrorPod,
  readNodeFile,
  sandbox,
  sshOk,
  waitFor,
  writeNodeFile,
  type MirrorPod,
} from './helpers/sandbox.js'
import {probeHttp} from '../sandbox/api-client.js'

const identityConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
`

function node(): string {
  return sandbox().nodes[2]!
}

const readyz = () => probeHttp(`https://${sandbox().nodeIps[node()]}:6443/readyz`, 1500)

async function apiserverPodsOn(name: string): Promise<MirrorPod[]> {
  const r = await kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'component=kube-apiserver', '-o', 'json'])
  const list = JSON.parse(r.stdout) as {items: MirrorPod[]}
  return list.items.filter((p) => p.spec.nodeName === name)
}

async function containerLog(pod: MirrorPod): Promise<string> {
  const hash = pod.metadata.annotations['kubernetes.io/config.hash']
  return sshOk(
    node(),
    `sudo -n sh -c 'cat /var/log/pods/kube-system_${pod.metadata.name}_${hash}/kube-apiserver/*.log'`,
  )
}

let original = ''
let originalHash = ''

async function restore(): Promise<void> {
  await sshOk(
    node(),
    'sudo -n rm -f /etc/kubernetes/manifests/kube-apiserver.yaml.bak /etc/kubernetes/manifests/.kube-apiserver.yaml.swp',
  )
  if ((await readNodeFile(node(), MANIFEST)) !== original) await writeNodeFile(node(), MANIFEST, original)
  await waitFor(
    'the original kube-apiserver to be back',
    async () => {
      const pod = await mirrorPod(`kube-apiserver-${node()}`)
      return (
        isReady(pod) && pod!.metadata.annotations['kubernetes.io/config.hash'] === originalHash && (await readyz()).ok
      )
    },
    90_000,
  )
}

describe('broken static pods on one node', () => {
  beforeAll(async () => {
    original = await readNodeFile(node(), MANIFEST)
    originalHash = await apiserverHash(node())
  })

  // A failed test must not leave its broken manifest to the next one.
  afterEach(async () => {
    await restore()
  }, 120_000)

  afterAll(async () => {
    await restore()
    await sshOk(node(), 'sudo -n rm -rf /etc/kubernetes/enc')
  }, 120_000)

  it('a manifest that does not parse stops the API server and removes its mirror pod; restoring brings it back', async () => {
    await writeNodeFile(node(), MANIFEST, `${original}\n  - : [unclosed\n`)
    await waitFor('the mirror pod to go away', async () => (await mirrorPod(`kube-apiserver-${node()}`)) === undefined)
    expect((await readyz()).ok).toBe(false)
    const kubeletLog = readFileSync(path.join(sandbox().stateDir, 'logs', `${node()}.log`), 'utf8')
    expect(kubeletLog).toContain(`Could not process manifest file: ${MANIFEST}`)
    await restore()
  })

  it('a config path the pod does not mount cannot be read: the API server crash-loops and says why', async () => {
    await writeNodeFile(node(), ENC_CONFIG, identityConfig)
    await writeNodeFile(node(), MANIFEST, withEncryptionFlag(original, {mount: false}))
    const pod = await waitFor('a crash-looping kube-apiserver', async () => {
      const p = await mirrorPod(`kube-apiserver-${node()}`)
      const status = p?.status.containerStatuses?.[0]
      return p &&
        p.metadata.annotations['kubernetes.io/config.hash'] !== originalHash &&
        status &&
        status.restartCount >= 1
        ? p
        : undefined
    })
    expect(isReady(pod)).toBe(false)
    expect((await readyz()).ok).toBe(false)
    // the file is there on the node, only not inside the pod
    await sshOk(node(), `sudo -n test -f ${ENC_CONFIG}`)
    expect(await containerLog(pod)).toContain(`open ${ENC_CONFIG}: no such file or directory`)
    await restore()
  })

  it('an empty config file that is mounted crash-loops the API server with the apiserver text', async () => {
    const startedAt = new Date().toISOString()
    await writeNodeFile(node(), ENC_CONFIG, '')
    await writeNodeFile(node(), MANIFEST, withEncryptionFlag(original))
    const pod = await waitFor('a crash-looping kube-apiserver', async () => {
      const p = await mirrorPod(`kube-apiserver-${node()}`)
      return p &&
        p.metadata.annotations['kubernetes.io/config.hash'] !== originalHash &&
        (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1
        ? p
        : undefined
    })
    expect(isReady(pod)).toBe(false)
    // The first crash may have another cause (the previous instance still holding the port while it
    // shuts down); within a few restarts the log must say why the config is refused.
    // Any log of this node's kube-apiserver written since the test began (each static-pod incarnation
    // has its own /var/log/pods directory).
    // klog writes the error as err="…", so the quotes around the path are escaped in the log line.
    const emptyConfigError = new RegExp(`encryption provider configuration file \\\\?"${ENC_CONFIG}\\\\?" is empty`)
    await waitFor('the apiserver to log why it refuses the empty config', async () => {
      const logs = await sshOk(
        node(),
        `sudo -n sh -c 'cat /var/log/pods/kube-system_${pod.metadata.name}_*/kube-apiserver/*.log'`,
      )
      return logs.split('\n').some((line) => line.slice(0, 24) >= startedAt && emptyConfigError.test(line))
    })
    // fixing the file alone (same manifest) lets the next restart succeed, after the crash-loop back-off
    const hash = pod.metadata.annotations['kubernetes.io/config.hash']
    await writeNodeFile(node(), ENC_CONFIG, identityConfig)
    await waitFor(
      'kube-apiserver to recover',
      async () => {
        const p = await mirrorPod(`kube-apiserver-${node()}`)
        return isReady(p) && p!.metadata.annotations['kubernetes.io/config.hash'] === hash
      },
      90_000,
    )
    await restore()
  })

  it('a stray kube-apiserver.yaml.bak starts a second instance with a second mirror pod; a dot file does not', async () => {
    await sshOk(node(), `sudo -n cp -p ${MANIFEST} /etc/kubernetes/manifests/.kube-apiserver.yaml.swp`)
    await sshOk(node(), `sudo -n cp -p ${MANIFEST} ${MANIFEST}.bak`)
    const pods = await waitFor('two kube-apiserver mirror pods on the node', async () => {
      const p = await apiserverPodsOn(node())
      return p.length === 2 ? p : undefined
    })
    const hashes = new Set(pods.map((p) => p.metadata.annotations['kubernetes.io/config.hash']))
    expect(hashes.size).toBe(2)
    expect(hashes.has(originalHash)).toBe(true)
    await sshOk(node(), `sudo -n rm -f ${MANIFEST}.bak`)
    await waitFor('the second mirror pod to go away', async () => (await apiserverPodsOn(node())).length === 1)
    // the dot file never became a pod
    expect((await apiserverPodsOn(node()))[0]!.metadata.annotations['kubernetes.io/config.hash']).toBe(originalHash)
    await restore()
  })
})
