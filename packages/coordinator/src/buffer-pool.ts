/**
 * Gradient buffers of one size, reused from step to step so that reducing results allocates
 * nothing. Only buffers the pool made come back into it: a gradient that is a view into a
 * received frame can be handed to give() too, and is simply let go.
 */
export class BufferPool {
  private readonly free: Float32Array[] = [];
  private readonly own = new WeakSet<Float32Array>();
  /** Buffers allocated so far. */
  allocated = 0;

  /** `alloc` makes a new buffer (default a plain Float32Array; e.g. a kernels' alloc, whose memory the kernels work in). */
  constructor(
    readonly size: number,
    private readonly alloc: (n: number) => Float32Array = (n) => new Float32Array(n),
  ) {}

  /** A buffer of `size` floats (contents unspecified). */
  take(): Float32Array {
    const b = this.free.pop();
    if (b) return b;
    const n = this.alloc(this.size);
    this.own.add(n);
    this.allocated++;
    return n;
  }

  /** Return a buffer; ignored unless this pool made it and it is not already free. */
  give(b: Float32Array): void {
    if (this.own.has(b) && !this.free.includes(b)) this.free.push(b);
  }
}
