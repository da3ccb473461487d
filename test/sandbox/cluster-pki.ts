// All certificates, keys, tokens and kubeconfigs of one sandbox, laid out per node as kubeadm does:
//   /etc/kubernetes/pki/{ca,apiserver,apiserver-etcd-client,apiserver-kubelet-client,front-proxy-*,sa}.*
//   /etc/kubernetes/pki/etcd/{ca,server,peer,healthcheck-client}.*
//   /etc/kubernetes/{admin.conf,kubelet.conf,controller-manager.conf}
//   <kubelet dir>/pki/{kubelet-client,kubelet}.* (the kubelet's client and serving certificates)
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import type {NodeLayout, SandboxLayout} from './layout.js'
import {copySecret, issue, makeCa, makeKeyPair, writeSecretFile, type CertAuthority} from './pki.js'

export interface ClusterPki {
  kubeCa: CertAuthority
  etcdCa: CertAuthority
  /** the shared etcd's own serving/peer cert */
  etcdServer: {cert: string; key: string}
  /** etcdctl client for the host side (what ETCDCTL_CERT points at) */
  etcdClient: {cert: string; key: string}
  admin: {cert: string; key: string}
  /** serving certificate of the sandbox's admission webhook (on the load balancer's address) */
  webhook: {cert: string; key: string}
  viewerToken: string
}

/** `onEtcdCerts` runs as soon as etcd's own certificate exists, so etcd can start while the rest is made. */
export async function makeClusterPki(
  layout: SandboxLayout,
  onEtcdCerts?: (ca: CertAuthority, server: {cert: string; key: string}) => void,
): Promise<ClusterPki> {
  const dir = layout.pkiDir
  const allIps = [...layout.nodes.map((n) => n.ip), layout.etcdIp, '127.0.0.1']
  const etcdCa = await makeCa(path.join(dir, 'etcd', 'ca'), 'etcd-ca')
  const etcdServerP = issue(etcdCa, {
    out: path.join(dir, 'etcd', 'shared-server'),
    subject: {cn: 'etcd'},
    dns: ['localhost', ...layout.nodes.map((n) => n.name)],
    ips: allIps,
    usage: ['server', 'client'],
  })
  const [kubeCa, frontProxyCa, etcdServer] = await Promise.all([
    makeCa(path.join(dir, 'ca'), 'kubernetes'),
    makeCa(path.join(dir, 'front-proxy-ca'), 'front-proxy-ca'),
    etcdServerP.then((server) => {
      onEtcdCerts?.(etcdCa, server)
      return server
    }),
  ])
  const [etcdClient, admin, , , webhook] = await Promise.all([
    issue(etcdCa, {out: path.join(dir, 'etcd', 'etcdctl-client'), subject: {cn: 'sandbox-etcdctl'}, usage: ['client']}),
    issue(kubeCa, {
      out: path.join(dir, 'admin'),
      subject: {cn: 'kubernetes-admin', o: ['system:masters']},
      usage: ['client'],
    }),
    makeKeyPair(path.join(dir, 'sa')),
    issue(frontProxyCa, {
      out: path.join(dir, 'front-proxy-client'),
      subject: {cn: 'front-proxy-client'},
      usage: ['client'],
    }),
    issue(kubeCa, {
      out: path.join(dir, 'admission-webhook'),
      subject: {cn: 'sandbox-admission-webhook'},
      ips: [layout.lbIp],
      usage: ['server'],
    }),
  ])
  const viewerToken = randomBytes(24).toString('hex')
  writeSecretFile(path.join(dir, 'tokens.csv'), `${viewerToken},viewer,viewer-uid,"sandbox:viewers"\n`)
  const pki: ClusterPki = {kubeCa, etcdCa, etcdServer, etcdClient, admin, webhook, viewerToken}
  await Promise.all(layout.nodes.map((node) => makeNodePki(layout, node, pki)))
  return pki
}

async function makeNodePki(layout: SandboxLayout, node: NodeLayout, pki: ClusterPki): Promise<void> {
  const p = path.join(node.etcKubernetes, 'pki')
  const shared = layout.pkiDir
  for (const f of [
    'ca.crt',
    'ca.key',
    'front-proxy-ca.crt',
    'front-proxy-ca.key',
    'front-proxy-client.crt',
    'front-proxy-client.key',
    'sa.key',
    'sa.pub',
    'tokens.csv',
    'etcd/ca.crt',
    'etcd/ca.key',
  ]) {
    copySecret(path.join(shared, f), path.join(p, f))
  }
  const nodeSans = {dns: [node.name, 'localhost'], ips: [node.ip, '127.0.0.1', '::1']}
  await Promise.all([
    issue(pki.kubeCa, {
      out: path.join(p, 'apiserver'),
      subject: {cn: 'kube-apiserver'},
      dns: [
        node.name,
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
        'localhost',
      ],
      ips: ['10.96.0.1', node.ip, layout.lbIp, '127.0.0.1'],
      usage: ['server'],
    }),
    issue(pki.kubeCa, {
      out: path.join(p, 'apiserver-kubelet-client'),
      subject: {cn: 'kube-apiserver-kubelet-client', o: ['kubeadm:cluster-admins']},
      usage: ['client'],
    }),
    issue(pki.etcdCa, {
      out: path.join(p, 'apiserver-etcd-client'),
      subject: {cn: 'kube-apiserver-etcd-client'},
      usage: ['client'],
    }),
    issue(pki.etcdCa, {
      out: path.join(p, 'etcd', 'server'),
      subject: {cn: node.name},
      ...nodeSans,
      usage: ['server', 'client'],
    }),
    issue(pki.etcdCa, {
      out: path.join(p, 'etcd', 'peer'),
      subject: {cn: node.name},
      ...nodeSans,
      usage: ['server', 'client'],
    }),
    issue(pki.etcdCa, {
      out: path.join(p, 'etcd', 'healthcheck-client'),
      subject: {cn: 'kube-etcd-healthcheck-client'},
      usage: ['client'],
    }),
    issue(pki.kubeCa, {
      out: path.join(node.kubeletDir, 'pki', 'kubelet-client'),
      subject: {cn: `system:node:${node.name}`, o: ['system:nodes']},
      usage: ['client'],
    }),
    issue(pki.kubeCa, {
      out: path.join(node.kubeletDir, 'pki', 'kubelet'),
      subject: {cn: `${node.name}`},
      ...nodeSans,
      usage: ['server'],
    }),
    issue(pki.kubeCa, {
      out: path.join(node.kubeletDir, 'pki', 'controller-manager'),
      subject: {cn: 'system:kube-controller-manager'},
      usage: ['client'],
    }),
  ])
  const server = `https://${layout.lbIp}:${layout.apiPort}`
  writeSecretFile(
    path.join(node.etcKubernetes, 'admin.conf'),
    kubeconfig({
      server,
      caFile: pki.kubeCa.cert,
      user: 'kubernetes-admin',
      certFile: pki.admin.cert,
      keyFile: pki.admin.key,
    }),
  )
  const kubeletCert = path.join(node.kubeletDir, 'pki', 'kubelet-client')
  writeSecretFile(
    path.join(node.etcKubernetes, 'kubelet.conf'),
    kubeconfig({
      server,
      caFile: pki.kubeCa.cert,
      user: `system:node:${node.name}`,
      certFile: `${kubeletCert}.crt`,
      keyFile: `${kubeletCert}.key`,
    }),
  )
  // kubeadm points the controller manager at its own node's API server, not the load balancer.
  const cm = path.join(node.kubeletDir, 'pki', 'controller-manager')
  writeSecretFile(
    path.join(node.etcKubernetes, 'controller-manager.conf'),
    kubeconfig({
      server: `https://${node.ip}:${layout.apiPort}`,
      caFile: pki.kubeCa.cert,
      user: 'system:kube-controller-manager',
      certFile: `${cm}.crt`,
      keyFile: `${cm}.key`,
    }),
  )
}

const b64 = (file: string) => readFileSync(file).toString('base64')

interface KubeconfigUser {
  server: string
  caFile: string
  user: string
  certFile?: string
  keyFile?: string
  token?: string
  context?: string
}

/** A kubeadm-style kubeconfig with embedded data (admin.conf shape). */
export function kubeconfig(...users: KubeconfigUser[]): string {
  const first = users[0]!
  const ctx = (u: KubeconfigUser) => u.context ?? `${u.user}@kubernetes`
  const userBlock = (u: KubeconfigUser) =>
    u.token
      ? `- name: ${u.user}\n  user:\n    token: ${u.token}\n`
      : `- name: ${u.user}\n  user:\n    client-certificate-data: ${b64(u.certFile!)}\n    client-key-data: ${b64(u.keyFile!)}\n`
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64(first.caFile)}
    server: ${first.server}
  name: kubernetes
contexts:
${users.map((u) => `- context:\n    cluster: kubernetes\n    user: ${u.user}\n  name: ${ctx(u)}\n`).join('')}current-context: ${ctx(first)}
kind: Config
preferences: {}
users:
${users.map(userBlock).join('')}`
}

export function writeKubeconfigs(layout: SandboxLayout, pki: ClusterPki): void {
  const server = `https://${layout.lbIp}:${layout.apiPort}`
  const admin = {
    server,
    caFile: pki.kubeCa.cert,
    user: 'kubernetes-admin',
    certFile: pki.admin.cert,
    keyFile: pki.admin.key,
  }
  const viewer = {server, caFile: pki.kubeCa.cert, user: 'viewer', token: pki.viewerToken, context: 'viewer@kubernetes'}
  writeSecretFile(layout.kubeconfig, kubeconfig(admin, viewer))
  writeSecretFile(layout.restrictedKubeconfig, kubeconfig(viewer))
}
