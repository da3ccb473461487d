// The standalone executables as users get them: `npm run package` for every platform, the manifest
// through krew's own validator (the one the krew-index runs), the plugin installed by the real krew
// (test/tools/krew, built by scripts/bootstrap.sh) into a temporary KREW_ROOT and run through the real
// kubectl with no node on PATH, then uninstalled. The macOS executables are checked with a Mach-O
// reader (llvm-objdump), rcodesign and their page hashes; the Windows ones with a PE reader
// (llvm-readobj), and the amd64 one runs under Wine, also against the sandbox. Nothing here can run
// a macOS, Linux arm64 or Windows arm64 executable.
import {spawn, spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  chmodSync,
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import {parseDocument} from 'yaml'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'

import {lintKrewManifest, readKrewManifest} from '../../scripts/krew-manifest.js'
import {
  archiveName,
  hostPlatform,
  NODE_VERSION,
  type Platform,
  platformName,
  PLATFORMS,
} from '../../scripts/platforms.js'
import {findTool} from '../../scripts/tools.js'

const root = new URL('../..', import.meta.url).pathname
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}
const host = hostPlatform()
const which = (tool: string) =>
  spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], {encoding: 'utf8'}).stdout.trim() || undefined
const kubectl = which('kubectl')
const krew = findTool('kubectl-krew')
const validator = findTool('validate-krew-manifest')
const rcodesign = findTool('rcodesign')
const llvmObjdump = which('llvm-objdump')
const llvmReadobj = which('llvm-readobj')
const wine = ['/usr/lib/wine/wine64', which('wine64')].find((p) => p && existsSync(p))
// The macOS executables must be signed again after the blob goes in; without rcodesign they are not built.
const built = PLATFORMS.filter((p) => p.os !== 'darwin' || rcodesign)
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

/** Runs without blocking the event loop (the archive server below answers krew meanwhile). */
function runAsync(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{status: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stdout, stderr}))
  })
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

describe.skipIf(!host || !kubectl || !krew)('the packaged plugin, installed through the real krew', () => {
  const work = mkdtempSync(join(tmpdir(), 'package-e2e-'))
  const out = join(work, 'build')
  // validate-krew-manifest takes the plugin's name from the file's: encryption.yaml.
  const manifest = join(work, 'encryption.yaml')
  const krewRoot = join(work, 'krew')
  const bin = join(krewRoot, 'bin')
  const tools = join(work, 'tools')
  // krew's list and uninstall want a plugin index (a git clone): an empty one made here stands in for
  // the krew-index, which this machine cannot reach.
  const index = join(work, 'krew-index')
  // PATH holds krew's bin dir, kubectl, kubectl-krew, git and ssh (as a user has them), nothing else: no node.
  const env = {
    HOME: work,
    PATH: `${bin}:${tools}`,
    KUBECONFIG: join(work, 'kubeconfig'),
    KREW_ROOT: krewRoot,
    KREW_NO_UPGRADE_CHECK: '1',
    KREW_DEFAULT_INDEX_URI: index,
  }
  const sandbox = inject('sandbox')
  let install: SpawnSyncReturns<string>

  const kubectlRun = (...args: string[]): SpawnSyncReturns<string> =>
    spawnSync('kubectl', args, {env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe']})
  const packageRun = (platforms: Platform[], outDir: string, manifestFile: string) => {
    const packaged = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'scripts/package.ts'),
        '--platforms',
        platforms.map(platformName).join(','),
        '--out',
        outDir,
        '--manifest',
        manifestFile,
        '--keep-sea-parts',
      ],
      {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    // A code cache run that disagreed with the two that agreed (scripts/package.ts) goes into the log.
    if (packaged.stderr.includes('code caches differed')) console.warn(packaged.stderr)
    return packaged
  }

  beforeAll(() => {
    writeFileSync(manifest, readFileSync(join(root, 'krew-manifest.yaml')))
    const packaged = packageRun(built, out, manifest)
    if (packaged.status !== 0) throw new Error(`npm run package failed:\n${packaged.stderr}`)
    mkdirSync(tools, {recursive: true})
    symlinkSync(krew!, join(tools, 'kubectl-krew'))
    for (const tool of ['kubectl', 'ssh', 'git']) {
      const path = which(tool)
      if (path) symlinkSync(realpathSync(path), join(tools, tool))
    }
    writeFileSync(env.KUBECONFIG, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n')
    mkdirSync(join(index, 'plugins'), {recursive: true})
    writeFileSync(join(index, 'plugins', '.keep'), '')
    const git = (...args: string[]) =>
      spawnSync('git', ['-C', index, '-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', ...args], {
        env,
        stdio: 'ignore',
      })
    for (const args of [
      ['init', '-q'],
      ['add', '.'],
      ['commit', '-qm', 'empty index'],
    ])
      if (git(...args).status !== 0) throw new Error(`git ${args[0]} failed`)
    const update = kubectlRun('krew', 'update')
    if (update.status !== 0) throw new Error(`kubectl krew update failed:\n${update.stderr}`)
    install = kubectlRun('krew', 'install', `--manifest=${manifest}`, `--archive=${join(out, archiveName(host!))}`)
    // CPU: about 15 s a platform (strip, blob, inject, sign, gzip of a 100 MiB executable); minutes on a busy machine.
  }, 1_200_000)
  afterAll(() => rmSync(work, {recursive: true, force: true}))

  it('has no node on PATH', () => {
    expect(spawnSync('/bin/sh', ['-c', 'command -v node'], {env}).status).not.toBe(0)
  })

  it('archives each platform’s executable and LICENSE, and the manifest carries each archive’s sha256', () => {
    const plugin = readKrewManifest(manifest)
    expect(lintKrewManifest(plugin)).toEqual([])
    for (const platform of built) {
      const listing = spawnSync('tar', ['-tzvf', join(out, archiveName(platform))], {encoding: 'utf8'})
        .stdout.trim()
        .split('\n')
      expect(listing.map((line) => line.split(/\s+/).pop()).sort(), platformName(platform)).toEqual([
        'LICENSE',
        platform.bin,
      ])
      expect(listing.find((line) => line.endsWith(` ${platform.bin}`))).toMatch(/^-rwxr-xr-x 0\/0 /)
      const entry = plugin.spec!.platforms!.find(
        (p) => p.selector?.matchLabels?.os === platform.os && p.selector?.matchLabels?.arch === platform.arch,
      )
      expect(entry?.sha256, platformName(platform)).toBe(sha256(join(out, archiveName(platform))))
    }
  })

  it.skipIf(!validator)(
    'passes krew’s own manifest validation (validate-krew-manifest, as the krew-index runs it)',
    async () => {
      const result = await runAsync(validator!, ['-manifest', manifest, '-skip-install'], {PATH: env.PATH, HOME: work})
      expect(result.status, result.stderr).toBe(0)
      expect(result.stderr).toContain('structural validation OK')
      expect(result.stderr).toContain('no overlapping spec.platform[].selector')
    },
  )

  it.skipIf(!validator)(
    'installs every built platform’s archive with the validator’s own install check (uri served from this machine)',
    async () => {
      // The validator downloads each uri: a copy of the manifest points them at a server on loopback.
      const files = new Map(built.map((p) => [`/${archiveName(p)}`, join(out, archiveName(p))]))
      const server: Server = createServer((req, res) => {
        const file = files.get(req.url ?? '')
        if (!file) return void res.writeHead(404).end()
        res.writeHead(200, {'content-length': statSync(file).size})
        createReadStream(file).pipe(res)
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      try {
        const port = (server.address() as {port: number}).port
        const doc = parseDocument(readFileSync(manifest, 'utf8'))
        const platforms = (doc.toJSON() as {spec: {platforms: {selector: {matchLabels: {os: string}}; uri: string}[]}})
          .spec.platforms
        const kept = platforms
          .filter((p) => built.some((b) => b.os === p.selector.matchLabels.os))
          .map((p) => ({...p, uri: `http://127.0.0.1:${port}/${p.uri.split('/').pop()}`}))
        doc.setIn(['spec', 'platforms'], doc.createNode(kept))
        const local = join(work, 'local', 'encryption.yaml')
        mkdirSync(join(work, 'local'))
        writeFileSync(local, doc.toString())
        const result = await runAsync(validator!, ['-manifest', local], {PATH: env.PATH, HOME: work})
        expect(result.status, result.stderr).toBe(0)
        expect(result.stderr).toContain(`all ${built.length} spec.platforms installed fine`)
      } finally {
        await new Promise((resolve) => server.close(resolve))
      }
    },
    600_000,
  )

  it('installs with `kubectl krew install --manifest --archive`', () => {
    expect(install.status, install.stderr).toBe(0)
    expect(install.stderr).toContain('Installed plugin: encryption')
    // "detached": installed from a manifest, not from an index.
    expect(kubectlRun('krew', 'list').stdout.split('\n')).toContain('detached/encryption')
    expect(readdirSync(join(krewRoot, 'store', 'encryption', `v${pjson.version}`)).sort()).toEqual([
      'LICENSE',
      host!.bin,
    ])
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
      node: `v${NODE_VERSION}`,
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

  it('is found by `kubectl plugin list` in krew’s bin dir', () => {
    const list = kubectlRun('plugin', 'list')
    expect(list.stdout).toContain(join(bin, 'kubectl-encryption'))
    expect(list.stderr).not.toContain('kubectl-encryption')
  })

  it('completes through kubectl’s plugin completion', () => {
    writeFileSync(join(tools, 'kubectl_complete-encryption'), '#!/bin/sh\nexec kubectl-encryption __complete "$@"\n')
    chmodSync(join(tools, 'kubectl_complete-encryption'), 0o755)
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
    const verify = spawnSync(
      'kubectl',
      ['encryption', 'verify', '-n', 'default', '--etcd-via', 'exec', '--no-ssh', '--hexdump', '-o', 'json'],
      {
        env: {...env, KUBECONFIG: sandbox.env.KUBECONFIG!},
        encoding: 'utf8',
        timeout: 120_000,
      },
    )
    const result = JSON.parse(verify.stdout) as {
      etcdKey: string
      stored?: {provider: string}
      roundTrip: string
      cleanup: string
      hexdump?: string
      ok: boolean
    }
    // The sandbox may run with or without encryption when this file runs; the round trip is the same.
    expect([0, 5], verify.stderr).toContain(verify.status)
    expect(result.etcdKey).toMatch(/^\/registry\/secrets\/default\//)
    expect(result.stored?.provider).toBeTruthy()
    expect(result.roundTrip).toBe('ok')
    expect(result.cleanup).toBe('deleted')
    expect(result.hexdump).toMatch(/^00000000 {2}/)
    const name = result.etcdKey.split('/').pop()!
    const left = spawnSync('kubectl', ['get', 'secret', name, '-n', 'default'], {
      env: {...env, KUBECONFIG: sandbox.env.KUBECONFIG!},
      encoding: 'utf8',
    })
    expect(left.stderr).toContain('NotFound')
  })

  it('is gone after `kubectl krew uninstall encryption`, leaving nothing behind', () => {
    const before = listTree(krewRoot)
    const uninstall = kubectlRun('krew', 'uninstall', 'encryption')
    expect(uninstall.status, uninstall.stderr).toBe(0)
    expect(uninstall.stderr).toContain('Uninstalled plugin: encryption')
    const after = listTree(krewRoot)
    // What the install added is gone; what is left is krew's own: its empty directories and the index.
    expect(before.filter((p) => p.includes('encryption'))).toEqual([
      'bin/kubectl-encryption',
      'receipts/encryption.yaml',
      'store/encryption/',
      `store/encryption/v${pjson.version}/`,
      `store/encryption/v${pjson.version}/LICENSE`,
      `store/encryption/v${pjson.version}/${host!.bin}`,
    ])
    expect(after.filter((p) => !p.startsWith('index/'))).toEqual(['bin/', 'receipts/', 'store/'])
    expect(after).toContain('index/default/plugins/.keep')
    expect(kubectlRun('encryption', 'version').status).not.toBe(0)
    expect(kubectlRun('plugin', 'list').stdout).not.toContain('kubectl-encryption')
  })

  // Skipped where rcodesign is missing: scripts/bootstrap.sh builds it (CI too), unless crates.io cannot be reached.
  describe.skipIf(!rcodesign || !llvmObjdump)(
    `the macOS executables${rcodesign ? '' : ' (not built: no rcodesign)'}`,
    () => {
      for (const platform of PLATFORMS.filter((p) => p.os === 'darwin')) {
        const exe = () => join(out, `kubectl-encryption-${platformName(platform)}`, platform.bin)

        it(`${platformName(platform)}: a Mach-O with the blob in a NODE_SEA segment and an ad hoc signature last (llvm-objdump)`, () => {
          const headers = spawnSync(llvmObjdump!, ['--macho', '--private-headers', exe()], {
            encoding: 'utf8',
            maxBuffer: 16 * 1024 * 1024,
          })
          expect(headers.status, headers.stderr).toBe(0)
          expect(headers.stdout).toMatch(
            new RegExp(
              `^\\s*magic\\s+cputype.*\\n\\s*MH_MAGIC_64\\s+${platform.arch === 'arm64' ? 'ARM64' : 'X86_64'}\\s`,
              'm',
            ),
          )
          const commands = headers.stdout.split(/^Load command \d+$/m).slice(1)
          const field = (block: string, name: string) => block.match(new RegExp(`^\\s*${name} (\\S+)`, 'm'))?.[1]
          const sea = commands.find((c) => field(c, 'segname') === 'NODE_SEA')
          expect(sea).toBeDefined()
          expect(field(sea!, 'sectname')).toBe('__NODE_SEA_BLOB')
          // One signature, the last load command, at the end of __LINKEDIT, which ends the file.
          expect(commands.filter((c) => field(c, 'cmd') === 'LC_CODE_SIGNATURE')).toHaveLength(1)
          const signature = commands.at(-1)!
          expect(field(signature, 'cmd')).toBe('LC_CODE_SIGNATURE')
          const linkedit = commands.find((c) => field(c, 'segname') === '__LINKEDIT')!
          const size = statSync(exe()).size
          expect(Number(field(linkedit, 'fileoff')) + Number(field(linkedit, 'filesize'))).toBe(size)
          expect(Number(field(signature, 'dataoff')) + Number(field(signature, 'datasize'))).toBeLessThanOrEqual(size)
          const bytes = readFileSync(exe())
          expect(bytes.includes(`${SEA_FUSE}:1`)).toBe(true)
          expect(bytes.includes(readFileSync(join(root, 'dist/kubectl-encryption.cjs')).subarray(0, 4096))).toBe(true)
        })

        it(`${platformName(platform)}: an ad hoc signature for identifier kubectl-encryption (rcodesign) whose page hashes all match`, () => {
          // `rcodesign verify` takes an ad hoc signature's empty CMS blob for an error (and says its verify
          // is not to be trusted yet), so the hashes are checked here, against the bytes.
          const info = spawnSync(rcodesign!, ['print-signature-info', exe()], {
            encoding: 'utf8',
            maxBuffer: 64 * 1024 * 1024,
          })
          expect(info.status, info.stderr).toBe(0)
          expect(info.stdout).toMatch(/^\s+identifier: kubectl-encryption$/m)
          expect(info.stdout).toMatch(/^\s+flags: CodeSignatureFlags\(ADHOC\)$/m)
          expect(info.stdout).toMatch(/^\s+cms: null$/m)
          expect(checkCodeDirectory(readFileSync(exe()))).toEqual({
            identifier: 'kubectl-encryption',
            adhoc: true,
            pages: expect.any(Number),
            mismatches: 0,
          })
        })
      }
    },
  )

  it.skipIf(!llvmReadobj)('linux-arm64: an AArch64 ELF with the blob in (llvm-readobj)', () => {
    const platform = PLATFORMS.find((p) => p.os === 'linux' && p.arch === 'arm64')!
    const exe = join(out, `kubectl-encryption-${platformName(platform)}`, platform.bin)
    const headers = spawnSync(llvmReadobj!, ['--file-headers', exe], {encoding: 'utf8'})
    expect(headers.status, headers.stderr).toBe(0)
    expect(headers.stdout).toMatch(/Machine: EM_AARCH64/)
    const bytes = readFileSync(exe)
    expect(bytes.includes(`${SEA_FUSE}:1`)).toBe(true)
    expect(bytes.includes(readFileSync(join(root, 'dist/kubectl-encryption.cjs')).subarray(0, 4096))).toBe(true)
  })

  describe.skipIf(!llvmReadobj)('the Windows executables', () => {
    for (const platform of PLATFORMS.filter((p) => p.os === 'windows')) {
      it(`${platformName(platform)}: a PE with the blob as resource NODE_SEA_BLOB and no stale Authenticode signature (llvm-readobj)`, () => {
        const exe = join(out, `kubectl-encryption-${platformName(platform)}`, platform.bin)
        const headers = spawnSync(llvmReadobj!, ['--file-headers', exe], {encoding: 'utf8'})
        expect(headers.status, headers.stderr).toBe(0)
        expect(headers.stdout).toContain(
          platform.arch === 'arm64' ? 'IMAGE_FILE_MACHINE_ARM64 ' : 'IMAGE_FILE_MACHINE_AMD64 ',
        )
        expect(headers.stdout).toMatch(/Subsystem: IMAGE_SUBSYSTEM_WINDOWS_CUI/)
        expect(headers.stdout).toMatch(/CertificateTableSize: 0x0$/m)
        const resources = spawnSync(
          'sh',
          ['-c', `"$1" --coff-resources "$2" | grep -E '^ *(Type|Name):'`, 'sh', llvmReadobj!, exe],
          {encoding: 'utf8'},
        )
        expect(resources.stdout).toMatch(/Type: RCDATA \(ID 10\) \[\n\s+Name: NODE_SEA_BLOB \[/)
        const bytes = readFileSync(exe)
        expect(bytes.includes(`${SEA_FUSE}:1`)).toBe(true)
        expect(bytes.includes(readFileSync(join(root, 'dist/kubectl-encryption.cjs')).subarray(0, 4096))).toBe(true)
      })
    }

    describe.skipIf(!wine)('windows-amd64 under Wine', () => {
      const platform = PLATFORMS.find((p) => p.os === 'windows' && p.arch === 'amd64')!
      const exe = () => join(out, `kubectl-encryption-${platformName(platform)}`, platform.bin)
      const prefix = join(work, 'wine')
      const wineEnv = {
        HOME: work,
        PATH: tools,
        WINEPREFIX: prefix,
        WINEDEBUG: '-all',
        WINEDLLOVERRIDES: 'mscoree,mshtml=',
        // wineserver makes its socket dir under TMPDIR (else a wine-XXXXXX left in /tmp): here, in work.
        TMPDIR: join(work, 'wine-tmp'),
      }
      // Wine's pipes are no Windows pipes to node (EBADF on stdout): the output goes to files.
      function wineRun(...args: string[]): {status: number | null; stdout: string; stderr: string} {
        return wineRunEnv({}, ...args)
      }
      function wineRunEnv(
        extra: Record<string, string>,
        ...args: string[]
      ): {status: number | null; stdout: string; stderr: string} {
        const outFile = join(work, 'wine.out')
        const errFile = join(work, 'wine.err')
        const fds = [openSync(outFile, 'w'), openSync(errFile, 'w')]
        try {
          const result = spawnSync(wine!, [exe(), ...args], {
            env: {...wineEnv, ...extra},
            stdio: ['ignore', fds[0], fds[1]],
            timeout: 120_000,
            cwd: work,
          })
          return {status: result.status, stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8')}
        } finally {
          fds.forEach(closeSync)
        }
      }

      beforeAll(() => {
        mkdirSync(wineEnv.TMPDIR, {recursive: true})
        // Node 22 refuses to start on what a new Wine prefix may report (older than Windows 8.1).
        const reg = spawnSync(wine!, ['reg', 'add', 'HKCU\\Software\\Wine', '/v', 'Version', '/d', 'win10', '/f'], {
          env: wineEnv,
          stdio: 'ignore',
          timeout: 300_000,
        })
        if (reg.status !== 0) throw new Error(`wine reg add failed (${reg.status ?? reg.signal})`)
      }, 300_000)
      afterAll(() => {
        spawnSync(join(wine!, '..', 'wineserver'), ['-k'], {env: wineEnv, stdio: 'ignore', timeout: 60_000})
      })

      it('runs `version -o json` from its own node, on win32-x64', () => {
        const version = wineRun('version', '-o', 'json')
        expect(version.status, version.stderr).toBe(0)
        expect(JSON.parse(version.stdout)).toEqual({
          plugin: 'kubectl-encryption',
          version: pjson.version,
          node: `v${NODE_VERSION}`,
          platform: 'win32-x64',
        })
      })

      it('runs `--help`', () => {
        const help = wineRun('--help')
        expect(help.status, help.stderr).toBe(0)
        expect(help.stdout).toContain('$ kubectl encryption [COMMAND]')
        expect(help.stdout).toContain(`kubectl-encryption/${pjson.version} win32-x64 node-v${NODE_VERSION}`)
      })

      it('generates a config with a fresh key and validates it (file system, CSPRNG, exit codes)', () => {
        const generated = wineRun('config', 'generate', '--output-file', 'enc.yaml', '-o', 'json')
        expect(generated.status, generated.stderr).toBe(0)
        expect(readFileSync(join(work, 'enc.yaml'), 'utf8')).toContain('kind: EncryptionConfiguration')
        const valid = wineRun('config', 'validate', 'enc.yaml', '-o', 'json')
        expect(valid.status, valid.stderr).toBe(0)
        expect(JSON.parse(valid.stdout)).toMatchObject({valid: true})
        writeFileSync(
          join(work, 'bad.yaml'),
          'kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: []\nextra: 1\n',
        )
        const bad = wineRun('config', 'validate', 'bad.yaml', '-o', 'json')
        expect(bad.status).toBe(3)
        expect(JSON.parse(bad.stdout)).toMatchObject({valid: false})
      })

      // Straight to the executable: there is no Windows kubectl here. The kubeconfig's Linux path reads
      // as a path on Wine's drive Z:, which is the Linux root.
      it('runs `status` and the whole `verify` round trip on the sandbox (etcd through pods/exec)', () => {
        const kubeconfig = {KUBECONFIG: sandbox.env.KUBECONFIG!}
        const status = wineRunEnv(kubeconfig, 'status', '--no-ssh', '-o', 'json')
        expect([0, 5], status.stderr).toContain(status.status)
        const result = JSON.parse(status.stdout) as {
          server: string
          nodes: {node: string; apiserver: {ready: boolean}}[]
        }
        expect(result.server).toBe(`https://${sandbox.lbEndpoint}`)
        expect(result.nodes.map((n) => n.node).sort()).toEqual([...sandbox.nodes].sort())
        const verify = wineRunEnv(kubeconfig, 'verify', '-n', 'default', '--etcd-via', 'exec', '--no-ssh', '-o', 'json')
        expect([0, 5], verify.stderr).toContain(verify.status)
        const round = JSON.parse(verify.stdout) as {
          etcdKey: string
          stored?: {provider: string}
          roundTrip: string
          cleanup: string
        }
        expect(round.etcdKey).toMatch(/^\/registry\/secrets\/default\//)
        expect(round.stored?.provider).toBeTruthy()
        expect(round.roundTrip).toBe('ok')
        expect(round.cleanup).toBe('deleted')
      })
    })
  })

  it('builds the same archives again, byte for byte (one per kind of executable)', () => {
    // Linux with its code cache, a signed macOS one, a Windows one: every path of scripts/package.ts.
    const again = [host!, ...built.filter((p) => p !== host && p.arch === 'arm64' && p.os !== 'linux')]
    const manifest2 = join(work, 'again.yaml')
    writeFileSync(manifest2, readFileSync(manifest))
    const packaged = packageRun(again, join(work, 'again'), manifest2)
    expect(packaged.status, packaged.stderr).toBe(0)
    // What differs, file by file, so that a failure says where. Three times the Linux archive differed
    // inside its code cache (same size), the last on 2026-12-07 under load at the cache's byte 78,817
    // of 710,720 (in a build of the same code, the low byte of the number V8 gives a function of
    // oclif's util.js). package.ts now takes the cache two runs agree on. The blob and code cache of
    // each build (kept by --keep-sea-parts) and the bytes around a difference show where one is.
    const differences = again.flatMap((platform) => {
      const [first, second] = [join(out, archiveName(platform)), join(work, 'again', archiveName(platform))]
      if (sha256(first) === sha256(second)) return []
      const sea = (dir: string, part: 'blob' | 'cache') => join(dir, `.sea-${platformName(platform)}.${part}`)
      const parts = (['blob', 'cache'] as const).map(
        (part) => `${part}: ${fileDifference(sea(out, part), sea(join(work, 'again'), part))}`,
      )
      return [`${platformName(platform)}: ${archiveDifference(first, second, sea(out, 'blob'))} (${parts.join('; ')})`]
    })
    expect(differences).toEqual([])
    expect(readFileSync(manifest2, 'utf8')).toBe(readFileSync(manifest, 'utf8'))
  }, 1_200_000)
})

/**
 * Which files of two .tar.gz archives differ, and for each the size and the first differing byte;
 * with `blob` (the first build's SEA blob), whether that byte lies inside the blob.
 */
function archiveDifference(first: string, second: string, blob?: string): string {
  const dirs = [first, second].map((archive) => {
    const dir = mkdtempSync(join(tmpdir(), 'archive-diff-'))
    spawnSync('tar', ['-xzf', archive, '-C', dir])
    return dir
  })
  try {
    const [a, b] = dirs.map((dir) => listTree(dir).filter((f) => !f.endsWith('/'))) as [string[], string[]]
    const notes = [...new Set([...a, ...b])].flatMap((file) => {
      if (!a.includes(file) || !b.includes(file))
        return [`${file}: only in ${a.includes(file) ? 'the first' : 'the second'}`]
      const [x, y] = dirs.map((dir) => readFileSync(join(dir, file))) as [Buffer, Buffer]
      const at = firstDifference(x, y)
      if (at === undefined) return []
      const where = blob ? `, ${placeInBlob(x, blob, at)}` : ''
      return [`${file}: ${describeDifference(x, y, at)}${where}`]
    })
    return notes.join('; ') || 'same files, different archive bytes (tar or gzip headers)'
  } finally {
    for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
  }
}

/** The first byte at which two buffers differ; undefined when they are the same. */
function firstDifference(x: Buffer, y: Buffer): number | undefined {
  if (x.equals(y)) return undefined
  let at = 0
  while (at < Math.min(x.length, y.length) && x[at] === y[at]) at++
  return at
}

/** The two sizes and the first byte that differs, with 32 bytes from a little before it in hex (what kind of data). */
function describeDifference(x: Buffer, y: Buffer, at: number): string {
  const around = (b: Buffer) => b.subarray(Math.max(0, at - 8), at + 24).toString('hex')
  return `${x.length} vs ${y.length} bytes, first difference at byte ${at} (${around(x)} vs ${around(y)})`
}

/** Two files compared: `same`, `absent` (either one), or where they differ. */
function fileDifference(first: string, second: string): string {
  if (!existsSync(first) || !existsSync(second)) return 'absent'
  const [x, y] = [readFileSync(first), readFileSync(second)]
  const at = firstDifference(x, y)
  return at === undefined ? 'same' : describeDifference(x, y, at)
}

/** Whether byte `at` of an executable lies in the SEA blob injected into it (found by its first 4 KiB). */
function placeInBlob(executable: Buffer, blobFile: string, at: number): string {
  if (!existsSync(blobFile)) return 'no blob kept'
  const blob = readFileSync(blobFile)
  const start = executable.indexOf(blob.subarray(0, 4096))
  if (start < 0) return 'the blob is not in the executable as it is'
  return at >= start && at < start + blob.length
    ? `inside the blob at its byte ${at - start} of ${blob.length}`
    : `outside the blob (bytes ${start} to ${start + blob.length})`
}

/** Every path under dir, relative, directories with a trailing slash. */
function listTree(dir: string): string[] {
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .map((e) => relative(dir, join(e.parentPath, e.name)) + (e.isDirectory() ? '/' : ''))
    .sort()
}

/**
 * Reads a thin 64-bit Mach-O's code signature (LC_CODE_SIGNATURE → SuperBlob → CodeDirectory) and
 * checks every page hash and the requirements' hash against the file's bytes, as the kernel and
 * `codesign --verify` do.
 */
function checkCodeDirectory(file: Buffer): {identifier: string; adhoc: boolean; pages: number; mismatches: number} {
  if (file.readUInt32LE(0) !== 0xfeedfacf) throw new Error('not a 64-bit little-endian Mach-O')
  const ncmds = file.readUInt32LE(16)
  let at = 32
  let signature: {offset: number; size: number} | undefined
  for (let i = 0; i < ncmds; i++) {
    const cmd = file.readUInt32LE(at)
    if (cmd === 0x1d) signature = {offset: file.readUInt32LE(at + 8), size: file.readUInt32LE(at + 12)} // LC_CODE_SIGNATURE
    at += file.readUInt32LE(at + 4)
  }
  if (!signature) throw new Error('no LC_CODE_SIGNATURE')
  const blob = file.subarray(signature.offset, signature.offset + signature.size)
  if (blob.readUInt32BE(0) !== 0xfade0cc0) throw new Error('no embedded signature SuperBlob')
  const slots = new Map<number, Buffer>()
  for (let i = 0; i < blob.readUInt32BE(8); i++) {
    const offset = blob.readUInt32BE(12 + i * 8 + 4)
    slots.set(blob.readUInt32BE(12 + i * 8), blob.subarray(offset, offset + blob.readUInt32BE(offset + 4)))
  }
  const cd = slots.get(0)
  if (cd?.readUInt32BE(0) !== 0xfade0c02) throw new Error('no CodeDirectory')
  const hashOffset = cd.readUInt32BE(16)
  const identifier = cd.subarray(cd.readUInt32BE(20)).toString('latin1').split('\0')[0]!
  const nCodeSlots = cd.readUInt32BE(28)
  const codeLimit = cd.readUInt32BE(32)
  const hashSize = cd.readUInt8(36)
  if (cd.readUInt8(37) !== 2 || hashSize !== 32) throw new Error('CodeDirectory hash is not SHA-256')
  const pageSize = 2 ** cd.readUInt8(39)
  const hash = (bytes: Buffer) => createHash('sha256').update(bytes).digest()
  let mismatches = 0
  if (codeLimit !== signature.offset) mismatches++
  for (let i = 0; i < nCodeSlots; i++) {
    const page = file.subarray(i * pageSize, Math.min((i + 1) * pageSize, codeLimit))
    if (!hash(page).equals(cd.subarray(hashOffset + i * hashSize, hashOffset + (i + 1) * hashSize))) mismatches++
  }
  if (nCodeSlots !== Math.ceil(codeLimit / pageSize)) mismatches++
  const requirements = slots.get(2)
  if (requirements && !hash(requirements).equals(cd.subarray(hashOffset - 2 * hashSize, hashOffset - hashSize)))
    mismatches++
  return {identifier, adhoc: (cd.readUInt32BE(12) & 0x2) !== 0, pages: nCodeSlots, mismatches}
}
