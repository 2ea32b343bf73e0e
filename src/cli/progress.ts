/** Progress for long work: a bar on a TTY (cli-progress, on stderr), plain occasional lines otherwise. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: string): void;
  stop(): void;
}

export function progress(label: string, total: number, unit = ''): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% {value}/{total}${unit ? ' ' + unit : ''} {extra}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { extra: '' });
    return {
      update: (done, extra = '') => bar.update(done, { extra }),
      stop: () => bar.stop(),
    };
  }
  // Plain lines: nothing for work that finishes within 2 s, then at most one line per 10 % or per 5 s.
  const start = Date.now();
  let lastPct = -1;
  let last = 0;
  return {
    update(done, extra = '') {
      const pct = total ? Math.floor((100 * done) / total) : 100;
      const now = Date.now();
      if (now - start < 2000) return;
      if (pct === lastPct || (pct < 100 && pct - lastPct < 10 && now - last < 5000)) return;
      lastPct = pct;
      last = now;
      process.stderr.write(`${label}: ${pct}% (${done}/${total}${unit ? ' ' + unit : ''})${extra ? ' ' + extra : ''}\n`);
    },
    stop() {},
  };
}
