/**
 * The generated context trees of the context benchmarks (bench:sdk-hash, bench:context-delta):
 * the same files on every run.
 */
import { createCipheriv } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";

/**
 * Writes `count` files totalling exactly `total` bytes: mostly small files, a tail of
 * medium ones and a few large ones, spread over 20 x 5 directories. Sizes come from a
 * seeded PRNG and contents from an AES-CTR keystream, so every run builds the same tree.
 */
export function generateTree(dir: string, count: number, total: number): void {
  const rand = mulberry32(0x6b696c6e);
  const logUniform = (lo: number, hi: number): number => Math.floor(Math.exp(Math.log(lo) + rand() * Math.log(hi / lo)));
  const large = Math.max(1, Math.floor(count / 1000));
  const sizes: number[] = [];
  for (let i = 0; i < count - large; i++) {
    const r = rand();
    sizes.push(r < 0.02 ? 0 : r < 0.9 ? logUniform(64, 64 << 10) : logUniform(64 << 10, 1 << 20));
  }
  // Scale the small/medium files down if they alone would overshoot, then give the rest to the large files.
  let used = sizes.reduce((a, b) => a + b, 0);
  const budget = Math.floor(total * 0.5);
  if (used > budget) {
    for (let i = 0; i < sizes.length; i++) sizes[i] = Math.floor(((sizes[i] as number) * budget) / used);
    used = sizes.reduce((a, b) => a + b, 0);
  }
  const rest = total - used;
  for (let i = 0; i < large; i++) sizes.push(Math.floor(rest / large) + (i < rest % large ? 1 : 0));

  const cipher = createCipheriv("aes-256-ctr", Buffer.alloc(32, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(8 << 20);
  for (let i = 0; i < sizes.length; i++) {
    const sub = path.join(dir, `d${String(i % 20).padStart(2, "0")}`, `s${Math.floor(i / 20) % 5}`);
    if (i < 100) mkdirSync(sub, { recursive: true });
    const fd = openSync(path.join(sub, `f${String(i).padStart(5, "0")}.bin`), "w", i % 7 === 0 ? 0o755 : 0o644);
    try {
      for (let left = sizes[i] as number; left > 0; ) {
        const n = Math.min(left, zeros.length);
        writeSync(fd, cipher.update(zeros.subarray(0, n)));
        left -= n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
