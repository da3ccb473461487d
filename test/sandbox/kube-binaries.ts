// The real Kubernetes binaries the sandbox runs: kube-apiserver, kube-controller-manager, etcd,
// etcdctl, etcdutl, kubectl, the kubelet's exec endpoint and a KMS v2 plugin, built from their release source by the Go module
// in test/sandbox/kube/ and cached by version, so only the first start of a version builds.
//
//   SANDBOX_KUBE_VERSION=v1.36.3   selects another release (one of `kubeReleases` below; "1.36" works too)
//   SANDBOX_CACHE_DIR=DIR          where builds are kept (default ~/.cache/kubectl-encryption/sandbox)
import {execFileSync, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {repoRoot} from './layout.js'

export interface KubeRelease {
  /** the Kubernetes release, as `kubectl version` shows it */
  version: string
  /** go.mod of the build module for this release, relative to test/sandbox/kube/ */
  modfile: string
  /** the etcd release kubeadm pins for it (cmd/kubeadm/app/constants: DefaultEtcdVersion) */
  etcdVersion: string
}

/** Releases the sandbox can build; the first is the default. Each has its own go.mod and go.sum. */
export const kubeReleases: KubeRelease[] = [
  {version: 'v1.37.2', modfile: 'go.mod', etcdVersion: '3.7.0'},
  {version: 'v1.36.3', modfile: 'releases/v1.36.3/go.mod', etcdVersion: '3.6.8'},
]

export const kubeModuleDir = path.join(repoRoot, 'test', 'sandbox', 'kube')

export function selectedRelease(wanted = process.env.SANDBOX_KUBE_VERSION): KubeRelease {
  if (!wanted) return kubeReleases[0]!
  const v = wanted.startsWith('v') ? wanted : `v${wanted}`
  const match = kubeReleases.find((r) => r.version === v || r.version.startsWith(`${v}.`))
  if (!match)
    throw new Error(
      `SANDBOX_KUBE_VERSION=${wanted}: the sandbox builds ${kubeReleases.map((r) => r.version).join(', ')}`,
    )
  return match
}

export interface KubeBinaries {
  release: KubeRelease
  binDir: string
  apiserver: string
  controllerManager: string
  etcd: string
  etcdctl: string
  etcdutl: string
  kubeletExec: string
  kubectl: string
  kmsPlugin: string
}

/** Go package -> binary name, built with the release's go.mod. */
const targets: Array<[pkg: string, name: string]> = [
  ['./cmd/kube-apiserver', 'kube-apiserver'],
  ['./cmd/kube-controller-manager', 'kube-controller-manager'],
  ['./cmd/sandbox-kubelet-exec', 'sandbox-kubelet-exec'],
  ['./cmd/kubectl', 'kubectl'],
  ['./cmd/sandbox-kms-plugin', 'sandbox-kms-plugin'],
  ['go.etcd.io/etcd/server/v3', 'etcd'],
  ['go.etcd.io/etcd/etcdctl/v3', 'etcdctl'],
  ['go.etcd.io/etcd/etcdutl/v3', 'etcdutl'],
]

export function cacheRoot(): string {
  return (
    process.env.SANDBOX_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'kubectl-encryption', 'sandbox')
  )
}

/** Everything a build depends on: the release's go.mod/go.sum and our Go sources. */
function sourceDigest(release: KubeRelease): string {
  const h = createHash('sha256').update(`${release.version}\n${process.env.GOFLAGS ?? ''}\n`)
  const modfile = path.join(kubeModuleDir, release.modfile)
  h.update(readFileSync(modfile)).update(readFileSync(modfile.replace(/\.mod$/, '.sum')))
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, {withFileTypes: true}).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name.endsWith('.go')) h.update(p.slice(kubeModuleDir.length)).update(readFileSync(p))
    }
  }
  walk(path.join(kubeModuleDir, 'cmd'))
  try {
    h.update(execFileSync('go', ['version'], {encoding: 'utf8'}))
  } catch {
    throw new Error(
      'the sandbox builds Kubernetes from source and needs Go (go not found on PATH); run ./scripts/bootstrap.sh',
    )
  }
  return h.digest('hex').slice(0, 16)
}

function binariesIn(release: KubeRelease, binDir: string): KubeBinaries {
  const p = (name: string) => path.join(binDir, name)
  return {
    release,
    binDir,
    apiserver: p('kube-apiserver'),
    controllerManager: p('kube-controller-manager'),
    etcd: p('etcd'),
    etcdctl: p('etcdctl'),
    etcdutl: p('etcdutl'),
    kubeletExec: p('sandbox-kubelet-exec'),
    kubectl: p('kubectl'),
    kmsPlugin: p('sandbox-kms-plugin'),
  }
}

/** The cached binaries of a release, or undefined when they still have to be built. */
export function cachedBinaries(release = selectedRelease()): KubeBinaries | undefined {
  const binDir = path.join(cacheRoot(), `${release.version}-${sourceDigest(release)}`, 'bin')
  return targets.every(([, name]) => existsSync(path.join(binDir, name))) ? binariesIn(release, binDir) : undefined
}

function goBuild(release: KubeRelease, pkg: string, out: string): Promise<void> {
  const [major, minor] = release.version.slice(1).split('.')
  // Stamped as a release build is (hack/lib/version.sh), so `kubectl version` and /version show the release.
  const stamp = (v: string) => [
    `-X ${v}.gitVersion=${release.version}`,
    `-X ${v}.gitMajor=${major}`,
    `-X ${v}.gitMinor=${minor}`,
    `-X ${v}.gitTreeState=clean`,
    `-X ${v}.buildDate=1970-01-01T00:00:00Z`,
  ]
  const ldflags = [
    '-s',
    '-w',
    ...stamp('k8s.io/component-base/version'),
    ...stamp('k8s.io/client-go/pkg/version'),
  ].join(' ')
  const args = ['build', '-trimpath', `-modfile=${release.modfile}`, '-ldflags', ldflags, '-o', out, pkg]
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, {
      cwd: kubeModuleDir,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim()},
    })
    child.once('error', reject)
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`go build ${pkg} (Kubernetes ${release.version}) failed with exit ${code}`)),
    )
  })
}

/**
 * The release's binaries, built first if they are not cached. A cold build of all six takes about
 * 20 minutes on a 2-core machine (measured figures in test/sandbox/README.md); later starts reuse them.
 */
export async function ensureKubeBinaries(
  log: (message: string) => void = () => undefined,
  release = selectedRelease(),
): Promise<KubeBinaries> {
  const cached = cachedBinaries(release)
  if (cached) return cached
  const dir = path.join(cacheRoot(), `${release.version}-${sourceDigest(release)}`)
  const staging = `${dir}.partial-${process.pid}`
  rmSync(staging, {recursive: true, force: true})
  mkdirSync(path.join(staging, 'bin'), {recursive: true})
  const t0 = Date.now()
  log(
    `building Kubernetes ${release.version} and etcd ${release.etcdVersion} from source into ${dir} (first time only; about 20 min on 2 cores)`,
  )
  for (const [pkg, name] of targets) {
    const t = Date.now()
    await goBuild(release, pkg, path.join(staging, 'bin', name))
    log(`built ${name} in ${Math.round((Date.now() - t) / 1000)} s`)
  }
  writeFileSync(
    path.join(staging, 'build.json'),
    `${JSON.stringify({release, builtAt: new Date().toISOString(), seconds: Math.round((Date.now() - t0) / 1000)}, null, 2)}\n`,
  )
  // Another process may have finished the same build meanwhile; either copy is good.
  if (existsSync(path.join(dir, 'bin')) && statSync(path.join(dir, 'bin')).isDirectory())
    rmSync(staging, {recursive: true, force: true})
  else {
    rmSync(dir, {recursive: true, force: true})
    renameSync(staging, dir)
  }
  log(`Kubernetes ${release.version} built in ${Math.round((Date.now() - t0) / 1000)} s`)
  return binariesIn(release, path.join(dir, 'bin'))
}
