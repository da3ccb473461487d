/**
 * What the rest of the plugin needs from a control-plane node: run one command as root and get its
 * bytes back. src/ssh/ is the only folder that spawns `ssh` (docs/architecture.md §1); everything else (remote
 * files, etcdctl over SSH, the node workflows) goes through this interface, so tests can fake it.
 *
 * Rules every implementation keeps (docs/architecture.md §2–3):
 * - data (file contents, key material) travels over stdin, never in argv or the remote command line;
 * - argv is quoted for the remote shell, one word per element; no shell features are interpreted;
 * - ssh, authentication and sudo failures reject with a PluginError that names the node and says
 *   what to do; a non-zero exit code of the remote command itself resolves normally.
 */
export interface RemoteRunOptions {
  /** Bytes for the remote command's stdin (the only channel for data). */
  stdin?: Uint8Array | string
  /** Kill the command after this many milliseconds (PluginError SSH_TIMEOUT). */
  timeoutMs?: number
}

export interface RemoteRunResult {
  exitCode: number
  stdout: Buffer
  /** The remote command's stderr (never contains data we sent). */
  stderr: string
}

export interface SshSession {
  /** The Kubernetes node name, used in every message. */
  readonly node: string
  /** The host `ssh` connects to (the node name, an ssh_config alias, or the InternalIP). */
  readonly address: string
  /** Runs argv as root (`sudo -n`, unless disabled) on the node. */
  run(argv: readonly string[], options?: RemoteRunOptions): Promise<RemoteRunResult>
}

/** A node as discovery knows it; only the fields SSH needs. */
export interface NodeTarget {
  name: string
  internalIP?: string
}

/** Opens sessions to nodes; one per run, holding the --ssh-* settings. */
export interface SshConnector {
  open(node: NodeTarget): SshSession
}
