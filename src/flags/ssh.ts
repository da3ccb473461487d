import {constants, accessSync, statSync} from 'node:fs'

import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'
import {DEFAULT_SSH_OPTIONS, type SshOptions} from '../ssh/ssh-options.js'

/** How the plugin reaches control-plane nodes: the system `ssh` client (docs/architecture.md §3). */
export const sshFlags = {
  'ssh-config': Flags.string({
    description: 'ssh config file to use (as `ssh -F FILE`); default: ~/.ssh/config.',
    helpGroup: 'SSH',
  }),
  'ssh-user': Flags.string({description: 'User to log in as on the control-plane nodes.', helpGroup: 'SSH'}),
  'ssh-port': Flags.integer({
    description: 'SSH port of the control-plane nodes.',
    min: 1,
    max: 65535,
    helpGroup: 'SSH',
  }),
  'ssh-identity': Flags.string({description: 'Private key file for SSH (as `ssh -i FILE`).', helpGroup: 'SSH'}),
  'ssh-option': Flags.string({
    description: "Extra ssh option as Key=Value (as `ssh -o`); repeatable. Wins over the plugin's defaults.",
    multiple: true,
    helpGroup: 'SSH',
  }),
  'ssh-address': Flags.option({
    description: 'Reach a node by its name (ssh config aliases apply) or by its InternalIP.',
    options: ['name', 'internal-ip'] as const,
    default: 'name' as const,
    helpGroup: 'SSH',
  })(),
  'ssh-sudo': Flags.boolean({
    description:
      'Run commands on the nodes through `sudo -n` (use --no-ssh-sudo when logging in as root without sudo).',
    default: true,
    allowNo: true,
    helpGroup: 'SSH',
  }),
  'ssh-timeout': Flags.integer({description: 'SSH connect timeout in seconds.', default: 10, min: 1, helpGroup: 'SSH'}),
}

export interface SshFlagValues {
  'ssh-config'?: string
  'ssh-user'?: string
  'ssh-port'?: number
  'ssh-identity'?: string
  'ssh-option'?: string[]
  'ssh-address'?: 'name' | 'internal-ip'
  'ssh-sudo'?: boolean
  'ssh-timeout'?: number
}

/**
 * A local file a --ssh-* flag names must be there and readable before anything runs: ssh itself
 * only warns about a missing -i file and goes on with other keys, so a typo would go unnoticed.
 */
function checkLocalFile(flag: string, path: string | undefined): void {
  if (path === undefined) return
  if (path === '') throw usageError('SSH_FILE_INVALID', `--${flag} must not be empty`)
  let problem: string | undefined
  try {
    if (statSync(path).isDirectory()) problem = 'is a directory'
    else accessSync(path, constants.R_OK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    problem =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied)'
          : `cannot be read (${code})`
  }
  if (problem)
    throw usageError('SSH_FILE_INVALID', `--${flag} ${path} ${problem}; nothing was done`, {
      hint: `Pass the path of a readable ${flag === 'ssh-identity' ? 'private key' : 'ssh config'} file.`,
    })
}

export function sshOptionsFromFlags(flags: SshFlagValues): SshOptions {
  checkLocalFile('ssh-identity', flags['ssh-identity'])
  checkLocalFile('ssh-config', flags['ssh-config'])
  const extraOptions = flags['ssh-option'] ?? []
  for (const option of extraOptions) {
    if (!/^[A-Za-z][A-Za-z0-9]*\s*[= ]\s*\S/.test(option)) {
      throw usageError('SSH_OPTION_INVALID', `--ssh-option ${JSON.stringify(option)} is not Key=Value.`, {
        hint: 'Pass options as ssh -o takes them, e.g. --ssh-option StrictHostKeyChecking=yes.',
      })
    }
  }
  return {
    ...DEFAULT_SSH_OPTIONS,
    configFile: flags['ssh-config'],
    user: flags['ssh-user'],
    port: flags['ssh-port'],
    identity: flags['ssh-identity'],
    extraOptions,
    address: flags['ssh-address'] ?? 'name',
    sudo: flags['ssh-sudo'] ?? true,
    connectTimeoutSeconds: flags['ssh-timeout'] ?? DEFAULT_SSH_OPTIONS.connectTimeoutSeconds,
  }
}
