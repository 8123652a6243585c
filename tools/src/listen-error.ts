/**
 * A socket the coordinator could not listen on, said in one line with the fix, instead of
 * Node's stack trace. Node's listen errors carry `code`, `syscall: 'listen'`, `address`
 * and `port` (net.Server 'error').
 */
export function listenErrorMessage(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const { code, syscall, address, port } = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (syscall !== 'listen') return undefined;
  const where = `port ${port ?? '?'} on ${address ?? '?'}`;
  if (code === 'EADDRINUSE') {
    return `${where} is already in use; pick another with --port N, or --port 0 for any free port`;
  }
  if (code === 'EACCES') {
    return `${where} needs privileges this process lacks (ports below 1024); pick one of 1024 or above with --port N, or --port 0`;
  }
  if (code === 'EADDRNOTAVAIL') {
    return `${where}: no interface of this host has address ${address ?? '?'}; set --host to one of its addresses, or 0.0.0.0 for all`;
  }
  return undefined;
}
