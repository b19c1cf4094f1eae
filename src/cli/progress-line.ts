/**
 * A progress line on stderr: redrawn in place on a terminal; otherwise one line per update, at
 * most every `minIntervalMs` (0: every update, which is what `--progress` in a pipe asks for).
 */
export class ProgressLine {
  private last = 0;
  private spinner = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly minIntervalMs = 2000,
  ) {}

  update(text: string): void {
    if (this.out.isTTY) {
      const frame = '|/-\\'[this.spinner++ % 4];
      this.out.write(`\r${frame} ${text}\u001b[K`);
      this.drawn = true;
    } else if (this.minIntervalMs === 0 || Date.now() - this.last > this.minIntervalMs) {
      this.last = Date.now();
      this.out.write(`${text}\n`);
    }
  }

  done(): void {
    if (this.out.isTTY && this.drawn) this.out.write('\r\u001b[K');
  }
}
