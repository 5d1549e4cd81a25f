// A sound Worker: one WebAssembly.Memory of a fixed size, reused for every message.
const memory = new WebAssembly.Memory({ initial: 16, maximum: 16 });
const bytes = new Uint8Array(memory.buffer);
onmessage = (e) => {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 4096) sum = (sum + bytes[i] + e.data.length) & 0xffff;
  postMessage(sum);
};
