import { expect, test } from 'vitest';
import { resumeArgs, resumeCommand, shellQuote } from './resume-hint.js';

test('the resume command keeps the run flags, drops --resume/--init/--token (both spellings) and ends with --resume DIR', () => {
  const argv = ['train', '--config', 'run.json', '--init', 'a.safetensors', '--token', 'secret', '--resume=old', '--workers', '2', '--json'];
  const args = resumeArgs(argv, 'runs/x');
  expect(args).toEqual(['train', '--config', 'run.json', '--workers', '2', '--json', '--resume', 'runs/x']);
  expect(args.join(' ')).not.toContain('secret');
});

test('arguments are quoted for a shell only when they need it', () => {
  expect(shellQuote('spirals:600')).toBe('spirals:600');
  expect(shellQuote('spirals:600;seed=3')).toBe("'spirals:600;seed=3'");
  expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  expect(resumeCommand(['coordinator', '--data', 'a b', '--resume', '/tmp/r'])).toBe("dptrain coordinator --data 'a b' --resume /tmp/r");
});
