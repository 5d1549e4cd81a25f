// A decoder with a bump allocator that never frees: 16 WebAssembly pages (1 MiB) more per message.
const memory = new WebAssembly.Memory({ initial: 16, maximum: 4096 });
onmessage = (e) => {
  memory.grow(16);
  new Uint8Array(memory.buffer).fill(e.data.length, memory.buffer.byteLength - 65536);
  postMessage(memory.buffer.byteLength);
};
