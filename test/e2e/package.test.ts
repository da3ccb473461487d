// The standalone executable as a user gets it: `npm run package` for this machine's platform, the
// archive unpacked the way krew installs it (the files in a store dir, a symlink named
// kubectl-encryption in a bin dir on PATH), and run through the real kubectl with no node on PATH.
import {execFileSync, spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {createHash} from 'node:crypto'
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, chmodSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'

import {lintKrewManifest, readKrewManifest} from '../../scripts/krew-manifest.js'
import {archiveName, hostPlatform} from '../../scripts/platforms.js'

const root = new URL('../..', import.meta.url).pathname
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}
const host = hostPlatform()
const kubectl = spawnSync('sh', ['-c', 'command -v kubectl'], {encoding: 'utf8'}).stdout.trim()

describe.skipIf(!host || !kubectl)('the packaged plugin, installed as krew installs it', () => {
  const work = mkdtempSync(join(tmpdir(), 'package-e2e-'))
  const out = join(work, 'build')
  const manifest = join(work, 'krew-manifest.yaml')
  const store = join(work, 'krew', 'store', 'encryption', `v${pjson.version}`)
  const bin = join(work, 'krew', 'bin')
  const tools = join(work, 'tools')
  // PATH holds the plugin's bin dir, kubectl and ssh (as a user has them), nothing else: no node.
  const env = {HOME: work, PATH: `${bin}:${tools}`, KUBECONFIG: join(work, 'kubeconfig')}
  const sandbox = inject('sandbox')
  const name = `${host!.os}-${host!.arch}`

  function kubectlRun(...args: string[]): SpawnSyncReturns<string> {
    return spawnSync('kubectl', args, {env, encoding: 'utf8', timeout: 60_000})
  }

  beforeAll(() => {
    copyFileSync(join(root, 'krew-manifest.yaml'), manifest)
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/package.ts'), '--platforms', name, '--out', out, '--manifest', manifest], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    mkdirSync(store, {recursive: true})
    mkdirSync(bin, {recursive: true})
    mkdirSync(tools, {recursive: true})
    execFileSync('tar', ['-xzf', join(out, archiveName(host!)), '-C', store])
    symlinkSync(join(store, host!.bin), join(bin, 'kubectl-encryption'))
    for (const tool of ['kubectl', 'ssh']) {
      const path = spawnSync('sh', ['-c', `command -v ${tool}`], {encoding: 'utf8'}).stdout.trim()
      if (path) symlinkSync(realpathSync(path), join(tools, tool))
    }
    writeFileSync(env.KUBECONFIG, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n')
    // About 20 s of CPU (strip, blob, inject, gzip of a 100 MiB executable); minutes on a busy machine.
  }, 600_000)
  afterAll(() => rmSync(work, {recursive: true, force: true}))

  it('has no node on PATH', () => {
    expect(spawnSync('/bin/sh', ['-c', 'command -v node'], {env}).status).not.toBe(0)
  })

  it('archives the executable and LICENSE, and the manifest carries the archive’s sha256', () => {
    const listing = execFileSync('tar', ['-tzf', join(out, archiveName(host!))], {encoding: 'utf8'})
    expect(listing.trim().split('\n').sort()).toEqual(['LICENSE', host!.bin])
    const plugin = readKrewManifest(manifest)
    expect(lintKrewManifest(plugin)).toEqual([])
    const entry = plugin.spec!.platforms!.find((p) => p.selector?.matchLabels?.os === host!.os && p.selector?.matchLabels?.arch === host!.arch)
    const digest = createHash('sha256').update(readFileSync(join(out, archiveName(host!)))).digest('hex')
    expect(entry?.sha256).toBe(digest)
  })

  it('runs `kubectl encryption --help`', () => {
    const help = kubectlRun('encryption', '--help')
    expect(help.status, help.stderr).toBe(0)
    expect(help.stdout).toContain('$ kubectl encryption [COMMAND]')
    expect(help.stdout).toMatch(/^ {2}version\s+Print the plugin version\./m)
    expect(help.stderr).toBe('')
  })

  it('runs `kubectl encryption version` from the executable’s own node', () => {
    const version = kubectlRun('encryption', 'version', '-o', 'json')
    expect(version.status, version.stderr).toBe(0)
    expect(JSON.parse(version.stdout)).toEqual({
      plugin: 'kubectl-encryption',
      version: pjson.version,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    })
    expect(kubectlRun('encryption', 'version').stdout).toMatch(new RegExp(`^Version:\\s+v${pjson.version}$`, 'm'))
  })

  it('keeps the exit codes of the error table through kubectl', () => {
    const bad = kubectlRun('encryption', 'version', '-o', 'xml')
    expect(bad.status).toBe(2)
    expect(bad.stdout).toBe('')
    expect(bad.stderr).toContain('error: Expected --output=xml to be one of')
  })

  it('is found by `kubectl plugin list`', () => {
    const list = kubectlRun('plugin', 'list')
    expect(list.stdout).toContain(join(bin, 'kubectl-encryption'))
    expect(list.stderr).not.toContain('kubectl-encryption')
  })

  it('completes through kubectl’s plugin completion', () => {
    writeFileSync(join(bin, 'kubectl_complete-encryption'), '#!/bin/sh\nexec kubectl-encryption __complete "$@"\n')
    chmodSync(join(bin, 'kubectl_complete-encryption'), 0o755)
    const completion = kubectlRun('__complete', 'encryption', 'vers')
    expect(completion.stdout.split('\n')).toContain('version')
  })

  it('reports `kubectl encryption status` on the sandbox through the API', () => {
    const status = spawnSync('kubectl', ['encryption', 'status', '--no-ssh', '-o', 'json'], {
      env: {...env, KUBECONFIG: sandbox.env.KUBECONFIG!},
      encoding: 'utf8',
      timeout: 120_000,
    })
    // 0, or 5 when the check finds a problem (encryption off, as the sandbox starts).
    expect([0, 5], status.stderr).toContain(status.status)
    const result = JSON.parse(status.stdout) as {server: string; nodes: {node: string; apiserver: {ready: boolean}}[]}
    expect(result.server).toBe(`https://${sandbox.lbEndpoint}`)
    expect(result.nodes.map((n) => n.node).sort()).toEqual([...sandbox.nodes].sort())
    expect(result.nodes.every((n) => n.apiserver.ready)).toBe(true)
  })

  it('runs the whole `kubectl encryption verify` round trip on the sandbox (etcd through pods/exec)', () => {
    const verify = spawnSync('kubectl', ['encryption', 'verify', '-n', 'default', '--etcd-via', 'exec', '--no-ssh', '--hexdump', '-o', 'json'], {
      env: {...env, KUBECONFIG: sandbox.env.KUBECONFIG!},
      encoding: 'utf8',
      timeout: 120_000,
    })
    const result = JSON.parse(verify.stdout) as {etcdKey: string; stored?: {provider: string}; roundTrip: string; cleanup: string; hexdump?: string; ok: boolean}
    // The sandbox may run with or without encryption when this file runs; the round trip is the same.
    expect([0, 5], verify.stderr).toContain(verify.status)
    expect(result.etcdKey).toMatch(/^\/registry\/secrets\/default\//)
    expect(result.stored?.provider).toBeTruthy()
    expect(result.roundTrip).toBe('ok')
    expect(result.cleanup).toBe('deleted')
    expect(result.hexdump).toMatch(/^00000000 {2}/)
    const name = result.etcdKey.split('/').pop()!
    const left = spawnSync('kubectl', ['get', 'secret', name, '-n', 'default'], {env: {...env, KUBECONFIG: sandbox.env.KUBECONFIG!}, encoding: 'utf8'})
    expect(left.stderr).toContain('NotFound')
  })
})
