// `npm run package`: builds the standalone `kubectl-encryption` executable (Node's single executable
// application) for each platform in scripts/platforms.ts (linux, darwin and windows, amd64 and
// arm64), packs each with LICENSE into build/kubectl-encryption-<os>-<arch>.tar.gz, and writes the
// archives' sha256 into krew-manifest.yaml. Same input, same archives, byte for byte.
//
//   npm run package [-- --platforms linux-amd64,darwin-arm64] [--out DIR] [--manifest FILE]
//
// The node binaries come from the npm registry (the node-<os>-<arch> packages ship the official
// builds), in the pinned NODE_VERSION. The executable embeds dist/kubectl-encryption.cjs (run
// `npm run build` first) as an asset, which its main script, bin/sea-main.cjs, compiles. The blob is
// made by the node of this machine's platform, in the same version; for this machine's platform
// with a V8 code cache of the bundle made after a `--help` run (scripts/code-cache.cjs), so neither
// the bundle nor the functions that run at start-up are compiled at each start (a code cache only
// fits the V8 that made it, so the other platforms go without).
//
// macOS: the official binary's signature is removed before the blob goes in (macho-unsign) and the
// result is signed again, ad hoc, by rcodesign (the apple-codesign crate; scripts/bootstrap.sh
// builds it): an arm64 Mac runs no unsigned code. Windows: the official binary's Authenticode
// signature is removed before the blob goes in (portable-executable-signature), as it would no
// longer match; the executable is shipped unsigned.
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {unsign} from 'macho-unsign'
import {signatureSet} from 'portable-executable-signature'

import {agreedOutput} from './agreed-output.js'
import {BUNDLE, VENDOR_DIR} from './bundle.js'
import {updateKrewManifest} from './krew-manifest.js'
import {archiveName, hostPlatform, NODE_VERSION, type Platform, platformName, PLATFORMS} from './platforms.js'
import {findTool} from './tools.js'

const root = fileURLToPath(new URL('..', import.meta.url))
// The fuse Node's single executable applications look for (Node docs, "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

const {values} = parseArgs({
  options: {
    platforms: {type: 'string'},
    out: {type: 'string', default: join(root, 'build')},
    manifest: {type: 'string', default: join(root, 'krew-manifest.yaml')},
    // Leaves each executable's blob and code cache in --out (.sea-<platform>.blob, .cache), so that
    // test/e2e/package.test.ts can say which part differs when two builds are not the same.
    'keep-sea-parts': {type: 'boolean', default: false},
  },
})

const selected = values.platforms
  ? values.platforms.split(',').map((name) => {
      const platform = PLATFORMS.find((p) => platformName(p) === name)
      if (!platform) throw new Error(`unknown platform ${name}; known: ${PLATFORMS.map(platformName).join(', ')}`)
      return platform
    })
  : PLATFORMS
const out = resolve(values.out!)
const bundle = join(root, BUNDLE)
if (!existsSync(bundle)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`)
mkdirSync(out, {recursive: true})
const vendorFiles = existsSync(join(root, VENDOR_DIR))
  ? readdirSync(join(root, VENDOR_DIR)).filter((f) => f.endsWith('.cjs'))
  : []

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const result = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env})
  // Tools chat on stderr (postject warns about ELF notes it does not know); show it only on failure.
  if (result.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stderr}`)
  return result.stdout
}

/** The official node binary for `platform`, in NODE_VERSION, from the npm registry (cached). */
function nodeBinary(platform: Platform): string {
  const version = NODE_VERSION
  // Kept in build/.node whatever --out says, so test runs that package into a temp dir reuse it.
  const cache = join(root, 'build', '.node', `${platform.nodePackage}-${version}`)
  const binary = join(cache, platform.nodePathInTarball)
  if (existsSync(binary)) return binary
  mkdirSync(cache, {recursive: true})
  const tarball = run('npm', ['pack', `${platform.nodePackage}@${version}`, '--silent', '--pack-destination', cache])
    .trim()
    .split('\n')
    .pop()!
  run('tar', ['-xzf', join(cache, tarball), '-C', cache, platform.nodePathInTarball])
  rmSync(join(cache, tarball))
  return binary
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

// How many times scripts/code-cache.cjs may run before two of its caches are the same.
const CODE_CACHE_RUNS = 5

/**
 * Writes to `out` the V8 code cache of the bundle that two runs of scripts/code-cache.cjs agree on.
 *
 * V8 numbers every function it creates from one counter for the whole process, and the cache keeps
 * the numbers (`new Function` three times before the bundle shifts them by six). So the cache is the
 * same only when Node's own modules and the bundle's functions are compiled in the same order; that
 * held in every run on an idle or loaded machine here, yet three times in CI under load the Linux
 * archive differed inside its code cache, by a few bytes, and the cause is not found. One run can be
 * the odd one out; two that agree are taken, and a disagreement is said (with --keep-sea-parts, the
 * caches stay as `<out>.<run>`).
 *
 * The run gets a fixed environment: the user's (oclif reads CI, DEBUG, TERM, NO_COLOR, its theme
 * under $HOME and more at start-up) changes which functions run, so the cache, so the archive.
 * The seed is fixed as for the blob (below): V8 seeds its hashes at random.
 */
function writeAgreedCodeCache(out: string): void {
  const env = {HOME: '/nonexistent', LANG: 'C'}
  const runFile = (n: number) => `${out}.${n}`
  const result = agreedOutput((n) => {
    run(builder!, ['--random-seed=1', join(root, 'scripts/code-cache.cjs'), '--out', runFile(n)], env)
    return readFileSync(runFile(n))
  }, CODE_CACHE_RUNS)
  if (!result.agreed) {
    throw new Error(
      `scripts/code-cache.cjs made ${CODE_CACHE_RUNS} different code caches (kept as ${basename(out)}.1 to .${CODE_CACHE_RUNS}): the executable would not be reproducible`,
    )
  }
  writeFileSync(out, result.agreed)
  if (result.odd > 0)
    console.warn(`${basename(out)}: ${result.odd} of ${result.runs} code caches differed from the two that agreed`)
  if (result.odd === 0 || !values['keep-sea-parts']) for (let n = 1; n <= result.runs; n++) rmSync(runFile(n))
}

const shas: Record<string, string> = {}
const host = hostPlatform()
// The node that makes the blobs: a blob fits only the Node version that made it, so the pinned one.
const builder = host ? nodeBinary(host) : process.version === `v${NODE_VERSION}` ? process.execPath : undefined
if (!builder)
  throw new Error(
    `no node ${NODE_VERSION} for this machine (${process.platform}-${process.arch}) to make the blobs with`,
  )
const postject = join(dirname(fileURLToPath(import.meta.resolve('postject'))), 'cli.js')
const rcodesign = selected.some((p) => p.os === 'darwin') ? findTool('rcodesign') : undefined
if (selected.some((p) => p.os === 'darwin') && !rcodesign) {
  throw new Error(
    'the darwin executables must be signed again after the blob goes in: rcodesign is missing (scripts/bootstrap.sh builds it)',
  )
}

for (const platform of selected) {
  const started = Date.now()
  const name = platformName(platform)
  const dir = join(out, `kubectl-encryption-${name}`)
  rmSync(dir, {recursive: true, force: true})
  mkdirSync(dir, {recursive: true})
  const node = nodeBinary(platform)
  const isHost = platform === host

  // 1. The blob: the main script, the bundle (and, for this machine's platform, its V8 code cache).
  const blob = join(out, `.sea-${name}.blob`)
  const seaConfig = join(out, `.sea-${name}.json`)
  const cache = join(out, `.sea-${name}.cache`)
  if (isHost) writeAgreedCodeCache(cache)
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: join(root, 'bin/sea-main.cjs'),
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: isHost,
      assets: {
        [basename(BUNDLE)]: bundle,
        ...(isHost ? {[`${basename(BUNDLE)}.cache`]: cache} : {}),
        // The lazy libraries (src/cli/vendor.ts) ride along as assets, compiled only when used.
        ...Object.fromEntries(vendorFiles.map((file) => [`vendor/${file}`, join(root, VENDOR_DIR, file)])),
      },
    }),
  )
  // V8 seeds its hashes at random, so a code cache differs from run to run; a fixed seed makes it
  // reproducible. V8 leaves --random-seed out of the flag hash a code cache is checked against, so the
  // executable (which runs with a random seed) still accepts the cache.
  run(builder, ['--random-seed=1', '--experimental-sea-config', seaConfig])

  // 2. The executable: the official node binary with the blob injected.
  const exe = join(dir, platform.bin)
  const injectArgs = [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]
  if (platform.os === 'linux') {
    copyFileSync(node, exe)
    // The official binaries carry symbols; without them the executable is about 12 MiB smaller.
    // llvm-strip handles every architecture; without it the binary stays as it is.
    if (spawnSync('llvm-strip', ['--strip-all', exe], {stdio: 'ignore'}).status !== 0) copyFileSync(node, exe)
  } else if (platform.os === 'darwin') {
    // Node's docs: remove the signature, inject into a segment of its own, sign again.
    const unsigned = unsign(readFileSync(node))
    if (!unsigned) throw new Error(`${node} has no code signature to remove`)
    writeFileSync(exe, Buffer.from(unsigned))
    injectArgs.push('--macho-segment-name', 'NODE_SEA')
  } else {
    // Authenticode covers the whole file: once the blob is in, Microsoft's signature would not match.
    writeFileSync(exe, Buffer.from(signatureSet(readFileSync(node), null)))
  }
  chmodSync(exe, 0o755)
  run(process.execPath, injectArgs)
  if (platform.os === 'darwin') {
    // Ad hoc (no certificate): what macOS requires to run it; the identifier is the file name.
    run(rcodesign!, ['sign', '--binary-identifier', 'kubectl-encryption', exe])
  }
  rmSync(seaConfig)
  if (!values['keep-sea-parts']) {
    rmSync(blob)
    rmSync(cache, {force: true})
  }
  copyFileSync(join(root, 'LICENSE'), join(dir, 'LICENSE'))

  // 3. The archive, reproducible: fixed order, modes, owner and times, no gzip timestamp.
  const archive = join(out, archiveName(platform))
  const tar = join(out, archiveName(platform).replace(/\.gz$/, ''))
  chmodSync(join(dir, 'LICENSE'), 0o644)
  run('tar', [
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=gnu',
    '-cf',
    tar,
    '-C',
    dir,
    platform.bin,
    'LICENSE',
  ])
  rmSync(archive, {force: true})
  run('gzip', ['-n', '-6', tar])
  shas[name] = sha256(archive)
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  console.log(
    `${archiveName(platform)}: ${mib(statSync(archive).size)} (executable ${mib(statSync(exe).size)}${isHost ? ', code cache' : ''}) ` +
      `sha256 ${shas[name]} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
  )
}

const manifestPath = resolve(values.manifest!)
writeFileSync(manifestPath, updateKrewManifest(readFileSync(manifestPath, 'utf8'), shas))
console.log(`${manifestPath}: sha256 written for ${Object.keys(shas).join(', ')}`)
