/** Capturing the bridge's log in tests: a Writable that keeps every complete line written to it. */
import { Writable } from 'node:stream';

export class LineSink extends Writable {
  private buffer = '';
  readonly lines: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.buffer += chunk.toString();
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      this.lines.push(this.buffer.slice(0, nl));
      this.buffer = this.buffer.slice(nl + 1);
    }
    done();
  }
  /** What was written after the last line break (nothing, when every line is whole). */
  get pending(): string {
    return this.buffer;
  }
}
