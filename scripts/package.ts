// `npm run package`: builds the standalone `kubectl-encryption` executable (Node's single executable
// application) for each platform in scripts/platforms.ts, packs each with LICENSE into
// build/kubectl-encryption-<os>-<arch>.tar.gz, and writes the archives' sha256 into krew-manifest.yaml.
//
//   npm run package [-- --platforms linux-amd64,linux-arm64] [--out DIR] [--manifest FILE]
//
// The node binaries come from the npm registry (the node-<os>-<arch> packages ship the official
// builds), in the version of the node running this script. The executable embeds
// dist/kubectl-encryption.cjs (run `npm run build` first); for the platform this machine can run,
// the blob is made by that platform's own node binary with a V8 code cache, so the bundle is not
// compiled at each start.
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {BUNDLE, VENDOR_DIR} from './bundle.js'
import {updateKrewManifest} from './krew-manifest.js'
import {archiveName, hostPlatform, type Platform, PLATFORMS} from './platforms.js'

const root = fileURLToPath(new URL('..', import.meta.url))
// The fuse Node's single executable applications look for (Node docs, "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

const {values} = parseArgs({
  options: {
    platforms: {type: 'string'},
    out: {type: 'string', default: join(root, 'build')},
    manifest: {type: 'string', default: join(root, 'krew-manifest.yaml')},
  },
})

const selected = values.platforms
  ? values.platforms.split(',').map((name) => {
      const platform = PLATFORMS.find((p) => `${p.os}-${p.arch}` === name)
      if (!platform) throw new Error(`unknown platform ${name}; known: ${PLATFORMS.map((p) => `${p.os}-${p.arch}`).join(', ')}`)
      return platform
    })
  : PLATFORMS
const out = resolve(values.out!)
const bundle = join(root, BUNDLE)
if (!existsSync(bundle)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`)
mkdirSync(out, {recursive: true})
const vendorFiles = existsSync(join(root, VENDOR_DIR)) ? readdirSync(join(root, VENDOR_DIR)).filter((f) => f.endsWith('.cjs')) : []

function run(cmd: string, args: string[]): string {
  const result = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
  // Tools chat on stderr (postject warns about ELF notes it does not know); show it only on failure.
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stderr}`)
  return result.stdout
}

/** The official node binary for `platform`, in this node's version, from the npm registry (cached). */
function nodeBinary(platform: Platform): string {
  const version = process.version.slice(1)
  // Kept in build/.node whatever --out says, so test runs that package into a temp dir reuse it.
  const cache = join(root, 'build', '.node', `${platform.nodePackage}-${version}`)
  const binary = join(cache, platform.nodePathInTarball)
  if (existsSync(binary)) return binary
  mkdirSync(cache, {recursive: true})
  const tarball = run('npm', ['pack', `${platform.nodePackage}@${version}`, '--silent', '--pack-destination', cache]).trim().split('\n').pop()!
  run('tar', ['-xzf', join(cache, tarball), '-C', cache, platform.nodePathInTarball])
  rmSync(join(cache, tarball))
  return binary
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

const shas: Record<string, string> = {}
const host = hostPlatform()
for (const platform of selected) {
  const started = Date.now()
  const name = `${platform.os}-${platform.arch}`
  const dir = join(out, `kubectl-encryption-${name}`)
  rmSync(dir, {recursive: true, force: true})
  mkdirSync(dir, {recursive: true})
  const node = nodeBinary(platform)
  const isHost = platform === host

  // 1. The blob: the bundle (and, for this machine's platform, its V8 code cache).
  const blob = join(out, `.sea-${name}.blob`)
  const seaConfig = join(out, `.sea-${name}.json`)
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: isHost,
      // The lazy libraries (src/cli/vendor.ts) ride along as assets, compiled only when used.
      assets: Object.fromEntries(vendorFiles.map((file) => [`vendor/${file}`, join(root, VENDOR_DIR, file)])),
    }),
  )
  // The code cache must come from the same V8 as the target binary: use the target's own node.
  run(isHost ? node : process.execPath, ['--experimental-sea-config', seaConfig])

  // 2. The executable: the official node binary with the blob injected.
  const exe = join(dir, platform.bin)
  copyFileSync(node, exe)
  // The official binaries carry symbols; without them the executable is about 12 MiB smaller.
  // llvm-strip handles every architecture; without it the binary stays as it is.
  if (spawnSync('llvm-strip', ['--strip-all', exe], {stdio: 'ignore'}).status !== 0) copyFileSync(node, exe)
  chmodSync(exe, 0o755)
  const postject = join(dirname(fileURLToPath(import.meta.resolve('postject'))), 'cli.js')
  run(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE])
  rmSync(blob)
  rmSync(seaConfig)
  copyFileSync(join(root, 'LICENSE'), join(dir, 'LICENSE'))

  // 3. The archive, reproducible: fixed order, owner and times, no gzip timestamp.
  const archive = join(out, archiveName(platform))
  const tar = join(out, archiveName(platform).replace(/\.gz$/, ''))
  run('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', tar, '-C', dir, platform.bin, 'LICENSE'])
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
