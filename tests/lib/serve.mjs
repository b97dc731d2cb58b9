// Starts `mnistd serve --port 0 ...` for a node test and finds its URL in the
// server's "listening" log line. Returns { base, stop }.
import { spawn } from 'node:child_process';

export async function startServer(bin, args) {
  const server = spawn(bin, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const base = await new Promise((resolve, reject) => {
    let text = '';
    server.stderr.on('data', (chunk) => {
      text += chunk;
      const m = text.match(/"url":"(http:\/\/[^"]+)\/"/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)));
    setTimeout(() => reject(new Error('server did not start')), 10000);
  });
  const stop = () => new Promise((resolve) => {
    server.on('exit', resolve);
    server.kill('SIGTERM');
  });
  return { base, stop };
}
