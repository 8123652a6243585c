/**
 * Flags dropped from the original command line when it is turned into a resume command
 * (--token too: a secret is not printed; give it again, or through DPTRAIN_TOKEN).
 */
const DROP_WITH_VALUE = new Set(['--resume', '--init', '--token']);

/**
 * The arguments of `dptrain` that continue an interrupted run: the original arguments
 * (`argv` without node and the script) without --resume / --init / --token, plus `--resume DIR`.
 */
export function resumeArgs(argv: readonly string[], dir: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (DROP_WITH_VALUE.has(a)) {
      i++; // and its value
      continue;
    }
    if ([...DROP_WITH_VALUE].some((f) => a.startsWith(`${f}=`))) continue;
    out.push(a);
  }
  return [...out, '--resume', dir];
}

/** An argument quoted for a POSIX shell when it needs it. */
export function shellQuote(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The resume command for people: `dptrain ARGS...`, quoted for a shell. */
export function resumeCommand(args: readonly string[]): string {
  return ['dptrain', ...args.map(shellQuote)].join(' ');
}
