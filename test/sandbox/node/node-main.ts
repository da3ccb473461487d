// One sandbox control-plane node. Started by the sandbox as
//   unshare --mount --propagation private -- node --import tsx node/node-main.ts <node.json>
// so everything below runs in the node's own mount namespace: its directory is bind-mounted at the
// real /etc/kubernetes (and /var/log/pods), then sshd and the kubelet run here, and so does every
// ssh session and every static pod. The kubelet's exec endpoint (:10250) is a small Go server with
// Kubernetes' own streaming code (test/sandbox/kube/cmd/sandbox-kubelet-exec).
import {execFileSync, spawn} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync} from 'node:fs'
import path from 'node:path'
import {SandboxApiClient} from '../api-client.js'
import type {NodeLayout, SandboxLayout} from '../layout.js'
import {Kubelet} from './kubelet.js'

interface NodeConfig {
  layout: SandboxLayout
  node: NodeLayout
  repoRoot: string
  maxBackoffMs: number
  /** the real binaries (KubeBinaries.binDir) and their release */
  binDir: string
  kubernetesVersion: string
  /** the sandbox's own mount namespace (readlink /proc/self/ns/mnt there) */
  hostMountNamespace: string
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as NodeConfig
const {layout, node} = config
const log = (message: string) => process.stdout.write(`${new Date().toISOString()} ${node.name} ${message}\n`)

function fail(message: string): never {
  process.stderr.write(`sandbox node ${node.name}: ${message}\n`)
  process.exit(3)
}

// Refuse to touch the host's mounts: we must be in a mount namespace of our own.
if (readlinkSync('/proc/self/ns/mnt') === config.hostMountNamespace) {
  fail('not running in a private mount namespace (start nodes through `unshare --mount --propagation private`)')
}

function bind(source: string, target: string): void {
  mkdirSync(source, {recursive: true})
  try {
    execFileSync('mount', ['--bind', source, target], {stdio: 'pipe'})
  } catch (error) {
    const stderr = String((error as {stderr?: Buffer}).stderr ?? '').trim()
    fail(
      `cannot bind-mount ${source} at ${target}: ${stderr || (error as Error).message} (the sandbox needs root and mount namespaces)`,
    )
  }
}

bind(node.etcKubernetes, '/etc/kubernetes')
mkdirSync('/var/log/pods', {recursive: true})
bind(node.varLogPods, '/var/log/pods')

// etcdctl and etcdutl installed on the node, as operators do on a kubeadm control-plane node: the
// plugin's --etcd-via ssh runs `sudo etcdctl`, and sudo's secure_path starts with /usr/local/sbin.
// That directory gets the release's two tools, beside copies of whatever the host keeps there.
const localSbin = path.join(path.dirname(node.etcKubernetes), 'usr-local-sbin')
rmSync(localSbin, {recursive: true, force: true})
mkdirSync(localSbin, {recursive: true})
if (existsSync('/usr/local/sbin')) cpSync('/usr/local/sbin', localSbin, {recursive: true, verbatimSymlinks: true})
for (const tool of ['etcdctl', 'etcdutl']) {
  rmSync(path.join(localSbin, tool), {force: true})
  symlinkSync(path.join(config.binDir, tool), path.join(localSbin, tool))
}
bind(localSbin, '/usr/local/sbin')

const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(node.sshdDir, 'sshd_config')], {
  stdio: ['ignore', 'inherit', 'inherit'],
})
sshd.on('exit', (code, signal) => {
  if (!stopping) log(`sshd exited (${code ?? signal})`)
})

const pkiDir = path.join(node.kubeletDir, 'pki')
const podsFile = path.join(node.kubeletDir, 'pods.json')
// Commands run by `kubectl exec` find the release's etcdctl first, as in the etcd image.
const execPath = [config.binDir, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(
  ':',
)
const execServer = spawn(
  path.join(config.binDir, 'sandbox-kubelet-exec'),
  [
    `--address=${node.ip}:10250`,
    `--tls-cert-file=${path.join(pkiDir, 'kubelet.crt')}`,
    `--tls-private-key-file=${path.join(pkiDir, 'kubelet.key')}`,
    '--client-ca-file=/etc/kubernetes/pki/ca.crt',
    `--pods-file=${podsFile}`,
    `--path=${execPath}`,
  ],
  // Its own PATH is the exec'd commands' PATH too: Go's exec.Command looks a bare name up in the
  // calling process's PATH when the command is built, and fails on a machine with no etcdctl of its own.
  {stdio: ['ignore', 'inherit', 'inherit'], env: {...process.env, PATH: execPath}},
)
execServer.on('exit', (code, signal) => {
  if (!stopping) log(`kubelet exec server exited (${code ?? signal})`)
})
const api = new SandboxApiClient({
  server: `https://${layout.lbIp}:${layout.apiPort}`,
  ca: '/etc/kubernetes/pki/ca.crt',
  cert: path.join(pkiDir, 'kubelet-client.crt'),
  key: path.join(pkiDir, 'kubelet-client.key'),
})
const kubelet = new Kubelet({
  nodeName: node.name,
  nodeIp: node.ip,
  nodeEtcKubernetes: node.etcKubernetes,
  manifestsDir: '/etc/kubernetes/manifests',
  repoRoot: config.repoRoot,
  binDir: config.binDir,
  podsFile,
  api,
  maxBackoffMs: config.maxBackoffMs,
  kubeletVersion: config.kubernetesVersion,
  log,
})
kubelet.start()
log(`node up: ${node.ip}, sshd :${node.sshPort}, kubelet watching /etc/kubernetes/manifests`)

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log(`stopping (${signal})`)
  sshd.kill('SIGTERM')
  execServer.kill('SIGTERM')
  await kubelet.stop()
  api.close()
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
