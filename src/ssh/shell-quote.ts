/**
 * Quoting for the remote shell. `ssh` joins its arguments into one string that the node's login
 * shell parses, so every word is wrapped in single quotes (inside which POSIX shells interpret
 * nothing) and embedded single quotes become '\''. NUL cannot be passed in a command line at all.
 */
export function quoteWord(word: string): string {
  if (word.includes('\0')) throw new Error('a remote argument cannot contain a NUL byte')
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}

export function quoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty remote command')
  return argv.map((word) => quoteWord(word)).join(' ')
}
