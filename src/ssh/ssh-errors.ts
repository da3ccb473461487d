import {PluginError} from '../errors.js'

/**
 * Turns what `ssh` and `sudo` print on failure into PluginErrors with the node's name and a next
 * step. ssh itself exits 255 on connection, host key and authentication failures; sudo's own
 * messages start with "sudo:". Anything unrecognised returns undefined and the caller decides.
 */
export function translateSshFailure(
  node: string,
  address: string,
  exitCode: number,
  stderr: string,
): PluginError | undefined {
  const detail = stderr.trim()
  const where = address === node ? `node ${node}` : `node ${node} (${address})`
  if (exitCode === 255) {
    if (
      /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key for .* has changed|No .* host key is known/i.test(
        stderr,
      )
    ) {
      return new PluginError(
        'precondition',
        'SSH_HOST_KEY',
        `SSH host key verification failed for ${where}; nothing was changed there.`,
        {
          hint: `Check the node's host key out of band and add it to known_hosts (ssh-keyscan shows it; compare the fingerprint), then retry. The plugin never accepts unknown or changed host keys.`,
          detail,
        },
      )
    }
    if (/Permission denied|Too many authentication failures|no mutual signature|Authentication failed/i.test(stderr)) {
      return new PluginError('precondition', 'SSH_AUTH_FAILED', `SSH authentication to ${where} failed.`, {
        hint: 'Load a key into ssh-agent or pass --ssh-identity FILE and --ssh-user USER (or set them in --ssh-config); the plugin runs ssh with BatchMode=yes and never asks for a password.',
        detail,
      })
    }
    if (/timed out|Connection timed out|Operation timed out/i.test(stderr)) {
      return new PluginError('precondition', 'SSH_TIMEOUT', `SSH connection to ${where} timed out.`, {
        hint: 'Check that the node is up and reachable on its SSH port (--ssh-port), or reach it by address with --ssh-address internal-ip.',
        detail,
      })
    }
    if (/Could not resolve hostname|Name or service not known|Temporary failure in name resolution/i.test(stderr)) {
      return new PluginError('precondition', 'SSH_UNREACHABLE', `Cannot resolve the SSH address of ${where}.`, {
        hint: 'Add a Host entry for the node to ~/.ssh/config or --ssh-config, or use --ssh-address internal-ip.',
        detail,
      })
    }
    if (
      /Connection refused|No route to host|Network is unreachable|Connection reset|Connection closed|kex_exchange_identification/i.test(
        stderr,
      )
    ) {
      return new PluginError('precondition', 'SSH_UNREACHABLE', `Cannot connect to ${where} over SSH.`, {
        hint: 'Check that sshd runs on the node and the port is right (--ssh-port or the ssh config); nothing was changed on the node.',
        detail,
      })
    }
    return new PluginError('precondition', 'SSH_FAILED', `ssh to ${where} failed (exit 255).`, {
      hint: "Run with --verbose to see ssh's message; try `ssh -F <config> <node> true` by hand.",
      detail,
    })
  }
  if (/^sudo: (a )?password is required|^sudo: a terminal is required/m.test(stderr)) {
    return new PluginError(
      'precondition',
      'SUDO_PASSWORD_REQUIRED',
      `sudo on ${where} wants a password; the plugin runs \`sudo -n\` and cannot type one.`,
      {
        hint: 'Give the SSH user passwordless sudo on the control-plane nodes (NOPASSWD in sudoers), or connect as root with --ssh-user root.',
        detail,
      },
    )
  }
  if (/is not in the sudoers file|is not allowed to execute|may not run sudo/m.test(stderr)) {
    return new PluginError('precondition', 'SUDO_NOT_ALLOWED', `The SSH user may not use sudo on ${where}.`, {
      hint: 'Grant the SSH user passwordless sudo on the control-plane nodes, or connect as root with --ssh-user root.',
      detail,
    })
  }
  if (exitCode === 127 && /sudo: (command )?not found|sudo: No such file/.test(stderr)) {
    return new PluginError('precondition', 'SUDO_MISSING', `sudo is not installed on ${where}.`, {
      hint: 'Install sudo on the node, or connect as root and pass --no-ssh-sudo.',
      detail,
    })
  }
  return undefined
}
