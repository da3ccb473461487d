// The sandbox itself: nodes, ssh, kubeconfig identities, mirror pods, env file.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {isReady, kubectl, mirrorPod, ok, run, sandbox, ssh, sshOk, waitFor} from './helpers/sandbox.js'

describe('sandbox', () => {
  it('writes a sourceable env file with kubectl, etcdctl and ssh settings', () => {
    const info = sandbox()
    const env = readFileSync(path.join(info.stateDir, 'env'), 'utf8')
    for (const name of [
      'KUBECONFIG',
      'ETCDCTL_ENDPOINTS',
      'ETCDCTL_CACERT',
      'ETCDCTL_CERT',
      'ETCDCTL_KEY',
      'SANDBOX_NODES',
      'SANDBOX_SSH_CONFIG',
    ]) {
      expect(env).toMatch(new RegExp(`^export ${name}=`, 'm'))
    }
    expect(info.env.SANDBOX_NODES!.split(' ')).toEqual(info.nodes)
    expect(info.nodes).toHaveLength(3)
  })

  it('lets the real etcdctl talk to etcd with mutual TLS, and refuses it without a client cert', async () => {
    const health = await run('etcdctl', ['endpoint', 'health'])
    expect(health.stdout + health.stderr).toMatch(/is healthy/)
    const noCert = await run('etcdctl', ['--dial-timeout=2s', '--command-timeout=3s', 'get', '/registry/x'], {
      env: {ETCDCTL_CERT: '', ETCDCTL_KEY: ''},
    })
    expect(noCert.code).not.toBe(0)
  })

  it('reaches every node over ssh with the generated config, pinned host keys and passwordless sudo', async () => {
    const {nodes, nodeIps} = sandbox()
    for (const node of nodes) {
      const manifest = await sshOk(node, 'sudo -n cat /etc/kubernetes/manifests/kube-apiserver.yaml')
      // each node sees its own /etc/kubernetes at the real path
      expect(manifest).toContain(`--advertise-address=${nodeIps[node]}`)
      expect(manifest).toMatch(/^# kube-apiserver static pod/m)
      const who = await sshOk(node, 'sudo -n openssl x509 -in /etc/kubernetes/pki/etcd/server.crt -noout -subject')
      expect(who).toContain(`CN = ${node}`)
    }
  })

  it('refuses an ssh host key that is not the pinned one', async () => {
    const {nodes, env} = sandbox()
    // cp-1's address with cp-2's known_hosts entry only: strict checking must refuse.
    const knownHosts = readFileSync(path.join(path.dirname(env.SANDBOX_SSH_CONFIG!), 'known_hosts'), 'utf8')
    const other = knownHosts.split('\n').find((l) => l.startsWith(`${sandbox().nodeIps[nodes[1]!]} `))!
    const forged = `${sandbox().nodeIps[nodes[0]!]} ${other.split(' ').slice(1).join(' ')}\n`
    const file = path.join(sandbox().stateDir, 'forged_known_hosts')
    const {writeFileSync} = await import('node:fs')
    writeFileSync(file, forged)
    const r = await run('ssh', ['-F', env.SANDBOX_SSH_CONFIG!, '-o', `UserKnownHostsFile=${file}`, nodes[0]!, 'true'])
    expect(r.code).toBe(255)
    expect(r.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
  })

  it('does not give the ssh user root without sudo, and keeps the manifests root-only', async () => {
    const node = sandbox().nodes[0]!
    const r = await ssh(node, 'cat /etc/kubernetes/manifests/kube-apiserver.yaml')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/Permission denied/)
  })

  it('shows three Ready control-plane nodes and their mirror pods through the real kubectl', async () => {
    const nodes = JSON.parse(await ok('kubectl', ['get', 'nodes', '-o', 'json'])) as {
      items: Array<{
        metadata: {name: string; labels: Record<string, string>}
        status: {addresses: Array<{type: string; address: string}>; conditions: Array<{type: string; status: string}>}
      }>
    }
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(sandbox().nodes)
    for (const n of nodes.items) {
      expect(n.metadata.labels).toHaveProperty('node-role.kubernetes.io/control-plane', '')
      expect(n.status.addresses).toContainEqual({type: 'InternalIP', address: sandbox().nodeIps[n.metadata.name]})
      expect(n.status.conditions).toContainEqual(expect.objectContaining({type: 'Ready', status: 'True'}))
    }
    const pods = await ok('kubectl', [
      'get',
      'pods',
      '-n',
      'kube-system',
      '-l',
      'component=kube-apiserver,tier=control-plane',
      '-o',
      'name',
    ])
    expect(pods.trim().split('\n').sort()).toEqual(sandbox().nodes.map((n) => `pod/kube-apiserver-${n}`))
    for (const node of sandbox().nodes) {
      const pod = await mirrorPod(`kube-apiserver-${node}`)
      expect(isReady(pod)).toBe(true)
      expect(pod!.spec.nodeName).toBe(node)
      expect(pod!.metadata.annotations['kubernetes.io/config.source']).toBe('file')
      expect(pod!.metadata.annotations['kubernetes.io/config.mirror']).toBe(
        pod!.metadata.annotations['kubernetes.io/config.hash'],
      )
      expect(pod!.metadata.annotations['kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint']).toBe(
        `${sandbox().nodeIps[node]}:6443`,
      )
      expect(pod!.spec.containers[0]!.command).toContain('--secure-port=6443')
      const etcd = await mirrorPod(`etcd-${node}`)
      expect(etcd!.metadata.labels).toMatchObject({component: 'etcd', tier: 'control-plane'})
      expect(etcd!.metadata.annotations['kubeadm.kubernetes.io/etcd.advertise-client-urls']).toBe(
        `https://${sandbox().nodeIps[node]}:2379`,
      )
    }
  })

  it('gives each kube-apiserver its own identity lease, named for its node as on separate hosts', async () => {
    // kube-apiserver names its identity lease after the host name; the sandbox's containers get the node's.
    const hostnames = await waitFor('an identity lease per apiserver', async () => {
      const leases = JSON.parse(
        await ok('kubectl', [
          'get',
          'leases',
          '-n',
          'kube-system',
          '-l',
          'apiserver.kubernetes.io/identity=kube-apiserver',
          '-o',
          'json',
        ]),
      ) as {items: Array<{metadata: {labels: Record<string, string>}}>}
      const names = [...new Set(leases.items.map((l) => l.metadata.labels['kubernetes.io/hostname']))].sort()
      return sandbox().nodes.every((n) => names.includes(n)) ? names : undefined
    })
    expect(hostnames).toEqual(sandbox().nodes)
  })

  it('has the kubeadm-config ConfigMap with a ClusterConfiguration', async () => {
    const cm = JSON.parse(
      await ok('kubectl', ['get', 'configmap', '-n', 'kube-system', 'kubeadm-config', '-o', 'json']),
    ) as {data: Record<string, string>}
    expect(cm.data.ClusterConfiguration).toMatch(/kind: ClusterConfiguration/)
    expect(cm.data.ClusterConfiguration).toContain(`controlPlaneEndpoint: ${sandbox().lbEndpoint}`)
  })

  it('gives the viewer context a 403 on secrets but not on configmaps', async () => {
    const denied = await kubectl(['--context', 'viewer@kubernetes', 'get', 'secrets', '-n', 'default'])
    expect(denied.code).not.toBe(0)
    expect(denied.stderr).toContain(
      'secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"',
    )
    const allowed = await kubectl(['--context', 'viewer@kubernetes', 'get', 'configmaps', '-n', 'kube-system'])
    expect(allowed.code).toBe(0)
  })
})
