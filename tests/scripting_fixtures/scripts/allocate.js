// 2 GB in 1 MB array buffers (outside the V8 heap), or in heap arrays.
const chunks = [];
for (let i = 0; i < 2048; i++) {
  chunks.push(context.kind === "heap" ? new Array(131072).fill(1.5) : new Uint8Array(1 << 20).fill(1));
}
result = chunks.length;
