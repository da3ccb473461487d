/** The --ssh-* settings as plain data (src/flags/ssh.ts builds it; tests build it directly). */
export interface SshOptions {
  /** `ssh -F FILE`; when absent, ssh reads ~/.ssh/config as usual. */
  configFile?: string
  user?: string
  port?: number
  identity?: string
  /** Extra `-o Key=Value` options, in order; they win over the plugin's own defaults. */
  extraOptions: string[]
  /** Reach a node by its name (so ssh_config aliases apply) or by its InternalIP. */
  address: 'name' | 'internal-ip'
  /** Run remote commands through `sudo -n` (default true). */
  sudo: boolean
  connectTimeoutSeconds: number
  /** Upper bound for one remote command, unless the call gives its own. */
  commandTimeoutMs: number
  /** The ssh binary; tests may point it elsewhere. */
  sshBinary?: string
}

export const DEFAULT_SSH_OPTIONS: SshOptions = {
  extraOptions: [],
  address: 'name',
  sudo: true,
  connectTimeoutSeconds: 10,
  commandTimeoutMs: 60_000,
}
